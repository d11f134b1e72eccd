/*
 * The jobs of a run: read and checked, linked to their dependencies,
 * given cache keys, and matched against what the journal says earlier
 * runs did.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "final.h"
#include "submit.h"

static void bad(const char *name, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), __noreturn__));

static void
bad(const char *name, size_t line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pr_die(PR_EXIT_USAGE, "%s:%zu: %s", name, line, msg);
}

static void
check_list(const char *name, size_t line, const cJSON *rec, const char *field,
    const char *const *keys)
{
	const cJSON *list = pr_json_get(rec, field), *it;

	if (!list)
		return;
	if (!cJSON_IsArray(list))
		bad(name, line, "%s is not an array", field);
	cJSON_ArrayForEach(it, list) {
		if (!cJSON_IsObject(it))
			bad(name, line, "%s: an entry is not an object", field);
		for (const char *const *k = keys; *k; k++) {
			const cJSON *v = pr_json_get(it, *k);
			bool ok = strcmp(*k, "frame") == 0 ? pr_json_is_number(v) :
			    cJSON_IsString(v) && *v->valuestring;
			if (!ok)
				bad(name, line, "%s: an entry has no %s %s", field,
				    strcmp(*k, "frame") == 0 ? "whole-number" : "text", *k);
		}
		/* What is collected or derived is written there: never
		 * outside --out, whatever the record says. */
		const char *path = pr_json_get_string(it, "path"), *why;
		if (strcmp(field, "stage") != 0 && (why = pr_path_outside(path)))
			bad(name, line, "%s: path \"%s\" is %s", field, path, why);
	}
}

void
jobs_read(struct run *R, FILE *fp, const char *name)
{
	static const char *const stage_keys[] = { "path", "as", NULL };
	static const char *const collect_keys[] = { "node", "role", "path", NULL };
	static const char *const derive_keys[] = { "from", "frame", "path", "role", NULL };
	struct pr_jsonl in;
	cJSON *rec;
	size_t cap = 0;
	int rc;

	pr_jsonl_open(&in, fp, name);
	while ((rc = pr_jsonl_next(&in, &rec)) == 1) {
		const char *id = pr_json_get_string(rec, "id");
		const char *video = pr_json_get_string(rec, "video");
		const cJSON *deps = pr_json_get(rec, "deps"), *d;

		if (!id || !*id)
			bad(name, in.line, "job has no text id");
		if (!video || !*video)
			bad(name, in.line, "job %s has no text video", id);
		if (!cJSON_IsObject(pr_json_get(rec, "workflow")))
			bad(name, in.line, "job %s: workflow is missing or not an object "
			    "(pr-submit takes pr-patch's output)", id);
		if (deps && !cJSON_IsArray(deps))
			bad(name, in.line, "job %s: deps is not an array", id);
		cJSON_ArrayForEach(d, deps)
			if (!cJSON_IsString(d))
				bad(name, in.line, "job %s: deps holds a non-string", id);
		check_list(name, in.line, rec, "stage", stage_keys);
		check_list(name, in.line, rec, "collect", collect_keys);
		check_list(name, in.line, rec, "derive", derive_keys);
		for (size_t i = 0; i < R->njobs; i++)
			if (strcmp(R->jobs[i].id, id) == 0)
				bad(name, in.line, "job %s appears twice (first on line %zu)",
				    id, R->jobs[i].line);
		if (R->njobs == cap) {
			cap = cap ? 2 * cap : 64;
			R->jobs = pr_xrealloc(R->jobs, cap * sizeof *R->jobs);
		}
		struct job *j = &R->jobs[R->njobs++];
		memset(j, 0, sizeof *j);
		j->rec = rec;
		j->id = id;
		j->video = video;
		j->pass = pr_json_get_string(rec, "pass");
		j->model = pr_json_get_string(rec, "model");
		j->line = in.line;
	}
	if (rc < 0)
		pr_die(in.status, "%s", in.err);
	pr_jsonl_close(&in);

	for (size_t i = 0; i < R->njobs; i++) {
		struct job *j = &R->jobs[i];
		const cJSON *deps = pr_json_get(j->rec, "deps"), *d;

		j->deps = pr_xcalloc((size_t)cJSON_GetArraySize(deps) + 1, sizeof *j->deps);
		cJSON_ArrayForEach(d, deps) {
			struct job *dep = NULL;
			for (size_t k = 0; k < R->njobs && !dep; k++)
				if (strcmp(R->jobs[k].id, d->valuestring) == 0)
					dep = &R->jobs[k];
			if (!dep)
				bad(name, j->line, "job %s: dependency %s is not among the jobs given",
				    j->id, d->valuestring);
			j->deps[j->ndeps++] = dep;
		}
	}
}

/*
 * File hashes, remembered by path, size and modification time: the source
 * video is staged by every job of its video and must not be read again
 * for each.
 */
struct known_hash {
	char *path;
	off_t size;
	struct timespec mtime;
	char hex[PR_SHA256_HEX];
};
static struct known_hash *known;
static size_t nknown;

int
file_sha256(const char *path, char hex[PR_SHA256_HEX], long long *size)
{
	struct stat sb;
	size_t i;

	if (stat(path, &sb) < 0)
		return -1;
	for (i = 0; i < nknown; i++)
		if (strcmp(known[i].path, path) == 0)
			break;
	if (i < nknown && known[i].size == sb.st_size &&
	    known[i].mtime.tv_sec == sb.st_mtim.tv_sec &&
	    known[i].mtime.tv_nsec == sb.st_mtim.tv_nsec) {
		memcpy(hex, known[i].hex, PR_SHA256_HEX);
		if (size)
			*size = (long long)sb.st_size;
		return 0;
	}
	if (pr_sha256_file(path, hex, size) < 0)
		return -1;
	if (i == nknown) {
		known = pr_xrealloc(known, (nknown + 1) * sizeof *known);
		known[nknown++].path = pr_xstrdup(path);
	}
	known[i].size = sb.st_size;
	known[i].mtime = sb.st_mtim;
	memcpy(known[i].hex, hex, PR_SHA256_HEX);
	return 0;
}

void
file_hashes_free(void)
{
	for (size_t i = 0; i < nknown; i++)
		free(known[i].path);
	free(known);
	known = NULL;
	nknown = 0;
}

char *
job_local_path(const struct run *R, const char *path)
{
	if (path[0] == '/')
		return pr_xstrdup(path);
	return pr_xasprintf("%s/%s", R->o.out, path);
}

struct job *
job_producer(struct run *R, const char *path)
{
	static const char *const lists[] = { "collect", "derive" };

	for (size_t i = 0; i < R->njobs; i++)
		for (size_t l = 0; l < 2; l++) {
			const cJSON *it;
			cJSON_ArrayForEach(it, pr_json_get(R->jobs[i].rec, lists[l])) {
				const char *p = pr_json_get_string(it, "path");
				if (p && strcmp(p, path) == 0)
					return &R->jobs[i];
			}
		}
	return NULL;
}

cJSON *
job_targets(const struct job *j)
{
	cJSON *targets = pr_json_array();
	const cJSON *c;

	cJSON_ArrayForEach(c, pr_json_get(j->rec, "collect"))
		if (!pr_json_has_string(targets, pr_json_get_string(c, "node")))
			cJSON_AddItemToArray(targets, pr_json_string(pr_json_get_string(c, "node")));
	if (cJSON_GetArraySize(targets))
		return targets;
	cJSON_Delete(targets);
	return NULL;
}

struct job *
job_by_prompt(struct run *R, const char *prompt_id)
{
	if (!prompt_id)
		return NULL;
	for (size_t i = 0; i < R->njobs; i++)
		if (R->jobs[i].state == JOB_QUEUED &&
		    strcmp(R->jobs[i].prompt_id, prompt_id) == 0)
			return &R->jobs[i];
	return NULL;
}

/*
 * The key: what the job computes. Its workflow, the content of the files
 * it uploads (or, for a file another job makes, that job's key: its
 * content does not exist yet), where its outputs go, and its
 * dependencies' keys. Two runs with equal keys render the same thing.
 */
static void
key_of(struct run *R, struct job *j, int *mark, size_t depth)
{
	size_t me = (size_t)(j - R->jobs);
	struct pr_sha256 *h;
	struct pr_buf b = PR_BUF_INIT;
	const cJSON *it;

	if (mark[me] == 2)
		return;
	if (mark[me] == 1 || depth > R->njobs)
		pr_die(PR_EXIT_USAGE, "<stdin>:%zu: job %s depends on itself "
		    "(a dependency cycle)", j->line, j->id);
	mark[me] = 1;
	for (size_t i = 0; i < j->ndeps; i++)
		key_of(R, j->deps[i], mark, depth + 1);

	h = pr_sha256_new();
	pr_buf_adds(&b, "prompt-runner job key 1\n");
	pr_json_write(&b, pr_json_get(j->rec, "workflow"), 0);
	pr_buf_adds(&b, "\n");
	cJSON_ArrayForEach(it, pr_json_get(j->rec, "stage")) {
		const char *path = pr_json_get_string(it, "path");
		struct job *p = job_producer(R, path);
		pr_buf_printf(&b, "stage %s <- ", pr_json_get_string(it, "as"));
		if (p && p != j) {
			key_of(R, p, mark, depth + 1);
			pr_buf_printf(&b, "job %s\n", p->key);
		} else {
			char *local = job_local_path(R, path), hex[PR_SHA256_HEX];
			if (file_sha256(local, hex, NULL) == 0)
				pr_buf_printf(&b, "file %s\n", hex);
			else
				pr_buf_adds(&b, "missing\n");
			free(local);
		}
	}
	cJSON_ArrayForEach(it, pr_json_get(j->rec, "collect"))
		pr_buf_printf(&b, "collect %s %s %s\n", pr_json_get_string(it, "node"),
		    pr_json_get_string(it, "role"), pr_json_get_string(it, "path"));
	cJSON_ArrayForEach(it, pr_json_get(j->rec, "derive")) {
		char *frame = pr_json_print(pr_json_get(it, "frame"), 0);
		pr_buf_printf(&b, "derive %s %s %s %s\n", pr_json_get_string(it, "from"),
		    frame, pr_json_get_string(it, "path"), pr_json_get_string(it, "role"));
		free(frame);
	}
	for (size_t i = 0; i < j->ndeps; i++)
		pr_buf_printf(&b, "dep %s\n", j->deps[i]->key);
	pr_sha256_add(h, b.data, b.len);
	pr_sha256_done(h, j->key);
	pr_buf_free(&b);
	mark[me] = 2;
}

void
jobs_keys(struct run *R)
{
	int *mark = pr_xcalloc(R->njobs + 1, sizeof *mark);

	for (size_t i = 0; i < R->njobs; i++)
		key_of(R, &R->jobs[i], mark, 0);
	free(mark);
}

/* Whether every file of a journaled success is on disk as it was. */
static bool
files_intact(const struct run *R, const cJSON *files)
{
	const cJSON *f;

	cJSON_ArrayForEach(f, files) {
		const char *path = pr_json_get_string(f, "path");
		const char *sum = pr_json_get_string(f, "sha256");
		char hex[PR_SHA256_HEX], *local;
		int rc;

		if (!path || !sum)
			return false;
		local = job_local_path(R, path);
		rc = file_sha256(local, hex, NULL);
		free(local);
		if (rc < 0 || strcmp(hex, sum) != 0)
			return false;
	}
	return true;
}

/*
 * pr-combine's success records, read once: each video's own
 * STATE/VIDEO/final.json first, then those of state/finals.jsonl.
 */
static cJSON *
read_finals(const struct run *R)
{
	char *path = pr_xasprintf("%s/finals.jsonl", R->o.state);
	cJSON *finals = pr_json_array(), *rec;
	struct pr_jsonl in;
	FILE *fp;

	for (size_t i = 0; i < R->njobs; i++) {
		size_t k;
		for (k = 0; k < i && strcmp(R->jobs[k].video, R->jobs[i].video) != 0; k++)
			;
		if (k == i && (rec = pr_final_read(R->o.state, R->jobs[i].video)))
			cJSON_AddItemToArray(finals, rec);
	}
	if (!(fp = fopen(path, "r"))) {
		free(path);
		return finals;
	}
	free(path);
	pr_jsonl_open(&in, fp, "finals.jsonl");
	while (pr_jsonl_next(&in, &rec) == 1) {
		const char *st = pr_json_get_string(rec, "status");
		if (st && strcmp(st, "success") == 0)
			cJSON_AddItemToArray(finals, rec);
		else
			cJSON_Delete(rec);
	}
	pr_jsonl_close(&in);
	fclose(fp);
	return finals;
}

/* Whether one of the video's finals is there and intact: then its jobs'
 * cleaned-up intermediates are not needed again. */
static bool
final_verified(const struct run *R, const cJSON *finals, const char *video)
{
	const cJSON *rec;

	cJSON_ArrayForEach(rec, finals) {
		const char *v = pr_json_get_string(rec, "video");
		if (!v || strcmp(v, video) != 0)
			continue;
		cJSON *one = pr_json_array();
		cJSON_AddItemToArray(one, pr_json_copy(rec));
		bool ok = files_intact(R, one);
		cJSON_Delete(one);
		if (ok)
			return true;
	}
	return false;
}

static struct server *
server_by_url(struct run *R, const char *url)
{
	for (size_t i = 0; url && i < R->nservers; i++)
		if (strcmp(R->servers[i].url, url) == 0)
			return &R->servers[i];
	return NULL;
}

void
jobs_replay(struct run *R, const cJSON *journal)
{
	cJSON *finals = read_finals(R);

	for (size_t i = 0; i < R->njobs; i++) {
		struct job *j = &R->jobs[i];
		const cJSON *ev, *open = NULL, *done = NULL;

		cJSON_ArrayForEach(ev, journal) {
			const char *id = pr_json_get_string(ev, "job");
			const char *what = pr_json_get_string(ev, "ev");
			int64_t n;

			if (!id || !what || strcmp(id, j->id) != 0)
				continue;
			if (strcmp(what, "submit") == 0) {
				open = ev;
				if (pr_json_to_i64(pr_json_get(ev, "attempt"), &n) == 0 && n > j->attempts)
					j->attempts = (int)n;
			} else if (strcmp(what, "done") == 0) {
				done = ev;
				open = NULL;
			} else if (strcmp(what, "failed") == 0 || strcmp(what, "lost") == 0 ||
			    strcmp(what, "abandoned") == 0) {
				open = NULL;
			} else if (strcmp(what, "retry") == 0) {
				j->oom_retried = true;
			}
		}
		const char *dkey = done ? pr_json_get_string(done, "key") : NULL;
		if (dkey && strcmp(dkey, j->key) == 0 &&
		    (files_intact(R, pr_json_get(done, "files")) || final_verified(R, finals, j->video))) {
			j->state = JOB_DONE;
			j->cached = true;
			j->files = pr_json_copy(pr_json_get(done, "files"));
			snprintf(j->prompt_id, sizeof j->prompt_id, "%s",
			    pr_json_get_string(done, "prompt_id") ? pr_json_get_string(done, "prompt_id") : "");
			continue;
		}
		j->oom_retried = false;
		if (!open)
			continue;
		const char *okey = pr_json_get_string(open, "key");
		const char *pid = pr_json_get_string(open, "prompt_id");
		struct server *s = server_by_url(R, pr_json_get_string(open, "server"));
		if (!okey || strcmp(okey, j->key) != 0 || !pid || !s) {
			/* Made for another workflow, or on a server not given now:
			 * nothing to wait for. */
			cJSON *ab = pr_json_object();
			pr_json_set_string(ab, "ev", "abandoned");
			pr_json_set_string(ab, "job", j->id);
			pr_json_set(ab, "prompt_id", pr_json_copy(pr_json_get(open, "prompt_id")));
			pr_json_set_string(ab, "why", !s ? "its server is not among --server" :
			    "the job changed since it was submitted");
			journal_event(R, ab);
			continue;
		}
		/* Submitted by an earlier run that died: find it again on the
		 * server before doing anything else with this job. */
		j->state = JOB_QUEUED;
		j->uncertain = true;
		j->srv = s;
		s->inflight++;
		snprintf(j->prompt_id, sizeof j->prompt_id, "%s", pid);
	}
	cJSON_Delete(finals);
}

void
journal_event(struct run *R, cJSON *ev)
{
	if (pr_journal_append(R->journal, ev) < 0) {
		int e = errno;
		cJSON_Delete(ev);
		pr_die(PR_EXIT_INFRA, "%s: cannot write: %s", R->journal_path, strerror(e));
	}
	cJSON_Delete(ev);
}

cJSON *
job_error(const char *node_id, const char *node_type, const char *exception_type,
    const char *fmt, ...)
{
	cJSON *e = pr_json_object();
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (node_id)
		pr_json_set_string(e, "node_id", node_id);
	if (node_type)
		pr_json_set_string(e, "node_type", node_type);
	if (exception_type)
		pr_json_set_string(e, "exception_type", exception_type);
	pr_json_set_string(e, "message", msg);
	return e;
}

void
job_fail(struct run *R, struct job *j, cJSON *error, bool journal)
{
	if (j->state == JOB_QUEUED && j->srv)
		j->srv->inflight--;
	j->state = JOB_FAILED;
	cJSON_Delete(j->error);
	j->error = error;
	j->t_finished = pr_wall();
	if (journal) {
		cJSON *ev = pr_json_object();
		pr_json_set_string(ev, "ev", "failed");
		pr_json_set_string(ev, "job", j->id);
		pr_json_set_string(ev, "key", j->key);
		if (*j->prompt_id)
			pr_json_set_string(ev, "prompt_id", j->prompt_id);
		pr_json_set(ev, "error", pr_json_copy(error));
		journal_event(R, ev);
	}
	progress_event(R, j, "failed", pr_json_copy(error));
}

static void
set_time(cJSON *t, const char *name, double v)
{
	char s[32];

	if (v <= 0)
		return;
	snprintf(s, sizeof s, "%.3f", v);
	pr_json_set(t, name, pr_json_number_text(s));
}

cJSON *
job_result(const struct run *R, const struct job *j)
{
	static const char *const status[] = { "skipped", "skipped", "success", "failed", "skipped" };
	cJSON *r = pr_json_copy(j->rec), *t;

	(void)R;
	/* The workflow stays in state/<video>/workflows: results stay small. */
	cJSON_DeleteItemFromObjectCaseSensitive(r, "workflow");
	pr_json_set_string(r, "status", status[j->state]);
	pr_json_set(r, "cached", pr_json_bool(j->cached));
	pr_json_set_string(r, "key", j->key);
	if (*j->prompt_id)
		pr_json_set_string(r, "prompt_id", j->prompt_id);
	if (j->srv)
		pr_json_set_string(r, "server", j->srv->url);
	pr_json_set_int(r, "attempts", j->attempts);
	t = pr_json_object();
	set_time(t, "submitted", j->t_submitted);
	set_time(t, "started", j->t_started);
	set_time(t, "finished", j->t_finished);
	set_time(t, "fetched", j->t_fetched);
	set_time(t, "collected", j->t_collected);
	pr_json_set(r, "timings", t);
	pr_json_set(r, "files", j->files ? pr_json_copy(j->files) : pr_json_array());
	if (j->error && j->state != JOB_DONE)
		pr_json_set(r, "error", pr_json_copy(j->error));
	return r;
}
