/*
 * Telling the user: on a terminal, a live line per running job and an
 * overall bar, redrawn in place; elsewhere (a log file, nohup) one plain
 * line per event and a status line now and then. --events gets every
 * event as JSON Lines for programs.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "submit.h"

static int live_lines;     /* lines of the live display now on screen */

void
pause_for(double seconds)
{
	struct timespec ts = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };

	/* A signal ends the pause: the loop then sees stop_signal. */
	while (nanosleep(&ts, &ts) < 0 && !stop_signal)
		;
}

static void
clear_live(void)
{
	for (; live_lines > 0; live_lines--)
		fputs("\033[1A\033[2K", stderr);
}

void
progress_event(struct run *R, struct job *j, const char *ev, cJSON *extra)
{
	bool chatty = strcmp(ev, "progress") != 0 && strcmp(ev, "node") != 0 &&
	    strcmp(ev, "started") != 0;

	if (R->events) {
		cJSON *e = pr_json_object();
		char t[32];
		snprintf(t, sizeof t, "%.3f", pr_wall());
		pr_json_set(e, "t", pr_json_number_text(t));
		pr_json_set_string(e, "ev", ev);
		pr_json_set_string(e, "job", j->id);
		pr_json_set_string(e, "video", j->video);
		if (*j->prompt_id)
			pr_json_set_string(e, "prompt_id", j->prompt_id);
		if (j->srv)
			pr_json_set_string(e, "server", j->srv->url);
		if (cJSON_IsObject(extra) && strcmp(ev, "failed") != 0) {
			cJSON *x;
			cJSON_ArrayForEach(x, extra)
				pr_json_set(e, x->string, pr_json_copy(x));
		} else if (extra) {
			pr_json_set(e, "error", pr_json_copy(extra));
		}
		char *line = pr_json_print(e, 0);
		fprintf(R->events, "%s\n", line);
		fflush(R->events);
		free(line);
		cJSON_Delete(e);
	}
	if (chatty) {
		const char *msg = strcmp(ev, "failed") == 0 ? pr_json_get_string(extra, "message") : NULL;
		if (R->tty)
			clear_live();
		fprintf(stderr, "%s: %s %s%s%s%s%s\n", pr_progname, j->id, ev,
		    *j->prompt_id && strcmp(ev, "submitted") == 0 ? " as " : "",
		    *j->prompt_id && strcmp(ev, "submitted") == 0 ? j->prompt_id : "",
		    msg ? ": " : "", msg ? msg : "");
	}
	cJSON_Delete(extra);
}

static void
counts(const struct run *R, size_t *done, size_t *failed, size_t *running)
{
	*done = *failed = *running = 0;
	for (size_t i = 0; i < R->njobs; i++) {
		enum job_state s = R->jobs[i].state;
		*done += s == JOB_DONE;
		*failed += s == JOB_FAILED || s == JOB_SKIPPED;
		*running += s == JOB_QUEUED && R->jobs[i].started;
	}
}

void
progress_tick(struct run *R, bool force)
{
	double now = pr_wall();
	size_t done, failed, running;

	if (!force && now < R->next_status)
		return;
	counts(R, &done, &failed, &running);
	if (!R->tty) {
		R->next_status = now + 30;
		fprintf(stderr, "%s: %zu/%zu done, %zu failed or skipped, %zu running, %.0f s\n",
		    pr_progname, done, R->njobs, failed, running, now - R->t0);
		return;
	}
	R->next_status = now + 0.25;
	clear_live();
	for (size_t i = 0; i < R->njobs; i++) {
		const struct job *j = &R->jobs[i];
		char eta[32] = "";
		if (j->state != JOB_QUEUED)
			continue;
		if (!j->started) {
			fprintf(stderr, "  %-28s queued on %s\n", j->id, j->srv ? j->srv->url : "?");
			live_lines++;
			continue;
		}
		if (j->step > 0 && j->steps > j->step && j->last_event > j->t_started)
			snprintf(eta, sizeof eta, " ETA %.0f s",
			    (j->last_event - j->t_started) / j->step * (j->steps - j->step));
		fprintf(stderr, "  %-28s node %-8s %ld/%ld  %.0f s%s\n", j->id,
		    *j->node ? j->node : "-", j->step, j->steps, now - j->t_started, eta);
		live_lines++;
	}
	int width = 30, filled = R->njobs ? (int)(width * (done + failed) / R->njobs) : width;
	fprintf(stderr, "  [%.*s%*s] %zu/%zu done, %zu failed  %.0f s\n", filled,
	    "##############################", width - filled, "", done, R->njobs, failed,
	    now - R->t0);
	live_lines++;
}

void
progress_end(struct run *R)
{
	if (R->tty)
		clear_live();
	progress_tick(R, true);
	live_lines = 0;
}
