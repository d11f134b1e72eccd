/*
 * pr-plan: prompt records in, job records out. Splits each video into
 * chunks Wan can render, makes a HIGH and a LOW job per chunk, chains the
 * reference images from chunk to chunk and adds the combine jobs. It knows
 * nothing about node ids or servers (DESIGN §2): docs/FORMATS.md,
 * "Planning (pr-plan)" and the "job" record, is what this file implements.
 */
/* realpath(3) is XSI; the Makefile asks only for POSIX.1-2008. */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "pr.h"

static const char usage[] =
    "usage: pr-plan [--chunk N] [--no-align] [--overlap K]\n"
    "               [--combine none|segments|progressive] [--seed N|random]\n"
    "               [--ref-offset N] [--high-model NAME] [--low-model NAME]\n"
    "               [--high-lora NAME] [--low-lora NAME] [--max-frames N]\n"
    "               < prompts > jobs\n";

static const char help[] =
    "Turns prompt records (from pr-parse) into job records (for pr-patch): per\n"
    "video, a HIGH and a LOW render job for every chunk, then the combine jobs.\n"
    "\n"
    "  --chunk N          longest chunk in frames (default 100)\n"
    "  --no-align         the plan document's chunks: start k*N, LENGTH min(N, rest),\n"
    "                     even when Wan renders fewer frames than that\n"
    "  --overlap K        each chunk starts K frames before the previous one ends\n"
    "                     (default 0); the overlap is not kept twice\n"
    "  --combine MODE     none (default), segments or progressive\n"
    "  --seed N|random    sampler seed for every job (0 to 2^64-1), or one drawn\n"
    "                     per video (default: the workflow's own)\n"
    "  --ref-offset N     reference frame = frames - N of the previous chunk\n"
    "                     (default 10)\n"
    "  --high-model NAME  default Wan2.2_T2V_High_Noise_14B_VACE-Q8_0.gguf\n"
    "  --low-model NAME   default Wan2.2_T2V_Low_Noise_14B_VACE-Q8_0.gguf\n"
    "  --high-lora NAME   default wan2.2_high_t2v.safetensors\n"
    "  --low-lora NAME    default wan2.2_low_t2v.safetensors\n"
    "  --max-frames N     largest total_frames accepted (default 100000)\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 done, 2 bad option or input (nothing written), 3 cannot write.\n"
    "See pr-plan(1) and docs/FORMATS.md.\n";

/* Bounds that keep every sum and product of the frame math inside int64. */
#define MAX_OPTION_FRAMES (INT64_MAX / 4)

enum pass { PASS_HIGH, PASS_LOW };
enum combine { COMBINE_NONE, COMBINE_SEGMENTS, COMBINE_PROGRESSIVE };
enum seed_kind { SEED_NONE, SEED_FIXED, SEED_RANDOM };

static const char *const pass_names[] = { "high", "low" };
static const char *const combine_names[] = { "none", "segments", "progressive" };

struct opts {
	int64_t chunk;          /* C */
	int64_t overlap;        /* K */
	bool align;
	enum combine combine;
	enum seed_kind seed_kind;
	uint64_t seed;          /* SEED_FIXED */
	int64_t ref_offset;     /* R */
	int64_t max_frames;
	const char *model[2];   /* by enum pass */
	const char *lora[2];
};

/* One chunk of a video, in source frames and in the segment it renders. */
struct chunk {
	int64_t start;          /* first source frame read */
	int64_t frames;         /* LENGTH sent to the workflow */
	int64_t rendered;       /* frames Wan yields for that LENGTH */
	int64_t keep_from;      /* [keep_from, keep_to): rendered frames */
	int64_t keep_to;        /*   that belong in the final video */
};

/* A validated prompt record and what lies beside its prompt file. */
struct video {
	const cJSON *rec;
	const char *name;
	int64_t total;          /* T */
	char *reference;        /* realpath of <video>.png, or NULL */
	char *input_path;       /* realpath of the local source video, or NULL */
	bool has_seed;
	uint64_t seed;
	struct chunk *chunks;
	size_t nchunks;
};

/* The fields a prompt record has; any other is passed through into vars. */
static const char *const prompt_fields[] = {
	"video", "input_video", "total_frames", "positive", "negative", "source",
	NULL,
};

/* How deep a passed-through field may nest: the job record, its vars, a
 * workflow, its node and the node's inputs must fit around it within
 * PR_JSON_MAX_DEPTH, the most any of the tools reads. */
#define MAX_PASS_DEPTH (PR_JSON_MAX_DEPTH - 8)

/* Names pr-plan itself gives to job fields or vars: a prompt field with one
 * of these names cannot be passed through without replacing a planned
 * value or shadowing a job field in pr-patch's ${name} lookup. */
static const char *const planned_names[] = {
	"id", "kind", "n", "n3", "deps", "vars", "pass", "chunk", "start",
	"frames", "keep", "model", "mode", "lora", "seed", "input_video_path",
	"reference", "latent", "segment", "keep_from", "keep_to",
	"reference_out", "reference_frame", "keep_frames", "output",
	"output_role", "previous", NULL,
};

static bool
in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

/* ---- planning math (FORMATS "Planning") ---- */

/* Frames Wan renders for a LENGTH of f >= 1: the largest 4k+1 <= f. */
static int64_t
wan(int64_t f)
{
	return 4 * ((f - 1) / 4) + 1;
}

/* ceil(a / b) for a >= 0, b > 0. */
static int64_t
ceil_div(int64_t a, int64_t b)
{
	return a / b + (a % b != 0);
}

/* The smallest 4k+1 >= f, for f >= 1. */
static int64_t
wan_up(int64_t f)
{
	return 4 * ceil_div(f - 1, 4) + 1;
}

/*
 * Default: every LENGTH is 4k+1, so what is rendered is what was asked
 * for. Chunks of M frames start M-K apart; the last one is the smallest
 * 4k+1 that covers the rest of its nominal range, moved back to end at T.
 * Because the rest is more than K and at most M frames, that LENGTH is at
 * most M and the chunk still overlaps its predecessor by K frames or more.
 */
static int
plan_aligned(int64_t T, int64_t C, int64_t K, struct chunk **out, size_t *n,
    char *why, size_t whylen)
{
	int64_t M, step, N, k;
	struct chunk *ch;

	if (T >= 2 && T <= 4) {
		snprintf(why, whylen, "%" PRId64 " frames cannot be made of 4k+1-frame "
		    "chunks (1, 5, 9, ...); use --no-align", T);
		return -1;
	}
	M = wan(T < C ? T : C);
	if (K >= M) {
		snprintf(why, whylen, "--overlap %" PRId64 " must be smaller than "
		    "its chunks of %" PRId64 " frames", K, M);
		return -1;
	}
	step = M - K;
	N = T <= M ? 1 : 1 + ceil_div(T - M, step);
	ch = pr_xcalloc((size_t)N, sizeof *ch);
	for (k = 0; k < N - 1; k++) {
		ch[k].start = k * step;
		ch[k].frames = M;
	}
	ch[N - 1].frames = wan_up(T - (N - 1) * step);
	ch[N - 1].start = T - ch[N - 1].frames;
	for (k = 0; k < N; k++) {
		ch[k].rendered = ch[k].frames;
		/* Drop what the previous chunk already rendered, so the kept
		 * ranges tile [0, T). */
		ch[k].keep_from = k == 0 ? 0 :
		    ch[k - 1].start + ch[k - 1].frames - ch[k].start;
		ch[k].keep_to = ch[k].rendered;
	}
	*out = ch;
	*n = (size_t)N;
	return 0;
}

/*
 * --no-align: the plan document's rule as written. Chunk k sends
 * min(C, rest) frames; each starts K before the previous one ends. Wan
 * renders wan(LENGTH) of them, and the final video keeps what was
 * rendered minus what the previous chunk's segment already holds.
 */
static int
plan_unaligned(int64_t T, int64_t C, int64_t K, struct chunk **out, size_t *n)
{
	int64_t N, k, start = 0, prev_end;
	struct chunk *ch;

	N = T <= C ? 1 : 1 + ceil_div(T - C, C - K);
	ch = pr_xcalloc((size_t)N, sizeof *ch);
	for (k = 0; k < N; k++) {
		ch[k].start = start;
		ch[k].frames = T - start < C ? T - start : C;
		ch[k].rendered = wan(ch[k].frames);
		ch[k].keep_to = ch[k].rendered;
		if (k > 0) {
			prev_end = ch[k - 1].start + ch[k - 1].rendered;
			ch[k].keep_from = prev_end > start ? prev_end - start : 0;
			if (ch[k].keep_from > ch[k].keep_to)
				ch[k].keep_from = ch[k].keep_to;
		}
		start += ch[k].frames - K;
	}
	*out = ch;
	*n = (size_t)N;
	return 0;
}

/* The frame of chunk c's segment the next chunk is conditioned on. */
static int64_t
reference_frame(const struct chunk *c, int64_t R)
{
	int64_t f = c->frames <= R ? 0 : c->frames - R;

	return f > c->rendered - 1 ? c->rendered - 1 : f;
}

/* ---- records ---- */

/* "<video>/job_001" and friends. */
static void
job_id(char *out, size_t len, const char *video, const char *kind, int64_t n)
{
	char name[64];

	pr_job_name(name, sizeof name, kind, (long)n);
	snprintf(out, len, "%s/%s", video, name);
}

static void
add_dep(cJSON *deps, const char *video, const char *kind, int64_t n)
{
	char id[256];

	job_id(id, sizeof id, video, kind, n);
	cJSON_AddItemToArray(deps, pr_json_string(id));
}

/* A job record's first fields: id, video, kind, n. The id goes to id. */
static cJSON *
new_job(const struct video *v, const char *kind, int64_t n, char *id, size_t idlen)
{
	cJSON *job = pr_json_object();

	job_id(id, idlen, v->name, strcmp(kind, "render") == 0 ? "job" : "combine", n);
	pr_json_set_string(job, "id", id);
	pr_json_set_string(job, "video", v->name);
	pr_json_set_string(job, "kind", kind);
	pr_json_set_int(job, "n", n);
	return job;
}

/* The vars every job of a video starts with: video, id, n, n3. */
static cJSON *
new_vars(const struct video *v, const char *id, int64_t n)
{
	cJSON *vars = pr_json_object();
	char n3[32];

	snprintf(n3, sizeof n3, "%03" PRId64, n);
	pr_json_set_string(vars, "video", v->name);
	pr_json_set_string(vars, "id", id);
	pr_json_set_int(vars, "n", n);
	pr_json_set_string(vars, "n3", n3);
	return vars;
}

/* The prompt's unknown fields end every job's vars (FORMATS "Records"). */
static void
finish_vars(cJSON *vars, const struct video *v)
{
	const cJSON *f;

	cJSON_ArrayForEach(f, v->rec)
		if (!in_list(prompt_fields, f->string))
			pr_json_set(vars, f->string, pr_json_copy(f));
}

/* The HIGH or LOW job of chunk k. */
static cJSON *
render_job(const struct opts *o, const struct video *v, size_t k, enum pass pass)
{
	const struct chunk *c = &v->chunks[k];
	int64_t high = 2 * (int64_t)k + 1, low = high + 1;
	int64_t n = pass == PASS_HIGH ? high : low;
	bool first = k == 0, has_next = k + 1 < v->nchunks;
	char id[256], path[512];
	cJSON *job, *deps, *keep, *vars;
	const char *s;

	job = new_job(v, "render", n, id, sizeof id);
	pr_json_set_string(job, "pass", pass_names[pass]);
	pr_json_set_int(job, "chunk", (int64_t)k);
	pr_json_set_int(job, "start", c->start);
	pr_json_set_int(job, "frames", c->frames);
	if (pass == PASS_LOW) {
		keep = pr_json_array();
		cJSON_AddItemToArray(keep, pr_json_int(c->keep_from));
		cJSON_AddItemToArray(keep, pr_json_int(c->keep_to));
		pr_json_set(job, "keep", keep);
	}
	pr_json_set_string(job, "model", o->model[pass]);

	/* LOW continues its HIGH's latent; both passes of a later chunk are
	 * conditioned on the previous LOW's reference image. */
	deps = pr_json_array();
	if (pass == PASS_LOW)
		add_dep(deps, v->name, "job", high);
	if (!first)
		add_dep(deps, v->name, "job", high - 1);
	pr_json_set(job, "deps", deps);

	vars = new_vars(v, id, n);
	pr_json_set_string(vars, "pass", pass_names[pass]);
	pr_json_set_int(vars, "chunk", (int64_t)k);
	pr_json_set_int(vars, "start", c->start);
	pr_json_set_int(vars, "frames", c->frames);
	pr_json_set_string(vars, "model", o->model[pass]);
	pr_json_set_string(vars, "lora", o->lora[pass]);
	pr_json_set_string(vars, "positive", pr_json_get_string(v->rec, "positive"));
	pr_json_set_string(vars, "negative", pr_json_get_string(v->rec, "negative"));
	pr_json_set_string(vars, "input_video", pr_json_get_string(v->rec, "input_video"));
	pr_json_set_int(vars, "total_frames", v->total);
	if ((s = pr_json_get_string(v->rec, "source")))
		pr_json_set_string(vars, "source", s);
	if (v->has_seed)
		pr_json_set(vars, "seed", pr_json_uint(v->seed));
	if (v->input_path)
		pr_json_set_string(vars, "input_video_path", v->input_path);
	if (!first) {
		snprintf(path, sizeof path, "references/%s/job_%03" PRId64 "_ref.png",
		    v->name, high - 1);
		pr_json_set_string(vars, "reference", path);
	} else if (v->reference) {
		pr_json_set_string(vars, "reference", v->reference);
	}
	snprintf(path, sizeof path, "latents/%s/job_%03" PRId64 ".latent", v->name, high);
	pr_json_set_string(vars, "latent", path);
	if (pass == PASS_LOW) {
		snprintf(path, sizeof path, "videos/%s/job_%03" PRId64 ".mp4", v->name, low);
		pr_json_set_string(vars, "segment", path);
		pr_json_set_int(vars, "keep_from", c->keep_from);
		pr_json_set_int(vars, "keep_to", c->keep_to);
		if (has_next) {
			snprintf(path, sizeof path, "references/%s/job_%03" PRId64 "_ref.png",
			    v->name, low);
			pr_json_set_string(vars, "reference_out", path);
			pr_json_set_int(vars, "reference_frame", reference_frame(c, o->ref_offset));
		}
	}
	finish_vars(vars, v);
	pr_json_set(job, "vars", vars);
	return job;
}

/* Combine job k+1, for the LOW segment of chunk k. */
static cJSON *
combine_job(const struct opts *o, const struct video *v, size_t k)
{
	const struct chunk *c = &v->chunks[k];
	int64_t n = (int64_t)k + 1, low = 2 * (int64_t)k + 2;
	bool progressive = o->combine == COMBINE_PROGRESSIVE;
	char id[256], path[512];
	cJSON *job, *deps, *vars;

	job = new_job(v, "combine", n, id, sizeof id);
	pr_json_set_string(job, "mode", combine_names[o->combine]);
	deps = pr_json_array();
	add_dep(deps, v->name, "job", low);
	if (progressive && n > 1)
		add_dep(deps, v->name, "combine", n - 1);
	pr_json_set(job, "deps", deps);

	vars = new_vars(v, id, n);
	snprintf(path, sizeof path, "videos/%s/job_%03" PRId64 ".mp4", v->name, low);
	pr_json_set_string(vars, "segment", path);
	pr_json_set_int(vars, "keep_from", c->keep_from);
	pr_json_set_int(vars, "keep_frames", c->keep_to - c->keep_from);
	snprintf(path, sizeof path, "combined/%s_combined_%03" PRId64 ".mp4", v->name, n);
	pr_json_set_string(vars, "output", path);
	pr_json_set_string(vars, "output_role", progressive ? "combined" : "segment");
	if (progressive && n > 1) {
		snprintf(path, sizeof path, "combined/%s_combined_%03" PRId64 ".mp4",
		    v->name, n - 1);
		pr_json_set_string(vars, "previous", path);
	}
	if (v->has_seed)
		pr_json_set(vars, "seed", pr_json_uint(v->seed));
	finish_vars(vars, v);
	pr_json_set(job, "vars", vars);
	return job;
}

/* Render jobs in job-number order, then the combine jobs. */
static void
emit_video(const struct opts *o, const struct video *v, struct pr_buf *out)
{
	cJSON *job;
	size_t k;

	for (k = 0; k < v->nchunks; k++) {
		job = render_job(o, v, k, PASS_HIGH);
		pr_record_append(out, job);
		cJSON_Delete(job);
		job = render_job(o, v, k, PASS_LOW);
		pr_record_append(out, job);
		cJSON_Delete(job);
	}
	for (k = 0; o->combine != COMBINE_NONE && k < v->nchunks; k++) {
		job = combine_job(o, v, k);
		pr_record_append(out, job);
		cJSON_Delete(job);
	}
}

/* ---- input ---- */

/* Prints "pr-plan: <stdin>:LINE: ..." and returns -1. */
static int
bad_input(size_t line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
bad_input(size_t line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pr_warn("<stdin>:%zu: %s", line, msg);
	return -1;
}

/* A short rendering of a wrong value for messages: strings quoted and cut
 * at a character boundary, numbers as written. */
static char *
describe(const cJSON *v)
{
	struct pr_buf b = PR_BUF_INIT;
	enum { MAX = 40 };
	size_t len;

	if (cJSON_IsArray(v))
		return pr_xstrdup("an array");
	if (cJSON_IsObject(v))
		return pr_xstrdup("an object");
	if (cJSON_IsString(v)) {
		char *cut;

		len = strlen(v->valuestring);
		if (len > MAX) {
			len = MAX;
			while (len > 0 && ((unsigned char)v->valuestring[len] & 0xc0) == 0x80)
				len--;
		}
		cut = pr_xstrndup(v->valuestring, len);
		pr_json_write_string(&b, cut);
		free(cut);
		if (len < strlen(v->valuestring))
			pr_buf_adds(&b, "...");
		return pr_buf_steal(&b);
	}
	pr_json_write(&b, v, 0);
	if (b.len > MAX) {
		b.data[MAX] = '\0';
		b.len = MAX;
		pr_buf_adds(&b, "...");
	}
	return pr_buf_steal(&b);
}

static int
wrong_field(size_t line, const char *field, const char *want, const cJSON *v)
{
	char *found;

	if (!v)
		return bad_input(line, "field \"%s\" is missing (expected %s)", field, want);
	found = describe(v);
	bad_input(line, "field \"%s\": expected %s, found %s", field, want, found);
	free(found);
	return -1;
}

static int
want_string(const cJSON *rec, size_t line, const char *field, bool optional)
{
	const cJSON *f = pr_json_get(rec, field);

	if ((!f && optional) || cJSON_IsString(f))
		return 0;
	return wrong_field(line, field, "a string", f);
}

/* Checks one prompt record's fields against FORMATS "prompt". */
static int
validate(const struct opts *o, const cJSON *rec, size_t line, struct video *v)
{
	const cJSON *f;
	char why[128], want[96];
	int64_t t;

	f = pr_json_get(rec, "video");
	if (!cJSON_IsString(f))
		return wrong_field(line, "video", "a string", f);
	if (pr_video_name_check(f->valuestring, why, sizeof why) < 0) {
		char *found = describe(f);

		bad_input(line, "field \"video\": %s is not a valid video name: it %s",
		    found, why);
		free(found);
		return -1;
	}
	snprintf(want, sizeof want, "an integer from 1 to %" PRId64, o->max_frames);
	f = pr_json_get(rec, "total_frames");
	if (pr_json_to_i64(f, &t) < 0 || t < 1 || t > o->max_frames)
		return wrong_field(line, "total_frames", want, f);
	if (want_string(rec, line, "positive", false) < 0 ||
	    want_string(rec, line, "negative", false) < 0 ||
	    want_string(rec, line, "input_video", false) < 0 ||
	    want_string(rec, line, "source", true) < 0)
		return -1;
	cJSON_ArrayForEach(f, rec) {
		if (in_list(planned_names, f->string))
			return bad_input(line, "field \"%s\" is set by pr-plan and cannot "
			    "be passed through to the jobs", f->string);
		/* It goes into each job's vars and maybe a workflow node's
		 * inputs: deeper, the next tool could not read the record. */
		if (!in_list(prompt_fields, f->string) && pr_json_depth(f) > MAX_PASS_DEPTH)
			return bad_input(line, "field \"%s\" is nested %d levels deep; a field "
			    "passed through to the jobs may nest at most %d", f->string,
			    pr_json_depth(f), MAX_PASS_DEPTH);
	}
	v->rec = rec;
	v->name = pr_json_get_string(rec, "video");
	v->total = t;
	return 0;
}

/* The absolute path of path when it is an existing regular file. */
static char *
existing_file(const char *path)
{
	return pr_file_exists(path) ? realpath(path, NULL) : NULL;
}

/*
 * The first chunk's reference (<video>.png) and the source video, when
 * they lie beside the prompt file: then they are uploaded; otherwise the
 * jobs go without a first reference and the video must already be on the
 * server. An absolute input_video is taken as it is.
 */
static void
find_local_files(struct video *v)
{
	const char *source = pr_json_get_string(v->rec, "source");
	const char *input = pr_json_get_string(v->rec, "input_video");
	struct pr_buf p = PR_BUF_INIT;
	const char *slash;
	int dirlen;

	if (input[0] == '/')
		v->input_path = existing_file(input);
	if (!source || !pr_file_exists(source))
		return;
	slash = strrchr(source, '/');
	dirlen = slash ? (int)(slash - source) + 1 : 0;
	pr_buf_printf(&p, "%.*s%s.png", dirlen, source, v->name);
	v->reference = existing_file(p.data);
	if (input[0] != '/') {
		pr_buf_reset(&p);
		pr_buf_printf(&p, "%.*s%s", dirlen, source, input);
		v->input_path = existing_file(p.data);
	}
	pr_buf_free(&p);
}

/* A seed below 2^53, so that tools reading the plan as doubles (jq) keep
 * it exact. */
static int
random_seed(uint64_t *out)
{
	uint64_t r;
	ssize_t got;
	int fd;

	do
		got = getrandom(&r, sizeof r, 0);
	while (got < 0 && errno == EINTR);
	if (got != (ssize_t)sizeof r) {
		if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) < 0)
			return -1;
		got = read(fd, &r, sizeof r);
		close(fd);
		if (got != (ssize_t)sizeof r)
			return -1;
	}
	*out = r & ((UINT64_C(1) << 53) - 1);
	return 0;
}

struct seen {
	char **name;
	size_t *line;
	size_t n, cap;
};

/* Two records for one video would plan its jobs twice under the same ids. */
static int
check_duplicate(struct seen *s, const char *name, size_t line)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->name[i], name) == 0)
			return bad_input(line, "video \"%s\" is planned twice: lines %zu "
			    "and %zu", name, s->line[i], line);
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		s->name = pr_xrealloc(s->name, s->cap * sizeof *s->name);
		s->line = pr_xrealloc(s->line, s->cap * sizeof *s->line);
	}
	s->name[s->n] = pr_xstrdup(name);
	s->line[s->n++] = line;
	return 0;
}

static void
seen_free(struct seen *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->name[i]);
	free(s->name);
	free(s->line);
}

/* One prompt record to its jobs, appended to out. */
static int
plan_video(const struct opts *o, const cJSON *rec, size_t line, struct seen *seen,
    struct pr_buf *out)
{
	struct video v;
	char why[256];
	int rc;

	memset(&v, 0, sizeof v);
	if (validate(o, rec, line, &v) < 0 || check_duplicate(seen, v.name, line) < 0)
		return PR_EXIT_USAGE;
	if (o->align)
		rc = plan_aligned(v.total, o->chunk, o->overlap, &v.chunks, &v.nchunks,
		    why, sizeof why);
	else
		rc = plan_unaligned(v.total, o->chunk, o->overlap, &v.chunks, &v.nchunks);
	if (rc < 0) {
		bad_input(line, "video \"%s\": %s", v.name, why);
		return PR_EXIT_USAGE;
	}
	find_local_files(&v);
	rc = PR_EXIT_OK;
	if (o->seed_kind == SEED_FIXED) {
		v.has_seed = true;
		v.seed = o->seed;
	} else if (o->seed_kind == SEED_RANDOM) {
		if (random_seed(&v.seed) < 0) {
			pr_warn("cannot draw a random seed: %s", strerror(errno));
			rc = PR_EXIT_INFRA;
		}
		v.has_seed = true;
	}
	if (rc == PR_EXIT_OK)
		emit_video(o, &v, out);
	free(v.chunks);
	free(v.reference);
	free(v.input_path);
	return rc;
}

/* Plans every record of stdin into out; stops at the first error. */
static int
plan_all(const struct opts *o, struct pr_buf *out)
{
	struct seen seen = { NULL, NULL, 0, 0 };
	struct pr_jsonl r;
	cJSON *rec;
	int rc, status = PR_EXIT_OK;

	pr_jsonl_open(&r, stdin, "<stdin>");
	while (status == PR_EXIT_OK && (rc = pr_jsonl_next(&r, &rec)) != 0) {
		if (rc < 0) {
			pr_warn("%s", r.err);
			status = r.status;
			break;
		}
		status = plan_video(o, rec, r.line, &seen, out);
		cJSON_Delete(rec);
	}
	pr_jsonl_close(&r);
	seen_free(&seen);
	return status;
}

/* ---- options ---- */

static int64_t
frames_option(const char *name, const char *arg, int64_t min)
{
	uint64_t v;

	if (pr_parse_u64(arg, &v) < 0 || v < (uint64_t)min || v > MAX_OPTION_FRAMES)
		pr_usage_error(usage, "%s \"%s\": expected a whole number from %" PRId64
		    " to %" PRId64, name, arg, min, (int64_t)MAX_OPTION_FRAMES);
	return (int64_t)v;
}

static const char *
name_option(const char *name, const char *arg)
{
	if (!*arg)
		pr_usage_error(usage, "%s needs a name", name);
	return arg;
}

static void
parse_options(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "chunk", required_argument, NULL, 'c' },
		{ "no-align", no_argument, NULL, 'a' },
		{ "overlap", required_argument, NULL, 'k' },
		{ "combine", required_argument, NULL, 'C' },
		{ "seed", required_argument, NULL, 's' },
		{ "ref-offset", required_argument, NULL, 'r' },
		{ "high-model", required_argument, NULL, 'M' },
		{ "low-model", required_argument, NULL, 'm' },
		{ "high-lora", required_argument, NULL, 'L' },
		{ "low-lora", required_argument, NULL, 'l' },
		{ "max-frames", required_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c, i;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->chunk = frames_option("--chunk", optarg, 1); break;
		case 'a': o->align = false; break;
		case 'k': o->overlap = frames_option("--overlap", optarg, 0); break;
		case 'C':
			for (i = 0; i < 3 && strcmp(optarg, combine_names[i]) != 0; i++)
				;
			if (i == 3)
				pr_usage_error(usage, "--combine \"%s\": expected none, "
				    "segments or progressive", optarg);
			o->combine = (enum combine)i;
			break;
		case 's':
			if (strcmp(optarg, "random") == 0)
				o->seed_kind = SEED_RANDOM;
			else if (pr_parse_u64(optarg, &o->seed) == 0)
				o->seed_kind = SEED_FIXED;
			else
				pr_usage_error(usage, "--seed \"%s\": expected a whole number "
				    "from 0 to 18446744073709551615, or random", optarg);
			break;
		case 'r': o->ref_offset = frames_option("--ref-offset", optarg, 0); break;
		case 'M': o->model[PASS_HIGH] = name_option("--high-model", optarg); break;
		case 'm': o->model[PASS_LOW] = name_option("--low-model", optarg); break;
		case 'L': o->lora[PASS_HIGH] = name_option("--high-lora", optarg); break;
		case 'l': o->lora[PASS_LOW] = name_option("--low-lora", optarg); break;
		case 'x': o->max_frames = frames_option("--max-frames", optarg, 1); break;
		case 'h':
			pr_help_exit(usage, help);
		case 'V':
			pr_version_exit();
		default:
			pr_usage_error(usage, NULL);
		}
	}
	if (optind < argc)
		pr_usage_error(usage, "unexpected argument \"%s\" (prompt records are "
		    "read from stdin)", argv[optind]);
	if (o->overlap >= o->chunk)
		pr_usage_error(usage, "--overlap %" PRId64 " must be smaller than "
		    "--chunk %" PRId64, o->overlap, o->chunk);
	/* Aligned chunks are wan(C) long: an overlap that leaves them no new
	 * frame fails for every video, so say so once, here. */
	if (o->align && o->overlap >= wan(o->chunk))
		pr_usage_error(usage, "--overlap %" PRId64 " must be smaller than the "
		    "%" PRId64 " frames of an aligned chunk of --chunk %" PRId64
		    " (or use --no-align)", o->overlap, wan(o->chunk), o->chunk);
}

int
main(int argc, char **argv)
{
	struct opts o = {
		.chunk = 100,
		.overlap = 0,
		.align = true,
		.combine = COMBINE_NONE,
		.seed_kind = SEED_NONE,
		.ref_offset = 10,
		.max_frames = 100000,
		.model = { "Wan2.2_T2V_High_Noise_14B_VACE-Q8_0.gguf",
		    "Wan2.2_T2V_Low_Noise_14B_VACE-Q8_0.gguf" },
		.lora = { "wan2.2_high_t2v.safetensors", "wan2.2_low_t2v.safetensors" },
	};
	struct pr_buf out = PR_BUF_INIT;
	int status;

	pr_init(argv[0]);
	parse_options(argc, argv, &o);
	/* Everything is planned before anything is written, so bad input
	 * leaves stdout empty. */
	status = plan_all(&o, &out);
	if (status == PR_EXIT_OK)
		pr_stdout_write(&out);
	pr_buf_free(&out);
	if (status == PR_EXIT_OK)
		pr_stdout_close();
	return status;
}
