/*
 * Which files make a video, in which order, and which source frames each
 * must hold. The plan (STATE/VIDEO/plan.jsonl) says which jobs the video
 * needs, so a result missing from the input is noticed; without a plan
 * the results alone are used.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "combine.h"

char *
local_path(const char *rel)
{
	if (rel[0] == '/')
		return pr_xstrdup(rel);
	return pr_xasprintf("%s/%s", o.out, rel);
}

static int64_t
get_int(const cJSON *obj, const char *key, int64_t dflt)
{
	int64_t v;

	return pr_json_to_i64(pr_json_get(obj, key), &v) == 0 ? v : dflt;
}

static bool
is(const cJSON *rec, const char *key, const char *want)
{
	const char *s = pr_json_get_string(rec, key);

	return s && strcmp(s, want) == 0;
}

/* Whether a job of the plan or the results makes one of the video's
 * pieces in this mode. */
static bool
wanted(const struct video *v, const cJSON *job)
{
	if (strcmp(v->mode, "none") == 0)
		return is(job, "kind", "render") && is(job, "pass", "low");
	return is(job, "kind", "combine");
}

static const cJSON *
result_of(const struct video *v, const char *id)
{
	const cJSON *r;

	cJSON_ArrayForEach(r, v->results)
		if (is(r, "id", id))
			return r;
	return NULL;
}

/* The plan's jobs for this video that make pieces, or NULL (no plan, or
 * err set when it cannot be read). */
static cJSON *
plan_jobs(const struct video *v, char *err, size_t errlen)
{
	char *path = pr_xasprintf("%s/%s/plan.jsonl", o.state, v->name);
	FILE *fp = fopen(path, "r");
	struct pr_jsonl in;
	cJSON *list, *rec;
	int rc;

	if (!fp) {
		if (errno != ENOENT)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(path);
		return NULL;
	}
	list = pr_json_array();
	pr_jsonl_open(&in, fp, path);
	while ((rc = pr_jsonl_next(&in, &rec)) == 1) {
		if (pr_json_get_string(rec, "id") && wanted(v, rec))
			cJSON_AddItemToArray(list, rec);
		else
			cJSON_Delete(rec);
	}
	if (rc < 0) {
		snprintf(err, errlen, "%s", in.err);
		cJSON_Delete(list);
		list = NULL;
	}
	pr_jsonl_close(&in);
	fclose(fp);
	free(path);
	return list;
}

static int
by_order(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	const char *key = is(x, "kind", "combine") ? "n" : "chunk";
	int64_t p = get_int(x, key, 0), q = get_int(y, key, 0);

	return (p > q) - (p < q);
}

/* The result's file with this role. */
static const char *
file_of(const cJSON *res, const char *role, const char **sha)
{
	const cJSON *f;

	cJSON_ArrayForEach(f, pr_json_get(res, "files"))
		if (is(f, "role", role)) {
			*sha = pr_json_get_string(f, "sha256");
			return pr_json_get_string(f, "path");
		}
	return NULL;
}

/* The frames a combine job processed: the LOW job it depends on, from its
 * keep_from for keep_frames. */
static int
combine_run(struct video *v, const cJSON *res, struct run_of_frames *run, char *err,
    size_t errlen)
{
	const char *id = pr_json_get_string(res, "id");
	const cJSON *vars = pr_json_get(res, "vars"), *d, *low = NULL;

	cJSON_ArrayForEach(d, pr_json_get(res, "deps")) {
		const cJSON *r = cJSON_IsString(d) ? result_of(v, d->valuestring) : NULL;
		if (r && is(r, "kind", "render") && is(r, "pass", "low"))
			low = r;
	}
	if (!low) {
		snprintf(err, errlen, "%s: the LOW job it post-processes is not in the input", id);
		return -1;
	}
	run->first = get_int(low, "start", 0) + get_int(vars, "keep_from", 0);
	run->count = get_int(vars, "keep_frames", 0);
	run->mult = (int)get_int(res, "frame_multiplier", 1);
	return 0;
}

static int64_t
run_frames(const struct run_of_frames *r)
{
	return r->count ? (r->count - 1) * r->mult + 1 : 0;
}

static void
add_segment(struct video *v, const char *job, const char *rel, const char *sha, int64_t from,
    int64_t to)
{
	struct segment *s;

	v->seg = pr_xrealloc(v->seg, (v->nseg + 1) * sizeof *v->seg);
	s = &v->seg[v->nseg++];
	memset(s, 0, sizeof *s);
	s->job = job;
	s->rel = pr_xstrdup(rel);
	s->path = local_path(rel);
	s->sha256 = sha && *sha ? pr_xstrdup(sha) : NULL;
	s->from = from;
	s->to = to;
}

int
gather(struct video *v, char *err, size_t errlen)
{
	struct pr_sha256 *h;
	const cJSON *r, *res;
	cJSON *plan, *list;
	const cJSON **jobs;
	size_t n = 0, i;
	int rc = -1;

	v->mode = "none";
	cJSON_ArrayForEach(r, v->results) {
		if (is(r, "kind", "combine") && pr_json_get_string(r, "mode"))
			v->mode = pr_json_get_string(r, "mode");
		if (v->total_frames <= 0)
			v->total_frames = get_int(pr_json_get(r, "vars"), "total_frames", 0);
	}
	err[0] = '\0';
	plan = plan_jobs(v, err, errlen);
	if (!plan && err[0])
		return -1;
	list = plan ? plan : v->results;
	cJSON_ArrayForEach(r, list)
		n += wanted(v, r);
	if (n == 0) {
		snprintf(err, errlen, "no %s in the %s", strcmp(v->mode, "none") == 0 ?
		    "LOW render job" : "combine job", plan ? "plan" : "input");
		cJSON_Delete(plan);
		return -1;
	}
	jobs = pr_xcalloc(n, sizeof *jobs);
	n = 0;
	cJSON_ArrayForEach(r, list)
		if (wanted(v, r))
			jobs[n++] = r;
	qsort(jobs, n, sizeof *jobs, by_order);

	h = pr_sha256_new();
	{
		char line[256];
		snprintf(line, sizeof line, "pr-combine 1\nmode %s\nreencode %d\n", v->mode, o.reencode);
		pr_sha256_add(h, line, strlen(line));
	}
	v->runs = pr_xcalloc(n, sizeof *v->runs);
	for (i = 0; i < n; i++) {
		const char *id = pr_json_get_string(jobs[i], "id");
		const char *status, *rel, *sha = NULL, *key;
		const cJSON *e;
		struct run_of_frames *run = &v->runs[v->nruns];

		if (!(res = result_of(v, id))) {
			v->missing_job = pr_xstrdup(id);
			v->failed_job = v->missing_job;
			snprintf(err, errlen, "%s: no result in the input (run pr-submit on this plan)", id);
			goto done;
		}
		v->failed_job = pr_json_get_string(res, "id");
		status = pr_json_get_string(res, "status");
		if (!status || strcmp(status, "success") != 0) {
			e = pr_json_get(res, "error");
			snprintf(err, errlen, "%s %s: %s", v->failed_job,
			    status && strcmp(status, "skipped") == 0 ? "was skipped" : "failed",
			    pr_json_get_string(e, "message") ? pr_json_get_string(e, "message")
			    : "no reason given");
			goto done;
		}
		if (strcmp(v->mode, "none") == 0) {
			const cJSON *keep = pr_json_get(res, "keep");
			int64_t a = 0, b = 0;
			pr_json_to_i64(cJSON_GetArrayItem(keep, 0), &a);
			pr_json_to_i64(cJSON_GetArrayItem(keep, 1), &b);
			run->first = get_int(res, "start", 0) + a;
			run->count = b - a;
			run->mult = 1;
			rel = file_of(res, "segment", &sha);
			if (rel)
				add_segment(v, v->failed_job, rel, sha, a, b);
		} else {
			if (combine_run(v, res, run, err, errlen) < 0)
				goto done;
			rel = file_of(res, strcmp(v->mode, "progressive") == 0 ? "combined" : "segment",
			    &sha);
			if (rel && (strcmp(v->mode, "segments") == 0 || i + 1 == n))
				add_segment(v, v->failed_job, rel, sha, 0, -1);
		}
		if (!rel) {
			snprintf(err, errlen, "%s: its result lists no %s file", v->failed_job,
			    strcmp(v->mode, "progressive") == 0 ? "combined" : "segment");
			goto done;
		}
		v->expect += run_frames(run);
		if (strcmp(v->mode, "segments") == 0)
			v->seg[v->nseg - 1].to = run_frames(run);
		key = pr_json_get_string(res, "key");
		{
			struct pr_buf line = PR_BUF_INIT;
			pr_buf_printf(&line, "job %s %s %s %s %lld %lld %d\n", v->failed_job,
			    key ? key : "-", rel, sha ? sha : "-", (long long)run->first,
			    (long long)run->count, run->mult);
			pr_sha256_add(h, line.data, line.len);
			pr_buf_free(&line);
		}
		run->job = v->failed_job;
		v->nruns++;
	}
	if (strcmp(v->mode, "progressive") == 0)
		v->seg[0].to = v->expect;
	v->failed_job = NULL;
	rc = 0;
done:
	pr_sha256_done(h, v->key);
	free(jobs);
	cJSON_Delete(plan);
	return rc;
}

void
video_free(struct video *v)
{
	for (size_t i = 0; i < v->nseg; i++) {
		free(v->seg[i].rel);
		free(v->seg[i].path);
		free(v->seg[i].sha256);
		if (v->seg[i].use != v->seg[i].path)
			free(v->seg[i].use);
	}
	free(v->seg);
	free(v->runs);
	free(v->missing_job);
	cJSON_Delete(v->results);
}
