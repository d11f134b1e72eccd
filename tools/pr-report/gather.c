/*
 * What the run did, from the records the other tools left: the finals on
 * standard input, STATE/results.jsonl (every job's outcome, timings and
 * files, with the plan's fields passed through; for a video without
 * results there, STATE/VIDEO/results.jsonl, as make keeps them),
 * STATE/VIDEO/plan.jsonl
 * (how many chunks each video was planned to have) and, for the price,
 * STATE/pod.jsonl or STATE/shutdown.jsonl.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "file.h"
#include "jsonl.h"
#include "names.h"
#include "report.h"

char *
out_path(const char *rel)
{
	return pr_xasprintf("%s/%s", o.out, rel);
}

static _Noreturn void
bad(const char *file, size_t line, const char *field, const char *what)
{
	pr_die(PR_EXIT_USAGE, "%s:%zu: %s: %s", file, line, field, what);
}

static int64_t
get_int(const cJSON *obj, const char *key)
{
	int64_t v;

	return pr_json_to_i64(pr_json_get(obj, key), &v) == 0 ? v : -1;
}

static double
get_time(const cJSON *timings, const char *key)
{
	double v;

	return pr_json_to_double(pr_json_get(timings, key), &v) == 0 && v >= 0 ? v : -1;
}

/* A member that, when present, must be of the type the report reads. */
static void
need_type(const cJSON *rec, const char *key, int type, const char *file,
    size_t line)
{
	const cJSON *v = pr_json_get(rec, key);
	char what[64];

	if (!v || cJSON_IsNull(v))
		return;
	if (type == cJSON_Number ? !pr_json_is_number(v) : !(v->type & type)) {
		snprintf(what, sizeof what, "expected %s, not %s",
		    type == cJSON_String ? "a string" : type == cJSON_Number ? "a number" :
		    type == cJSON_Object ? "an object" : "an array", pr_json_type_name(v));
		bad(file, line, key, what);
	}
}

static void
need_video(const cJSON *rec, const char *file, size_t line)
{
	const char *video = pr_json_get_string(rec, "video");
	char why[128];

	if (!video)
		bad(file, line, "video", "missing or not a string");
	if (pr_video_name_check(video, why, sizeof why) < 0)
		bad(file, line, "video", why);
}

/* Reads every record of a JSON Lines file into an array; check, when
 * given, vets each. */
static cJSON *
read_all(FILE *fp, const char *name, void (*check)(const cJSON *, const char *, size_t))
{
	struct pr_jsonl in;
	cJSON *all = pr_json_array(), *rec;
	int rc;

	pr_jsonl_open(&in, fp, name);
	while ((rc = pr_jsonl_next(&in, &rec)) == 1) {
		if (check)
			check(rec, name, in.line);
		cJSON_AddItemToArray(all, rec);
	}
	if (rc < 0)
		pr_die(in.status, "%s", in.err);
	pr_jsonl_close(&in);
	return all;
}

static void
check_final(const cJSON *rec, const char *file, size_t line)
{
	const char *status = pr_json_get_string(rec, "status");
	const char *path = pr_json_get_string(rec, "path");
	const cJSON *seg;
	const char *why;

	need_video(rec, file, line);
	if (!status || (strcmp(status, "success") != 0 && strcmp(status, "failed") != 0))
		bad(file, line, "status", "expected \"success\" or \"failed\" (is this pr-combine's output?)");
	need_type(rec, "path", cJSON_String, file, line);
	need_type(rec, "error", cJSON_Object, file, line);
	need_type(rec, "segments", cJSON_Array, file, line);
	if (strcmp(status, "success") == 0) {
		if (!path)
			bad(file, line, "path", "missing: a final that succeeded names its file");
		if ((why = pr_path_outside(path)))
			bad(file, line, "path", why);
		if (get_int(rec, "frames") < 1)
			bad(file, line, "frames", "expected a positive integer");
	}
	cJSON_ArrayForEach(seg, pr_json_get(rec, "segments")) {
		const cJSON *keep = pr_json_get(seg, "keep");
		int64_t a = -1, b = -1;
		if (cJSON_IsArray(keep) && cJSON_GetArraySize(keep) == 2) {
			pr_json_to_i64(cJSON_GetArrayItem(keep, 0), &a);
			pr_json_to_i64(cJSON_GetArrayItem(keep, 1), &b);
		}
		if (!pr_json_get_string(seg, "job") || get_int(seg, "first") < 0 ||
		    a < 0 || b < a)
			bad(file, line, "segments", "each needs a job, keep [from, to) and first");
	}
}

static void
check_result(const cJSON *rec, const char *file, size_t line)
{
	const cJSON *keep = pr_json_get(rec, "keep"), *f;
	const char *why;

	if (!pr_json_get_string(rec, "id"))
		bad(file, line, "id", "missing or not a string");
	need_video(rec, file, line);
	need_type(rec, "status", cJSON_String, file, line);
	need_type(rec, "kind", cJSON_String, file, line);
	need_type(rec, "pass", cJSON_String, file, line);
	need_type(rec, "server", cJSON_String, file, line);
	need_type(rec, "model", cJSON_String, file, line);
	need_type(rec, "timings", cJSON_Object, file, line);
	need_type(rec, "error", cJSON_Object, file, line);
	need_type(rec, "files", cJSON_Array, file, line);
	need_type(rec, "derive", cJSON_Array, file, line);
	need_type(rec, "vars", cJSON_Object, file, line);
	if (keep) {
		int64_t a = -1, b = -1;
		if (cJSON_IsArray(keep) && cJSON_GetArraySize(keep) == 2) {
			pr_json_to_i64(cJSON_GetArrayItem(keep, 0), &a);
			pr_json_to_i64(cJSON_GetArrayItem(keep, 1), &b);
		}
		if (a < 0 || b < a)
			bad(file, line, "keep", "expected [from, to) with 0 <= from <= to");
	}
	cJSON_ArrayForEach(f, pr_json_get(rec, "files")) {
		const char *p = pr_json_get_string(f, "path");
		if (!p || !pr_json_get_string(f, "role"))
			bad(file, line, "files", "each entry needs a path and a role");
		if ((why = pr_path_outside(p)))
			bad(file, line, "files", why);
	}
	cJSON_ArrayForEach(f, pr_json_get(rec, "derive")) {
		const char *p = pr_json_get_string(f, "path");
		if (!p || get_int(f, "frame") < 0)
			bad(file, line, "derive", "each entry needs a path and a frame");
		if ((why = pr_path_outside(p)))
			bad(file, line, "derive", why);
	}
	if (pr_json_get(rec, "vars")) {
		const cJSON *ref = pr_json_get(pr_json_get(rec, "vars"), "reference");
		if (ref && !cJSON_IsString(ref))
			bad(file, line, "vars.reference", "expected a string");
	}
}

/* An optional file of the state folder: NULL when it is not there. */
static cJSON *
read_state_file(const char *rel, void (*check)(const cJSON *, const char *, size_t))
{
	char *path = pr_xasprintf("%s/%s", o.state, rel);
	FILE *fp = fopen(path, "r");
	cJSON *all = NULL;

	if (fp) {
		all = read_all(fp, path, check);
		fclose(fp);
	} else if (errno != ENOENT) {
		pr_die(PR_EXIT_INFRA, "%s: %s", path, strerror(errno));
	}
	free(path);
	return all;
}

static void
fill_job(struct job *j, const cJSON *rec)
{
	const cJSON *t = pr_json_get(rec, "timings"), *keep = pr_json_get(rec, "keep"), *f;
	const char *ref = pr_json_get_string(pr_json_get(rec, "vars"), "reference");

	j->rec = rec;
	j->id = pr_json_get_string(rec, "id");
	j->video = pr_json_get_string(rec, "video");
	j->kind = pr_json_get_string(rec, "kind");
	j->pass = pr_json_get_string(rec, "pass");
	j->status = pr_json_get_string(rec, "status");
	j->server = pr_json_get_string(rec, "server");
	j->model = pr_json_get_string(rec, "model");
	j->chunk = get_int(rec, "chunk");
	j->start = get_int(rec, "start");
	j->frames = get_int(rec, "frames");
	j->keep_from = j->keep_to = -1;
	if (keep) {
		pr_json_to_i64(cJSON_GetArrayItem(keep, 0), &j->keep_from);
		pr_json_to_i64(cJSON_GetArrayItem(keep, 1), &j->keep_to);
	}
	j->submitted = get_time(t, "submitted");
	j->started = get_time(t, "started");
	j->finished = get_time(t, "finished");
	j->collected = get_time(t, "collected");
	j->attempts = get_int(rec, "attempts");
	j->cached = cJSON_IsTrue(pr_json_get(rec, "cached"));
	cJSON_ArrayForEach(f, pr_json_get(rec, "files"))
		if (strcmp(pr_json_get_string(f, "role"), "segment") == 0)
			j->segment = pr_json_get_string(f, "path");
	/* A reference beside the prompt file (chunk 0) is an absolute path:
	 * not one of the run's files, and not a seam's. */
	j->reference = ref && !pr_path_outside(ref) ? ref : NULL;
}

static struct video *
find_video(struct run *r, const char *name)
{
	for (size_t i = 0; i < r->nvideos; i++)
		if (strcmp(r->videos[i].name, name) == 0)
			return &r->videos[i];
	return NULL;
}

static struct video *
add_video(struct run *r, const char *name)
{
	struct video *v = find_video(r, name);

	if (v)
		return v;
	r->videos = pr_xrealloc(r->videos, (r->nvideos + 1) * sizeof *r->videos);
	v = &r->videos[r->nvideos++];
	*v = (struct video){ .name = name, .status = "failed", .planned_chunks = -1,
	    .error = "no final record: the video was not combined" };
	return v;
}

static int64_t
planned_chunks(const char *video)
{
	char *rel = pr_xasprintf("%s/plan.jsonl", video);
	cJSON *plan = read_state_file(rel, NULL), *rec;
	int64_t n = -1;

	cJSON_ArrayForEach(rec, plan) {
		int64_t c = get_int(rec, "chunk");
		if (c >= n)
			n = c + 1;
	}
	cJSON_Delete(plan);
	free(rel);
	return n;
}

static int
by_start(const void *a, const void *b)
{
	const struct job *x = *(struct job *const *)a, *y = *(struct job *const *)b;

	return (x->started > y->started) - (x->started < y->started);
}

/* A model is loaded when a server starts a prompt naming another model
 * than the prompt it ran before: an estimate (ComfyUI says nothing of
 * loads), and labelled so. */
static void
estimate_loads(struct run *r)
{
	struct job **ran = pr_xcalloc(r->njobs + 1, sizeof *ran);
	size_t n = 0;

	for (size_t i = 0; i < r->njobs; i++)
		if (!r->jobs[i].cached && r->jobs[i].started >= 0 && r->jobs[i].server)
			ran[n++] = &r->jobs[i];
	qsort(ran, n, sizeof *ran, by_start);
	for (size_t i = 0; i < n; i++) {
		const struct job *prev = NULL;
		for (size_t k = i; k-- > 0;)
			if (strcmp(ran[k]->server, ran[i]->server) == 0) {
				prev = ran[k];
				break;
			}
		ran[i]->model_load = ran[i]->model &&
		    (!prev || !prev->model || strcmp(prev->model, ran[i]->model) != 0);
	}
	free(ran);
}

/* The run in numbers: prompts, retries, and GPU time per server. */
static void
count(struct run *r)
{
	for (size_t i = 0; i < r->njobs; i++) {
		const struct job *j = &r->jobs[i];
		struct server_time *s = NULL;
		if (j->cached)
			r->cached++;
		else if (j->started >= 0)
			r->ran++;
		r->failed += j->status && strcmp(j->status, "failed") == 0;
		r->skipped += j->status && strcmp(j->status, "skipped") == 0;
		r->retried += j->attempts > 1 ? j->attempts - 1 : 0;
		r->loads += j->model_load;
		if (!j->server || j->cached || j->started < 0)
			continue;
		for (size_t k = 0; k < r->nservers && !s; k++)
			if (strcmp(r->servers[k].server, j->server) == 0)
				s = &r->servers[k];
		if (!s) {
			r->servers = pr_xrealloc(r->servers, (r->nservers + 1) * sizeof *r->servers);
			s = &r->servers[r->nservers++];
			*s = (struct server_time){ .server = j->server };
		}
		if (j->finished >= j->started) {
			s->busy += j->finished - j->started;
			s->prompts++;
		}
		s->loads += j->model_load;
	}
}

/* The price RunPod gave: while the run went on (pr-shutdown --status,
 * which pipeline.sh asks before the report) or else at a shutdown, which
 * comes after the report and so is a previous run's. */
static void
find_price(struct run *r)
{
	static const struct { const char *file, *from; } sources[] = {
		{ "pod.jsonl", "as RunPod reported it during the run" },
		{ "shutdown.jsonl", "as RunPod reported it at the last shutdown" },
	};
	cJSON *recs, *rec;
	double p;

	r->price = -1;
	if (o.price >= 0) {
		r->price = o.price;
		r->price_from = "as given";
		return;
	}
	for (size_t i = 0; i < sizeof sources / sizeof *sources && r->price < 0; i++) {
		if (!(recs = read_state_file(sources[i].file, NULL)))
			continue;
		cJSON_ArrayForEach(rec, recs)
			if (pr_json_to_double(pr_json_get(rec, "cost_per_hr"), &p) == 0 && p >= 0) {
				r->price = p;
				r->price_from = sources[i].from;
			}
		cJSON_Delete(recs);
	}
}

void
gather(struct run *r)
{
	const cJSON *rec;
	double now = pr_wall();

	*r = (struct run){ .t0 = -1, .t1 = -1, .wall = -1 };
	r->finals = read_all(stdin, "<stdin>", check_final);
	r->results = read_state_file("results.jsonl", check_result);
	if (!r->results)
		r->results = pr_json_array();

	cJSON_ArrayForEach(rec, r->finals) {
		struct video *v = add_video(r, pr_json_get_string(rec, "video"));
		v->final = rec;
		v->status = pr_json_get_string(rec, "status");
		v->error = strcmp(v->status, "success") == 0 ? NULL :
		    pr_json_get_string(pr_json_get(rec, "error"), "message");
		if (!v->error && strcmp(v->status, "success") != 0)
			v->error = "the final record gives no reason";
	}

	/* make keeps each video's results in its own folder. */
	for (size_t i = 0; i < r->nvideos; i++) {
		bool have = false;
		char *rel;
		cJSON *more;
		cJSON_ArrayForEach(rec, r->results)
			have = have || strcmp(pr_json_get_string(rec, "video"), r->videos[i].name) == 0;
		if (have)
			continue;
		rel = pr_xasprintf("%s/results.jsonl", r->videos[i].name);
		if ((more = read_state_file(rel, check_result))) {
			cJSON *item;
			while ((item = cJSON_DetachItemFromArray(more, 0)))
				cJSON_AddItemToArray(r->results, item);
			cJSON_Delete(more);
		}
		free(rel);
	}

	r->jobs = pr_xcalloc((size_t)cJSON_GetArraySize(r->results) + 1, sizeof *r->jobs);
	cJSON_ArrayForEach(rec, r->results)
		fill_job(&r->jobs[r->njobs++], rec);
	for (size_t i = 0; i < r->njobs; i++) {
		struct video *v = add_video(r, r->jobs[i].video);
		v->jobs = pr_xrealloc(v->jobs, (v->njobs + 1) * sizeof *v->jobs);
		v->jobs[v->njobs++] = &r->jobs[i];
	}
	for (size_t i = 0; i < r->nvideos; i++)
		r->videos[i].planned_chunks = planned_chunks(r->videos[i].name);

	for (size_t i = 0; i < r->njobs; i++) {
		const struct job *j = &r->jobs[i];
		double a = j->submitted >= 0 ? j->submitted : j->started;
		double b = j->collected >= 0 ? j->collected : j->finished;
		if (j->cached)
			continue;
		if (a >= 0 && (r->t0 < 0 || a < r->t0))
			r->t0 = a;
		if (b >= 0 && b > r->t1)
			r->t1 = b;
	}
	r->wall_given = o.started >= 0;
	r->wall = r->wall_given ? now - o.started : r->t1 > r->t0 ? r->t1 - r->t0 : 0;
	estimate_loads(r);
	count(r);
	find_price(r);
}

struct job *
find_job(const struct video *v, const char *id)
{
	for (size_t i = v->njobs; i-- > 0;)
		if (strcmp(v->jobs[i]->id, id) == 0)
			return v->jobs[i];
	return NULL;
}

void
run_free(struct run *r)
{
	for (size_t i = 0; i < r->nvideos; i++) {
		struct video *v = &r->videos[i];
		for (size_t s = 0; s < v->nseams; s++)
			for (int t = 0; t < 3; t++)
				free(v->seams[s].t[t].file);
		free(v->seams);
		free(v->jobs);
		free(v->sheet);
		free(v->sheet_error);
	}
	free(r->videos);
	free(r->jobs);
	free(r->servers);
	cJSON_Delete(r->finals);
	cJSON_Delete(r->results);
}
