/*
 * The run loop: submit ready jobs, follow them on the socket, check them
 * against /queue and /history (the truth when the socket says nothing),
 * and finish them from their history entry. Single-threaded: every state
 * change happens here, in one place, in journal order.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crash.h"
#include "submit.h"

volatile int stop_signal;

/* A missing prompt is declared lost only after it has been missing this
 * long: history is written a moment after the socket's end message. */
#define LOST_GRACE 2.0
/* After an interrupt, how long the server gets to stop our prompt. */
#define INTERRUPT_GRACE 15.0
/* Answers of /history/{id} in a row that came but could not be read
 * before the job is failed (history_failed). */
#define HISTORY_UNREADABLE 3

static double
backoff(int failures)
{
	/* 0.5 s doubling to 30 s, with jitter so several clients do not
	 * retry in step. */
	double b = 0.5 * pow(2, failures < 6 ? failures : 6);

	if (b > 30)
		b = 30;
	return b * (0.75 + 0.5 * (rand() / (double)RAND_MAX));
}

static cJSON *
ev_new(const char *what, const struct job *j)
{
	cJSON *ev = pr_json_object();

	pr_json_set_string(ev, "ev", what);
	pr_json_set_string(ev, "job", j->id);
	return ev;
}

static void
back_to_waiting(struct job *j)
{
	if (j->state == JOB_QUEUED && j->srv)
		j->srv->inflight--;
	j->state = JOB_WAITING;
	j->started = j->ended = j->uncertain = j->timed_out = false;
	j->t_started = 0;
	j->missing_since = 0;
	j->history_failing = 0;
	j->history_unreadable = 0;
	j->node[0] = '\0';
	j->step = j->steps = 0;
	cJSON_Delete(j->heard);
	j->heard = NULL;
	j->heard_success = false;
}

/* A job sent again must not be answered from the server's cache: an
 * unchanged prompt (the server's last, say) replays its output nodes'
 * old files, the very ones that may have been truncated or empty. Another
 * filename_prefix for the nodes collected makes them run and write anew,
 * while the sampling before them is still cached when it can be. */
static void
fresh_outputs(cJSON *prompt, const cJSON *collect, int attempt)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, collect) {
		const char *node = pr_json_get_string(c, "node");
		cJSON *inputs = node ? pr_json_get(pr_json_get(prompt, node), "inputs") : NULL;
		const char *prefix = pr_json_get_string(inputs, "filename_prefix");
		if (!prefix)
			continue;
		char *salted = pr_xasprintf("%s_a%d", prefix, attempt);
		cJSON_DeleteItemFromObjectCaseSensitive(inputs, "filename_prefix");
		pr_json_set_string(inputs, "filename_prefix", salted);
		free(salted);
	}
}

/* The answer to POST /prompt. */
static void
post_prompt(struct run *R, struct job *j)
{
	struct server *s = j->srv;
	struct pr_http_response r = { 0 };
	struct pr_json_error je;
	cJSON *body = pr_json_object(), *targets = job_targets(j), *ans = NULL;
	const cJSON *c;

	pr_json_set(body, "prompt", pr_json_copy(pr_json_get(j->rec, "workflow")));
	if (j->attempts > 1)
		fresh_outputs(pr_json_get(body, "prompt"), pr_json_get(j->rec, "collect"), j->attempts);
	pr_json_set_string(body, "client_id", R->client_id);
	pr_json_set_string(body, "prompt_id", j->prompt_id);
	/* Only what the job collects runs: a branch the job does not need
	 * costs no GPU time and cannot fail it. */
	if (targets)
		pr_json_set(body, "partial_execution_targets", targets);

	int rc = pr_http_post_json(s->http, "/prompt", body, 16 << 20, &r);
	cJSON_Delete(body);
	if (rc == 0 && (r.status == 200 || r.status == 400))
		ans = pr_json_parse(r.body.data ? r.body.data : "", r.body.len, &je, NULL);
	if (!ans) {
		/* Maybe queued, maybe not: find out before sending it again
		 * (the poll does), never guess. */
		pr_warn("%s: POST /prompt: %s; checking the queue before trying again", j->id,
		    rc < 0 ? r.err : r.status == 200 || r.status == 400 ? "answer is not JSON" :
		    "server error");
		j->uncertain = true;
		j->retry_at = pr_wall() + backoff(j->failures++);
		j->missing_since = 0;
		s->next_poll = j->retry_at;
		pr_http_response_free(&r);
		return;
	}
	pr_http_response_free(&r);
	j->uncertain = false;
	j->failures = 0;
	if (pr_json_get(ans, "error")) {
		const cJSON *ne = pr_json_get(ans, "node_errors"), *n;
		const cJSON *first = NULL;
		cJSON_ArrayForEach(n, ne) {
			first = n;
			break;
		}
		const cJSON *e0 = cJSON_GetArrayItem(pr_json_get(first, "errors"), 0);
		const cJSON *err = pr_json_get(ans, "error");
		job_fail(R, j, job_error(first ? first->string : NULL,
		    first ? pr_json_get_string(first, "class_type") : NULL,
		    pr_json_get_string(e0 ? e0 : err, "type"),
		    "the server refused the prompt: %s%s%s",
		    pr_json_get_string(e0 ? e0 : err, "message"),
		    e0 || *pr_json_get_string(err, "details") ? ": " : "",
		    pr_json_get_string(e0 ? e0 : err, "details")), true);
		cJSON_Delete(ans);
		return;
	}
	/* Accepted, but an output it collects may have been pruned. */
	const cJSON *ne = pr_json_get(ans, "node_errors"), *n;
	cJSON_ArrayForEach(n, ne) {
		cJSON_ArrayForEach(c, pr_json_get(j->rec, "collect")) {
			const char *node = pr_json_get_string(c, "node");
			if (strcmp(n->string, node) != 0 &&
			    !pr_json_has_string(pr_json_get(n, "dependent_outputs"), node))
				continue;
			const cJSON *e0 = cJSON_GetArrayItem(pr_json_get(n, "errors"), 0);
			server_interrupt(s, j->prompt_id);
			job_fail(R, j, job_error(n->string, pr_json_get_string(n, "class_type"),
			    pr_json_get_string(e0, "type"),
			    "output %s was dropped by validation: %s: %s", node,
			    pr_json_get_string(e0, "message"), pr_json_get_string(e0, "details")), true);
			cJSON_Delete(ans);
			return;
		}
	}
	cJSON_Delete(ans);
	pr_crash_point("accepted");
	j->t_submitted = pr_wall();
	progress_event(R, j, "submitted", NULL);
}

/* Stage, choose and journal the prompt id, POST. */
static void
submit_job(struct run *R, struct job *j, struct server *s)
{
	const cJSON *st;
	char err[1024];

	cJSON_ArrayForEach(st, pr_json_get(j->rec, "stage")) {
		const char *as = pr_json_get_string(st, "as");
		char *local = job_local_path(R, pr_json_get_string(st, "path"));
		char hex[PR_SHA256_HEX];
		bool transient = false;
		int rc = 0;

		if (file_sha256(local, hex, NULL) < 0) {
			snprintf(err, sizeof err, "%s: cannot read it", local);
			rc = -1;
		} else if (!pr_json_get_string(s->staged, as) ||
		    strcmp(pr_json_get_string(s->staged, as), hex) != 0) {
			/* Identical bytes already sent this run need no second
			 * trip (the source video goes to every job). */
			if ((rc = server_stage(s, local, as, &transient, err, sizeof err)) == 0) {
				pr_json_set_string(s->staged, as, hex);
				pr_crash_point("staged");
			}
		}
		free(local);
		if (rc < 0) {
			if (transient && j->failures < 8) {
				pr_warn("%s: staging %s: %s (trying again)", j->id, as, err);
				j->retry_at = pr_wall() + backoff(j->failures++);
			} else {
				job_fail(R, j, job_error(NULL, NULL, NULL, "staging %s: %s", as, err), true);
			}
			return;
		}
	}
	make_uuid(j->prompt_id);
	j->attempts++;
	j->srv = s;
	j->state = JOB_QUEUED;
	s->inflight++;
	cJSON *ev = ev_new("submit", j);
	pr_json_set_string(ev, "key", j->key);
	pr_json_set_string(ev, "prompt_id", j->prompt_id);
	pr_json_set_string(ev, "server", s->url);
	pr_json_set_int(ev, "attempt", j->attempts);
	journal_event(R, ev);
	pr_crash_point("submitted");
	post_prompt(R, j);
}

static const cJSON *
last_message(const cJSON *entry, const char *type)
{
	const cJSON *m, *found = NULL;

	cJSON_ArrayForEach(m, pr_json_get(pr_json_get(entry, "status"), "messages")) {
		const cJSON *t = cJSON_GetArrayItem(m, 0);
		if (cJSON_IsString(t) && strcmp(t->valuestring, type) == 0)
			found = cJSON_GetArrayItem(m, 1);
	}
	return found;
}

/* The prompt ended: history says how. */
/* Its outputs collected and verified: done, in the journal. */
static void
job_done(struct run *R, struct job *j)
{
	pr_crash_point("collected");
	j->t_collected = pr_wall();
	j->srv->inflight--;
	j->state = JOB_DONE;
	cJSON *ev = ev_new("done", j);
	pr_json_set_string(ev, "key", j->key);
	pr_json_set_string(ev, "prompt_id", j->prompt_id);
	pr_json_set_string(ev, "server", j->srv->url);
	pr_json_set(ev, "files", pr_json_copy(j->files));
	journal_event(R, ev);
	progress_event(R, j, "done", NULL);
}

/* A prompt the server forgot after the socket told of its success and
 * outputs (a restart): its files are still on the server's disk, and
 * collecting them saves rendering it again. False when they cannot be
 * had, as when an output was cached and never announced. */
static bool
collect_heard(struct run *R, struct job *j)
{
	cJSON *e = pr_json_object(), *error = NULL;
	bool transient, ok;

	pr_json_set(e, "outputs", j->heard);
	j->heard = NULL;
	ok = collect_outputs(R, j, e, &error, &transient) == 0;
	cJSON_Delete(e);
	if (!ok) {
		pr_warn("%s: prompt %s is gone from %s (restarted?) after it succeeded, and its "
		    "outputs cannot be had (%s)", j->id, j->prompt_id, j->srv->url,
		    pr_json_get_string(error, "message"));
		cJSON_Delete(error);
		return false;
	}
	pr_warn("%s: prompt %s is gone from %s (restarted?) after it succeeded; collected "
	    "the outputs it announced", j->id, j->prompt_id, j->srv->url);
	j->t_finished = pr_wall();
	if (!j->t_started)
		j->t_started = j->t_finished;
	R->executed++;
	job_done(R, j);
	return true;
}

static void
finish_job(struct run *R, struct job *j, const cJSON *entry)
{
	const char *status = pr_json_get_string(pr_json_get(entry, "status"), "status_str");
	const cJSON *err;
	cJSON *error = NULL;
	bool transient;

	j->t_finished = pr_wall();
	if (!j->t_started)
		j->t_started = j->t_finished;
	R->executed++;
	if (status && strcmp(status, "success") == 0) {
		if (collect_outputs(R, j, entry, &error, &transient) < 0) {
			/* A download that keeps failing leaves the job open in the
			 * journal: a rerun collects it from history, no re-render. */
			if (transient) {
				char *m = pr_xasprintf("%s; rerun to collect",
				    pr_json_get_string(error, "message"));
				pr_json_set_string(error, "message", m);
				free(m);
			}
			job_fail(R, j, error, !transient);
			return;
		}
		job_done(R, j);
		return;
	}
	if ((err = last_message(entry, "execution_error"))) {
		const char *type = pr_json_get_string(err, "exception_type");
		if (type && strstr(type, "OutOfMemory") && !j->oom_retried) {
			/* Out of GPU memory is often the previous job's leftovers:
			 * free them and try once more. */
			pr_warn("%s: out of memory at node %s; freeing the server's memory and trying "
			    "once more", j->id, pr_json_get_string(err, "node_id") ?
			    pr_json_get_string(err, "node_id") : "(unknown)");
			server_free_memory(j->srv);
			j->oom_retried = true;
			cJSON *ev = ev_new("retry", j);
			pr_json_set_string(ev, "prompt_id", j->prompt_id);
			pr_json_set_string(ev, "why", type);
			journal_event(R, ev);
			back_to_waiting(j);
			return;
		}
		job_fail(R, j, job_error(pr_json_get_string(err, "node_id"),
		    pr_json_get_string(err, "node_type"), type, "%s",
		    pr_json_get_string(err, "exception_message") ?
		    pr_json_get_string(err, "exception_message") : "execution error"), true);
		return;
	}
	if (j->timed_out)
		job_fail(R, j, job_error(*j->node ? j->node : NULL, NULL, NULL,
		    "timed out after %.0f s (--job-timeout); interrupted", R->o.job_timeout), true);
	else
		job_fail(R, j, job_error(*j->node ? j->node : NULL, NULL, NULL,
		    "the prompt was %s on the server", last_message(entry, "execution_interrupted") ?
		    "interrupted" : "stopped"), true);
}

/* An answer of /history/{id} that could not be read: the job is failed
 * (not journaled: a rerun looks again) after HISTORY_UNREADABLE answers
 * in a row that came but were too big, endless or not JSON (a server
 * that lies now will next time), or after --wait-server of failures of
 * any kind; until then it is asked again within a second. */
static void
history_failed(struct run *R, struct job *j, long status, const char *err)
{
	double now = pr_wall();

	if (!j->history_failing)
		j->history_failing = now;
	if (status == 200)
		j->history_unreadable++;
	if (j->history_unreadable < HISTORY_UNREADABLE && now - j->history_failing < R->o.wait_server) {
		if (j->srv->next_poll > now + 1)
			j->srv->next_poll = now + 1;
		return;
	}
	pr_warn("%s: cannot read the history of prompt %s: %s", j->id, j->prompt_id, err);
	job_fail(R, j, job_error(NULL, NULL, NULL, "cannot read the history of prompt %s: %s; "
	    "rerun to collect", j->prompt_id, err), false);
}

/* GET /history/{id} of j's prompt: 1 with *entry, 0 not there, -1 cannot
 * tell (and j may have failed: history_failed). */
static int
history(struct run *R, struct job *j, cJSON **entry)
{
	char path[96], err[512];
	long status;
	cJSON *h;

	snprintf(path, sizeof path, "/history/%s", j->prompt_id);
	if (!(h = server_get_json(j->srv, path, &status, err, sizeof err))) {
		history_failed(R, j, status, err);
		return -1;
	}
	j->history_failing = 0;
	j->history_unreadable = 0;
	*entry = cJSON_DetachItemFromObjectCaseSensitive(h, j->prompt_id);
	cJSON_Delete(h);
	return *entry ? 1 : 0;
}

/* Whether a server other than s is there to take work. */
static bool
another_up(const struct run *R, const struct server *s)
{
	for (size_t k = 0; k < R->nservers; k++)
		if (&R->servers[k] != s && R->servers[k].usable && !R->servers[k].down_since)
			return true;
	return false;
}

/* s has been down --move-after: its prompts are given up on it (the
 * journal says so, so a rerun does not wait for them either) and their
 * jobs go to the other servers. Should s come back, they are taken off
 * its queue. */
static void
move_jobs(struct run *R, struct server *s, const char *why)
{
	for (size_t i = 0; i < R->njobs; i++) {
		struct job *j = &R->jobs[i];
		if (j->state != JOB_QUEUED || j->srv != s)
			continue;
		pr_warn("%s: %s is down (%s): moving it to another server", j->id, s->url, why);
		cJSON *ev = ev_new("lost", j);
		pr_json_set_string(ev, "prompt_id", j->prompt_id);
		pr_json_set_string(ev, "why", "server down: moved");
		journal_event(R, ev);
		progress_event(R, j, "lost", NULL);
		cJSON_AddItemToArray(s->moved, pr_json_string(j->prompt_id));
		back_to_waiting(j);
	}
}

static void
server_down(struct run *R, struct server *s, const char *why)
{
	double now = pr_wall();
	bool lost = false;

	if (!s->down_since) {
		s->down_since = now;
		pr_warn("%s: %s; waiting for it (--wait-server %.0f s)", s->url, why, R->o.wait_server);
	}
	s->next_poll = now + 1;
	if (now - s->down_since >= R->o.move_after && another_up(R, s))
		move_jobs(R, s, why);
	if (now - s->down_since < R->o.wait_server)
		return;
	/* Gone for good: its jobs cannot finish in this run. They stay open
	 * in the journal, so a rerun finds them again if it comes back. */
	pr_warn("%s: unreachable for %.0f s: giving up on it", s->url, now - s->down_since);
	s->usable = false;
	for (size_t i = 0; i < R->njobs; i++) {
		struct job *j = &R->jobs[i];
		if (j->state == JOB_QUEUED && j->srv == s) {
			job_fail(R, j, job_error(NULL, NULL, NULL, "server %s unreachable: %s; rerun "
			    "to collect", s->url, why), false);
			lost = true;
		}
	}
	if (lost || !another_up(R, s))
		R->infra = true;
}

/* s answers again: prompts moved off it must not run there as well. */
static void
server_back(struct server *s, const cJSON *running, const cJSON *pending)
{
	const cJSON *id;

	pr_warn("%s: answering again", s->url);
	s->down_since = 0;
	cJSON_ArrayForEach(id, s->moved)
		if (pr_json_has_string(running, id->valuestring) ||
		    pr_json_has_string(pending, id->valuestring))
			server_interrupt(s, id->valuestring);
	cJSON_Delete(s->moved);
	s->moved = pr_json_array();
}

/* The check: where each of our prompts is, by the server's own account. */
static void
poll_server(struct run *R, struct server *s)
{
	cJSON *running, *pending;
	char err[512];
	double now = pr_wall();
	bool any = false;

	for (size_t i = 0; i < R->njobs; i++)
		any |= R->jobs[i].state == JOB_QUEUED && R->jobs[i].srv == s;
	/* A server that is down is looked at even with nothing of ours on
	 * it: it gets work again when it answers. */
	if ((!any && !s->down_since) || now < s->next_poll || !s->usable)
		return;
	/* Queue first, then history: a prompt leaving the queue is in
	 * history by then, so it is never seen in neither by accident. */
	if (server_queue(s, &running, &pending, err, sizeof err) < 0) {
		server_down(R, s, err);
		return;
	}
	if (s->down_since)
		server_back(s, running, pending);
	for (size_t i = 0; i < R->njobs; i++) {
		struct job *j = &R->jobs[i];
		cJSON *entry = NULL;
		int h;

		if (j->state != JOB_QUEUED || j->srv != s)
			continue;
		if (pr_json_has_string(running, j->prompt_id)) {
			if (!j->started) {
				j->started = true;
				j->t_started = now;
				progress_event(R, j, "started", NULL);
			}
			j->uncertain = false;
			j->missing_since = 0;
			continue;
		}
		if (pr_json_has_string(pending, j->prompt_id)) {
			j->uncertain = false;
			j->missing_since = 0;
			continue;
		}
		if ((h = history(R, j, &entry)) < 0)
			continue;
		if (h == 1) {
			finish_job(R, j, entry);
			cJSON_Delete(entry);
			continue;
		}
		if (j->uncertain) {
			/* Never reached the server, or the answer was lost before
			 * it queued it: send it again under the same id. */
			if (now >= j->retry_at)
				post_prompt(R, j);
			continue;
		}
		if (!j->missing_since) {
			j->missing_since = now;
			continue;
		}
		if (now - j->missing_since < LOST_GRACE)
			continue;
		if (j->heard_success && j->heard && collect_heard(R, j))
			continue;
		/* Neither queued nor in history: the server restarted and
		 * forgot it. Render it again, under a new id. */
		pr_warn("%s: prompt %s is gone from %s (restarted?); submitting it again",
		    j->id, j->prompt_id, s->url);
		cJSON *ev = ev_new("lost", j);
		pr_json_set_string(ev, "prompt_id", j->prompt_id);
		journal_event(R, ev);
		progress_event(R, j, "lost", NULL);
		back_to_waiting(j);
	}
	cJSON_Delete(running);
	cJSON_Delete(pending);
	s->next_poll = now + (s->ws && pr_ws_state(s->ws) == PR_WS_UP ? 5 : 1);
	/* A POST waiting for its retry must not wait for the routine check,
	 * nor a history that could not be read. */
	for (size_t i = 0; i < R->njobs; i++) {
		const struct job *j = &R->jobs[i];
		if (j->state == JOB_QUEUED && j->srv == s && j->uncertain && j->retry_at < s->next_poll)
			s->next_poll = j->retry_at > now ? j->retry_at : now + 0.1;
		if (j->state == JOB_QUEUED && j->srv == s && j->history_failing)
			s->next_poll = fmin(s->next_poll, now + 1);
	}
}

static void
on_message(struct run *R, struct server *s, const cJSON *msg)
{
	const char *type = pr_json_get_string(msg, "type");
	const cJSON *data = pr_json_get(msg, "data");
	struct job *j = job_by_prompt(R, pr_json_get_string(data, "prompt_id"));
	double now = pr_wall();

	if (!type || !j || j->srv != s)
		return;
	if (strcmp(type, "execution_start") == 0) {
		j->started = true;
		j->t_started = now;
		j->uncertain = false;
		progress_event(R, j, "started", NULL);
	} else if (strcmp(type, "executing") == 0) {
		const cJSON *node = pr_json_get(data, "node");
		if (cJSON_IsNull(node)) {
			j->ended = true;
		} else if (cJSON_IsString(node)) {
			snprintf(j->node, sizeof j->node, "%s", node->valuestring);
			j->step = j->steps = 0;
			cJSON *x = pr_json_object();
			pr_json_set_string(x, "node", j->node);
			progress_event(R, j, "node", x);
		}
	} else if (strcmp(type, "progress") == 0) {
		int64_t v = 0, m = -1;
		if (pr_json_to_i64(pr_json_get(data, "value"), &v) == 0 &&
		    pr_json_to_i64(pr_json_get(data, "max"), &m) == 0) {
			j->step = (long)v;
			j->steps = (long)m;
		}
		if (now - j->last_event >= 0.25 || v == m) {
			cJSON *x = pr_json_object();
			j->last_event = now;
			pr_json_set_string(x, "node", j->node);
			pr_json_set_int(x, "value", j->step);
			pr_json_set_int(x, "max", j->steps);
			progress_event(R, j, "progress", x);
		}
	} else if (strcmp(type, "executed") == 0) {
		const char *node = pr_json_get_string(data, "node");
		const cJSON *output = pr_json_get(data, "output");
		if (node && cJSON_IsObject(output)) {
			if (!j->heard)
				j->heard = pr_json_object();
			cJSON_DeleteItemFromObjectCaseSensitive(j->heard, node);
			pr_json_set(j->heard, node, pr_json_copy(output));
		}
	} else if (strcmp(type, "execution_success") == 0 ||
	    strcmp(type, "execution_interrupted") == 0 ||
	    (strcmp(type, "execution_error") == 0 && pr_json_get(data, "timestamp"))) {
		j->ended = true;
		j->heard_success = strcmp(type, "execution_success") == 0;
	}
}

static void
service_sockets(struct run *R)
{
	double now = pr_wall();

	for (size_t i = 0; i < R->nservers; i++) {
		struct server *s = &R->servers[i];
		if (!s->usable || !s->ws)
			continue;
		enum pr_ws_state st = pr_ws_state(s->ws);
		unsigned conns = pr_ws_connections(s->ws);
		if (conns != s->ws_seen) {
			/* (Re)connected: what happened while it was down was
			 * not heard, so look now. */
			s->ws_seen = conns;
			s->ws_backoff = 0.5;
			s->next_poll = now;
		}
		if (st == PR_WS_DOWN && now >= s->ws_retry_at) {
			if (conns && s->ws_retry_at == 0)
				pr_warn("%s: socket down (%s); reconnecting, polling meanwhile",
				    s->url, pr_ws_error(s->ws));
			s->next_poll = now;
			pr_ws_connect(s->ws);
			s->ws_retry_at = now + s->ws_backoff;
			s->ws_backoff = fmin(s->ws_backoff * 2, 30);
		} else if (st == PR_WS_UP) {
			s->ws_retry_at = 0;
		}
	}
	pr_ws_run(R->wsctx, 200);
	for (size_t i = 0; i < R->nservers; i++) {
		struct server *s = &R->servers[i];
		cJSON *msg;
		while (s->ws && (msg = pr_ws_next(s->ws))) {
			on_message(R, s, msg);
			cJSON_Delete(msg);
		}
	}
}

static void
finish_ended(struct run *R)
{
	for (size_t i = 0; i < R->njobs; i++) {
		struct job *j = &R->jobs[i];
		cJSON *entry = NULL;
		if (j->state != JOB_QUEUED || !j->ended)
			continue;
		j->ended = false;
		if (history(R, j, &entry) == 1) {
			finish_job(R, j, entry);
			cJSON_Delete(entry);
		} else if (j->state == JOB_QUEUED) {
			j->srv->next_poll = pr_wall() + 0.5;
		}
	}
}

static void
check_timeouts(struct run *R)
{
	double now = pr_wall();

	for (size_t i = 0; i < R->njobs; i++) {
		struct job *j = &R->jobs[i];
		if (j->state != JOB_QUEUED || !j->started || R->o.job_timeout <= 0)
			continue;
		if (!j->timed_out && now - j->t_started > R->o.job_timeout) {
			pr_warn("%s: running for %.0f s, over --job-timeout: interrupting it",
			    j->id, now - j->t_started);
			server_interrupt(j->srv, j->prompt_id);
			j->timed_out = true;
			j->t_interrupt = now;
			j->srv->next_poll = now + 0.5;
		} else if (j->timed_out && now - j->t_interrupt > INTERRUPT_GRACE) {
			job_fail(R, j, job_error(*j->node ? j->node : NULL, NULL, NULL,
			    "timed out after %.0f s (--job-timeout); the server did not stop it",
			    R->o.job_timeout), true);
		}
	}
}

static void
skip_dependants(struct run *R)
{
	for (bool changed = true; changed;) {
		changed = false;
		for (size_t i = 0; i < R->njobs; i++) {
			struct job *j = &R->jobs[i];
			if (j->state != JOB_WAITING)
				continue;
			for (size_t d = 0; d < j->ndeps; d++) {
				struct job *dep = j->deps[d];
				if (dep->state != JOB_FAILED && dep->state != JOB_SKIPPED)
					continue;
				j->state = JOB_SKIPPED;
				j->error = job_error(NULL, NULL, NULL, "not run: %s %s", dep->id,
				    dep->state == JOB_FAILED ? "failed" : "was skipped");
				progress_event(R, j, "skipped", NULL);
				changed = true;
				break;
			}
		}
	}
}

/* Every server with room gets its next jobs now, before its current one
 * ends: the look-ahead that keeps its GPU from waiting on us. */
static void
submit_ready(struct run *R)
{
	double now = pr_wall();
	struct job *j;

	schedule_observe(R, now);
	for (size_t k = 0; k < R->nservers; k++) {
		struct server *s = &R->servers[k];
		if (!s->usable || s->down_since)
			continue;
		while (s->inflight < R->o.queue_depth && !stop_signal &&
		    (j = schedule_next(R, s, now))) {
			submit_job(R, j, s);
			if (j->state == JOB_QUEUED)
				schedule_sent(R, j, s, now);
			now = pr_wall();
		}
	}
}

static bool
busy(const struct run *R)
{
	uint64_t usable = 0;

	for (size_t k = 0; k < R->nservers; k++)
		if (R->servers[k].usable)
			usable |= UINT64_C(1) << k;
	for (size_t i = 0; i < R->njobs; i++) {
		const struct job *j = &R->jobs[i];
		if (j->state == JOB_QUEUED ||
		    (j->state == JOB_WAITING && (j->runs_on & usable) && j->preflight_ok))
			return true;
	}
	return false;
}

/* SIGINT/SIGTERM: stop submitting. Our prompts keep running unless
 * --interrupt-on-exit; either way the journal says where they are. */
static void
stop(struct run *R)
{
	pr_warn("stopping on signal %d", stop_signal);
	for (size_t i = 0; i < R->njobs; i++) {
		struct job *j = &R->jobs[i];
		if (j->state == JOB_QUEUED) {
			if (R->o.interrupt_on_exit) {
				server_interrupt(j->srv, j->prompt_id);
				cJSON *ev = ev_new("lost", j);
				pr_json_set_string(ev, "prompt_id", j->prompt_id);
				pr_json_set_string(ev, "why", "interrupted: --interrupt-on-exit");
				journal_event(R, ev);
			}
			cJSON_Delete(j->error);
			j->error = job_error(NULL, NULL, NULL, R->o.interrupt_on_exit ?
			    "interrupted by signal; rerun to render it" :
			    "still on the server when pr-submit stopped; rerun to collect");
		} else if (j->state == JOB_WAITING) {
			cJSON_Delete(j->error);
			j->error = job_error(NULL, NULL, NULL, "not started: pr-submit was stopped");
		}
	}
}

void
run_loop(struct run *R)
{
	for (size_t i = 0; i < R->nservers; i++)
		if (R->servers[i].usable)
			R->servers[i].ws = pr_ws_new(R->wsctx, R->servers[i].url, R->client_id);
	while (busy(R)) {
		if (stop_signal) {
			stop(R);
			break;
		}
		skip_dependants(R);
		submit_ready(R);
		service_sockets(R);
		finish_ended(R);
		for (size_t k = 0; k < R->nservers; k++)
			poll_server(R, &R->servers[k]);
		check_timeouts(R);
		progress_tick(R, false);
	}
	skip_dependants(R);
	for (size_t i = 0; i < R->njobs; i++) {
		struct job *j = &R->jobs[i];
		if (j->state == JOB_WAITING && !j->error)
			j->error = job_error(NULL, NULL, NULL, "not run: no server could take it");
	}
	/* A clean close, so the server does not keep a dead session. */
	for (size_t i = 0; i < R->nservers; i++)
		if (R->servers[i].ws)
			pr_ws_close(R->servers[i].ws);
	for (double until = pr_wall() + 2; pr_wall() < until;) {
		bool open = false;
		for (size_t i = 0; i < R->nservers; i++)
			open |= R->servers[i].ws && pr_ws_state(R->servers[i].ws) != PR_WS_DOWN;
		if (!open)
			break;
		pr_ws_run(R->wsctx, 100);
	}
	progress_end(R);
}
