/*
 * Preflight: every job that will run is checked before the first GPU
 * second is spent, the way ComfyUI itself will check it, plus what
 * ComfyUI only finds out mid-run (a source video too short). Every
 * problem is reported, not just the first.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "submit.h"

struct files_ctx {
	struct run *R;
	struct job *j;
	struct server *s;
};

/* Whether the job uploads a file under that server name (and so it will
 * exist when the job runs). */
static const cJSON *
staged_as(const struct job *j, const char *name)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, pr_json_get(j->rec, "stage")) {
		const char *as = pr_json_get_string(it, "as");
		if (as && strcmp(as, name) == 0)
			return it;
	}
	return NULL;
}

static bool
file_exists(void *ctx, const char *folder, const char *path)
{
	struct files_ctx *c = ctx;

	if (strcmp(folder, "input") == 0 && staged_as(c->j, path))
		return true;    /* the stage list itself is checked apart */
	if (strcmp(folder, "cwd") == 0)
		return true;    /* the server's working directory: not visible */
	return server_has_file(c->s, folder, path);
}

static size_t
distance(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b), *row = pr_xcalloc(m + 1, sizeof *row), best;

	for (size_t k = 0; k <= m; k++)
		row[k] = k;
	for (size_t i = 1; i <= n; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t k = 1; k <= m; k++) {
			size_t up = row[k];
			size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[k - 1]);
			size_t v = diag + cost;
			if (up + 1 < v)
				v = up + 1;
			if (row[k - 1] + 1 < v)
				v = row[k - 1] + 1;
			row[k] = v;
			diag = up;
		}
	}
	best = row[m];
	free(row);
	return best;
}

/* The option of class.input closest to value, from the server's own
 * /object_info (the error's list is cut at 20 options). */
static const char *
closest(const struct server *s, const char *class, const char *input, const char *value)
{
	static const char *const groups[] = { "required", "optional" };
	const cJSON *in = pr_json_get(pr_json_get(s->object_info, class), "input");
	const char *best = NULL;
	size_t bestd = (size_t)-1;

	for (int g = 0; g < 2; g++) {
		const cJSON *spec = pr_json_get(pr_json_get(in, groups[g]), input), *opt;
		cJSON_ArrayForEach(opt, cJSON_GetArrayItem(spec, 0)) {
			if (!cJSON_IsString(opt))
				continue;
			size_t d = distance(value, opt->valuestring);
			if (d < bestd) {
				bestd = d;
				best = opt->valuestring;
			}
		}
	}
	return best;
}

static int
report_validation(struct run *R, struct job *j, struct server *s,
    const struct pr_validation *v)
{
	const cJSON *ne, *e;
	const char *where = R->nservers > 1 ? s->url : NULL;
	int problems = 0;

	cJSON_ArrayForEach(ne, v->node_errors) {
		const char *class = pr_json_get_string(ne, "class_type");
		cJSON_ArrayForEach(e, pr_json_get(ne, "errors")) {
			const cJSON *extra = pr_json_get(e, "extra_info");
			const char *input = pr_json_get_string(extra, "input_name");
			const char *type = pr_json_get_string(e, "type");
			const cJSON *got = pr_json_get(extra, "received_value");
			const char *hint = NULL;
			char *gottext = got ? pr_json_print(got, 0) : NULL;

			if (type && strcmp(type, "value_not_in_list") == 0 && cJSON_IsString(got) && input)
				hint = closest(s, class ? class : "", input, got->valuestring);
			pr_warn("job %s: node %s (%s)%s%s: %s%s%s%s%s%s%s%s", j->id, ne->string,
			    class ? class : "?", input ? ": input " : "", input ? input : "",
			    pr_json_get_string(e, "message") ? pr_json_get_string(e, "message") : "invalid",
			    gottext ? ": got " : "", gottext ? gottext : "",
			    hint ? "; closest available: \"" : "", hint ? hint : "", hint ? "\"" : "",
			    where ? " on " : "", where ? where : "");
			free(gottext);
			problems++;
		}
	}
	if (v->error && !problems) {
		pr_warn("job %s: %s%s%s", j->id, pr_json_get_string(v->error, "message"),
		    *pr_json_get_string(v->error, "details") ? ": " : "",
		    pr_json_get_string(v->error, "details"));
		problems++;
	}
	return problems;
}

/* An input's value, following a link to a constant node (INTConstant and
 * friends keep theirs in "value"). */
static bool
int_input(const cJSON *workflow, const cJSON *node, const char *name, int64_t *out)
{
	const cJSON *v = pr_json_get(pr_json_get(node, "inputs"), name);

	for (int hops = 0; cJSON_IsArray(v) && hops < 8; hops++) {
		const cJSON *src = cJSON_GetArrayItem(v, 0);
		if (!cJSON_IsString(src))
			return false;
		v = pr_json_get(pr_json_get(pr_json_get(workflow, src->valuestring), "inputs"), "value");
	}
	return pr_json_to_i64(v, out) == 0;
}

struct probe {
	char *path;
	int ok;
	long frames;
	double fps;
	char err[256];
};

static struct probe *probes;
static size_t nprobes;

static struct probe *
probe(const char *path)
{
	struct pr_video_info info;

	for (size_t i = 0; i < nprobes; i++)
		if (strcmp(probes[i].path, path) == 0)
			return &probes[i];
	probes = pr_xrealloc(probes, (nprobes + 1) * sizeof *probes);
	struct probe *p = &probes[nprobes++];
	memset(p, 0, sizeof *p);
	p->path = pr_xstrdup(path);
	if (pr_video_probe(path, &info, p->err, sizeof p->err) == 0) {
		p->ok = 1;
		p->frames = info.frames;
		p->fps = info.fps_den ? (double)info.fps_num / info.fps_den : 0;
	}
	return p;
}

/* The source video: staged from here, so it can be measured before any
 * GPU time is spent on it. */
static int
check_videos(struct run *R, struct job *j, const struct server *s)
{
	const cJSON *wf = pr_json_get(j->rec, "workflow"), *node;
	int problems = 0;

	cJSON_ArrayForEach(node, wf) {
		const char *class = pr_json_get_string(node, "class_type");
		const char *video = pr_json_get_string(pr_json_get(node, "inputs"), "video");
		const cJSON *st;
		int64_t skip = 0, cap = 0, nth = 1, rate = 0;

		if (!class || strcmp(class, "VHS_LoadVideo") != 0 || !video || !(st = staged_as(j, video)))
			continue;
		char *local = job_local_path(R, pr_json_get_string(st, "path"));
		struct stat sb;
		if (stat(local, &sb) < 0 || job_producer(R, pr_json_get_string(st, "path"))) {
			free(local);
			continue;   /* reported with the stage list */
		}
		if (s->max_upload && sb.st_size > s->max_upload) {
			pr_warn("job %s: node %s (%s): input video %s is %lld bytes, over the server's "
			    "upload limit of %lld (%s)", j->id, node->string, class, local,
			    (long long)sb.st_size, (long long)s->max_upload, s->url);
			problems++;
		}
		struct probe *p = probe(local);
		if (!p->ok) {
			pr_warn("job %s: node %s (%s): input video %s cannot be read: %s", j->id,
			    node->string, class, local, p->err);
			free(local);
			problems++;
			continue;
		}
		int_input(wf, node, "skip_first_frames", &skip);
		int_input(wf, node, "frame_load_cap", &cap);
		int_input(wf, node, "select_every_nth", &nth);
		int_input(wf, node, "force_rate", &rate);
		if (nth < 1)
			nth = 1;
		/* VHS resamples to force_rate first, then skips, then takes
		 * every nth frame up to the cap. */
		long have = p->frames;
		if (rate > 0 && p->fps > 0)
			have = (long)floor(p->frames * (double)rate / p->fps + 1e-6);
		int64_t need = skip + (cap > 0 ? (cap - 1) * nth + 1 : 1);
		if (have < need) {
			pr_warn("job %s: node %s (%s): input video %s has %ld frames%s, the job needs %lld "
			    "(skip_first_frames %lld + frame_load_cap %lld)", j->id, node->string, class,
			    local, have, rate > 0 ? " at the loader's rate" : "", (long long)need,
			    (long long)skip, (long long)cap);
			problems++;
		}
		free(local);
	}
	return problems;
}

static int
check_stage(struct run *R, struct job *j, const struct server *s)
{
	const cJSON *it;
	int problems = 0;

	cJSON_ArrayForEach(it, pr_json_get(j->rec, "stage")) {
		const char *path = pr_json_get_string(it, "path");
		const char *as = pr_json_get_string(it, "as");
		char *local;
		struct stat sb;

		if (job_producer(R, path))
			continue;
		if (strstr(as, "..") || as[0] == '/' || as[strlen(as) - 1] == '/') {
			pr_warn("job %s: stage: server name \"%s\" is not a plain relative path", j->id, as);
			problems++;
		}
		local = job_local_path(R, path);
		if (stat(local, &sb) < 0 || !S_ISREG(sb.st_mode)) {
			pr_warn("job %s: stage: %s is not there and no job makes it", j->id, local);
			problems++;
		} else if (s->max_upload && sb.st_size > s->max_upload) {
			pr_warn("job %s: stage: %s is %lld bytes, over the upload limit of %lld of %s",
			    j->id, local, (long long)sb.st_size, (long long)s->max_upload, s->url);
			problems++;
		}
		free(local);
	}
	return problems;
}

int
preflight(struct run *R)
{
	int problems = 0;

	for (size_t i = 0; i < R->njobs; i++) {
		struct job *j = &R->jobs[i];
		cJSON *targets;
		bool checked = false;

		if (j->state != JOB_WAITING)
			continue;
		targets = job_targets(j);
		for (size_t k = 0; k < R->nservers; k++) {
			struct server *s = &R->servers[k];
			struct files_ctx ctx = { R, j, s };
			struct pr_validate_files files = { file_exists, &ctx };
			struct pr_validation v;

			if (!s->usable)
				continue;
			pr_validate_prompt(pr_json_get(j->rec, "workflow"),
			    targets, s->object_info,
			    pr_nodes(), &files, &v);
			/* A server the job only falls back on (another's
			 * affinity) may lack its model: the job just never
			 * goes there. */
			if (!v.error && !cJSON_GetArraySize(v.node_errors))
				j->runs_on |= UINT64_C(1) << s->index;
			else if (schedule_preferred(R, j, s))
				problems += report_validation(R, j, s, &v);
			pr_validation_free(&v);
			/* Local files are the same for every server. */
			if (!checked) {
				problems += check_stage(R, j, s);
				problems += check_videos(R, j, s);
				checked = true;
			}
		}
		cJSON_Delete(targets);
	}
	for (size_t i = 0; i < nprobes; i++)
		free(probes[i].path);
	free(probes);
	probes = NULL;
	nprobes = 0;
	return problems;
}
