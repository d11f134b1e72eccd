/*
 * pr-combine: one verified final video per prompt file from pr-submit's
 * results. See pr-combine(1).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "combine.h"
#include "crash.h"
#include "final.h"
#include "lock.h"

struct opts o = { .state = "state", .out = "out", .ids = -1 };

static const char usage[] =
    "usage: pr-combine [--state DIR] [--out DIR] [--reencode] [--keep-intermediate]\n"
    "                  [--frame-ids auto|on|off] < results > finals\n";

static const char help[] =
    "Joins each video's segments, from pr-submit's results, into\n"
    "OUT/final/VIDEO_final.mp4: the LOW segments cut to their keep ranges\n"
    "(--combine none), the post-processed segments (--combine segments), or\n"
    "the last progressive combine (--combine progressive), as the plan made\n"
    "them. Segments are joined by stream copy; one that must be cut is\n"
    "re-encoded near-lossless. Every final's frame count is checked before it\n"
    "is published, then the video's intermediate files are removed. One final\n"
    "record per video; a video whose final is intact and made from the same\n"
    "pieces is not joined again.\n"
    "\n"
    "  --state DIR          plans are read from and final records kept in\n"
    "                       DIR/VIDEO/ (default state)\n"
    "  --out DIR            where the results' files are and finals go (default out)\n"
    "  --reencode           convert segments whose size, rate, pixel format or\n"
    "                       codec differ from the first, instead of failing\n"
    "  --keep-intermediate  keep segments, latents and references\n"
    "  --frame-ids WHEN     check that every frame is the source frame it should\n"
    "                       be: auto (default) when the frames carry numbers, as\n"
    "                       the test stand-in's do; on; off\n"
    "\n"
    "Exit status: 0 every video combined, 1 some failed (their records say\n"
    "why), 2 bad input (nothing done), 3 ffmpeg or the state or output folder\n"
    "could not be used.\n";

static void
parse_options(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "state", required_argument, NULL, 'S' },
		{ "out", required_argument, NULL, 'o' },
		{ "reencode", no_argument, NULL, 'r' },
		{ "keep-intermediate", no_argument, NULL, 'k' },
		{ "frame-ids", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'S': o.state = optarg; break;
		case 'o': o.out = optarg; break;
		case 'r': o.reencode = true; break;
		case 'k': o.keep_intermediate = true; break;
		case 'i':
			if (strcmp(optarg, "auto") == 0)
				o.ids = -1;
			else if (strcmp(optarg, "on") == 0)
				o.ids = 1;
			else if (strcmp(optarg, "off") == 0)
				o.ids = 0;
			else
				pr_usage_error(usage, "--frame-ids \"%s\": expected auto, on or off", optarg);
			break;
		case 'h': pr_help_exit(usage, help);
		case 'V': pr_version_exit();
		default: pr_usage_error(usage, "unknown option");
		}
	}
	if (optind < argc)
		pr_usage_error(usage, "unexpected argument \"%s\" (results come on stdin)",
		    argv[optind]);
}

/* "<stdin>:LINE: field F: ..." and exit 2. */
static _Noreturn void
bad(size_t line, const char *field, const char *what)
{
	pr_die(PR_EXIT_USAGE, "<stdin>:%zu: %s: %s", line, field, what);
}

static void
need_int(const cJSON *obj, const char *key, size_t line, const char *field, int64_t min)
{
	int64_t v;

	if (pr_json_to_i64(pr_json_get(obj, key), &v) < 0 || v < min || v > INT32_MAX)
		bad(line, field, min > 0 ? "expected a positive integer" :
		    "expected a non-negative integer");
}

/* The shape pr-combine relies on; anything else in a record is passed by. */
static void
check_record(const cJSON *rec, size_t line)
{
	const char *kind = pr_json_get_string(rec, "kind");
	const char *video = pr_json_get_string(rec, "video");
	const char *status = pr_json_get_string(rec, "status");
	const cJSON *f;
	char why[256];

	if (!pr_json_get_string(rec, "id"))
		bad(line, "id", "missing or not a string");
	if (!video)
		bad(line, "video", "missing or not a string");
	if (pr_video_name_check(video, why, sizeof why) < 0)
		bad(line, "video", why);
	if (!kind || (strcmp(kind, "render") != 0 && strcmp(kind, "combine") != 0))
		bad(line, "kind", "expected \"render\" or \"combine\"");
	if (!pr_json_get(rec, "status"))
		bad(line, "status", "missing (is this pr-submit's output?)");
	if (!status)
		bad(line, "status", "expected a string");
	if (pr_json_get(rec, "files") && !cJSON_IsArray(pr_json_get(rec, "files")))
		bad(line, "files", "expected an array");
	cJSON_ArrayForEach(f, pr_json_get(rec, "files"))
		if (!pr_json_get_string(f, "path") || !pr_json_get_string(f, "role"))
			bad(line, "files", "each entry needs a path and a role");
	if (strcmp(kind, "render") == 0) {
		const char *pass = pr_json_get_string(rec, "pass");
		if (!pass)
			bad(line, "pass", "missing or not a string");
		if (strcmp(pass, "high") != 0 && strcmp(pass, "low") != 0)
			bad(line, "pass", "expected \"high\" or \"low\"");
		need_int(rec, "chunk", line, "chunk", 0);
		need_int(rec, "start", line, "start", 0);
		if (strcmp(pass, "low") == 0) {
			const cJSON *keep = pr_json_get(rec, "keep");
			int64_t a, b;
			if (!cJSON_IsArray(keep) || cJSON_GetArraySize(keep) != 2 ||
			    pr_json_to_i64(cJSON_GetArrayItem(keep, 0), &a) < 0 ||
			    pr_json_to_i64(cJSON_GetArrayItem(keep, 1), &b) < 0 ||
			    a < 0 || b < a || b > INT32_MAX)
				bad(line, "keep", "expected [from, to) with 0 <= from <= to");
		}
	} else {
		const char *mode = pr_json_get_string(rec, "mode");
		if (!mode || (strcmp(mode, "segments") != 0 && strcmp(mode, "progressive") != 0))
			bad(line, "mode", "expected \"segments\" or \"progressive\"");
		need_int(rec, "n", line, "n", 1);
		need_int(pr_json_get(rec, "vars"), "keep_from", line, "vars.keep_from", 0);
		need_int(pr_json_get(rec, "vars"), "keep_frames", line, "vars.keep_frames", 0);
		if (pr_json_get(rec, "frame_multiplier"))
			need_int(rec, "frame_multiplier", line, "frame_multiplier", 1);
	}
}

/* The input's records, grouped by video in the order videos first appear. */
static struct video *
read_videos(size_t *nvideos)
{
	struct video *v = NULL;
	struct pr_jsonl in;
	cJSON *rec;
	size_t n = 0, i;
	int rc;

	pr_jsonl_open(&in, stdin, "<stdin>");
	while ((rc = pr_jsonl_next(&in, &rec)) == 1) {
		check_record(rec, in.line);
		const char *name = pr_json_get_string(rec, "video");
		for (i = 0; i < n && strcmp(v[i].name, name) != 0; i++)
			;
		if (i == n) {
			v = pr_xrealloc(v, (n + 1) * sizeof *v);
			memset(&v[n], 0, sizeof v[n]);
			v[n].results = pr_json_array();
			n++;
		}
		cJSON_AddItemToArray(v[i].results, rec);
		v[i].name = pr_json_get_string(rec, "video");
	}
	if (rc < 0)
		pr_die(in.status, "%s", in.err);
	pr_jsonl_close(&in);
	*nvideos = n;
	return v;
}

static cJSON *
fps_number(const struct pr_video_info *i)
{
	char text[64];

	if (i->fps_den <= 0)
		return pr_json_null();
	if (i->fps_num % i->fps_den == 0)
		return pr_json_int(i->fps_num / i->fps_den);
	snprintf(text, sizeof text, "%.6g", (double)i->fps_num / i->fps_den);
	return pr_json_number_text(text);
}

static cJSON *
failed_record(const struct video *v, const char *why)
{
	cJSON *rec = pr_json_object(), *e = pr_json_object();

	pr_json_set_string(rec, "video", v->name);
	pr_json_set_string(rec, "status", "failed");
	if (v->mode)
		pr_json_set_string(rec, "mode", v->mode);
	if (v->failed_job)
		pr_json_set_string(e, "job", v->failed_job);
	pr_json_set_string(e, "message", why);
	pr_json_set(rec, "error", e);
	return rec;
}

static cJSON *
final_record(const struct video *v, const struct pr_video_info *info, long long size,
    const char *sha, bool ids)
{
	cJSON *rec = pr_json_object(), *segs = pr_json_array();

	pr_json_set_string(rec, "video", v->name);
	pr_json_set_string(rec, "status", "success");
	pr_json_set_string(rec, "path", v->final_rel);
	pr_json_set_int(rec, "frames", info->frames);
	if (v->total_frames > 0)
		pr_json_set_int(rec, "total_frames", v->total_frames);
	pr_json_set(rec, "fps", fps_number(info));
	pr_json_set_int(rec, "width", info->width);
	pr_json_set_int(rec, "height", info->height);
	pr_json_set_string(rec, "codec", info->codec);
	pr_json_set_int(rec, "size", size);
	pr_json_set_string(rec, "sha256", sha);
	pr_json_set_string(rec, "mode", v->mode);
	for (size_t k = 0; k < v->nseg; k++) {
		const struct segment *s = &v->seg[k];
		cJSON *e = pr_json_object(), *keep = pr_json_array();
		pr_json_set_string(e, "job", s->job);
		pr_json_set_string(e, "path", s->rel);
		cJSON_AddItemToArray(keep, pr_json_int(s->from));
		cJSON_AddItemToArray(keep, pr_json_int(s->to));
		pr_json_set(e, "keep", keep);
		pr_json_set_int(e, "first", s->first);
		pr_json_set_string(e, "how", s->use == s->path ? "copy" : "reencode");
		cJSON_AddItemToArray(segs, e);
	}
	pr_json_set(rec, "segments", segs);
	pr_json_set(rec, "frame_ids", pr_json_bool(ids));
	pr_json_set_string(rec, "key", v->key);
	pr_json_set(rec, "cached", pr_json_bool(false));
	return rec;
}

/* The verified file becomes the final. */
static int
publish(const struct video *v, const char *file, char *err, size_t errlen)
{
	if (pr_file_publish(file, v->final) < 0) {
		snprintf(err, errlen, "%s: %s", v->final, strerror(errno));
		return -1;
	}
	return 0;
}

/* Makes the video's final, or says why not. *infra is set for failures
 * of this machine rather than of the video. */
static cJSON *
combine(struct video *v, bool *infra)
{
	struct pr_video_info info;
	char err[2048], sha[PR_SHA256_HEX], *joined, *rec_path, *text;
	long long size;
	bool ids;
	cJSON *rec;

	snprintf(v->final_rel, sizeof v->final_rel, "final/%s_final.mp4", v->name);
	snprintf(v->final, sizeof v->final, "%s/%s", o.out, v->final_rel);
	snprintf(v->work, sizeof v->work, "%s/final/.%s.work", o.out, v->name);
	remove_work(v);     /* what a killed run left */
	if (gather(v, err, sizeof err) < 0)
		return failed_record(v, err);
	if ((rec = cached_final(v))) {
		if (!o.keep_intermediate)
			cleanup(v);
		return rec;
	}
	if (pr_mkdirs(v->work) < 0) {
		*infra = true;
		snprintf(err, sizeof err, "%s: %s", v->work, strerror(errno));
		return failed_record(v, err);
	}
	joined = pr_xasprintf("%s/joined.mp4", v->work);
	if (join(v, err, sizeof err) < 0 || verify(v, joined, &info, &ids, err, sizeof err) < 0) {
		free(joined);
		remove_work(v);
		return failed_record(v, err);
	}
	v->failed_job = NULL;
	pr_crash_point("verified");
	if (pr_sha256_file(joined, sha, &size) < 0 || publish(v, joined, err, sizeof err) < 0) {
		if (!err[0] || strncmp(err, v->final, strlen(v->final)) != 0)
			snprintf(err, sizeof err, "%s: %s", joined, strerror(errno));
		*infra = true;
		free(joined);
		remove_work(v);
		return failed_record(v, err);
	}
	free(joined);
	if (strcmp(v->mode, "none") == 0 && v->total_frames > 0 && info.frames != v->total_frames)
		pr_warn("%s: %ld frames, the prompt asked for %lld (a --no-align plan renders "
		    "4k+1 frames a chunk)", v->name, info.frames, (long long)v->total_frames);
	rec = final_record(v, &info, size, sha, ids);
	pr_crash_point("published");
	/* the record that lets a rerun (and pr-submit's cache) trust the final */
	rec_path = pr_final_path(o.state, v->name);
	text = pr_json_print(rec, 0);
	if (pr_file_write_atomic(rec_path, text, strlen(text)) < 0) {
		pr_warn("%s: %s (intermediates kept)", rec_path, strerror(errno));
		*infra = true;
	} else if (!o.keep_intermediate) {
		pr_crash_point("recorded");
		cleanup(v);
	}
	free(text);
	free(rec_path);
	remove_work(v);
	return rec;
}

/* ffmpeg and ffprobe must be there before anything is judged failed. */
static void
need_programs(void)
{
	static const char *const progs[] = { "ffmpeg", "ffprobe" };
	struct pr_buf out = PR_BUF_INIT;

	for (size_t i = 0; i < 2; i++) {
		char *argv[] = { (char *)progs[i], "-version", NULL };
		if (pr_run(argv, &out, 1 << 16, NULL) != 0)
			pr_die(PR_EXIT_INFRA, "%s not found or not working (install ffmpeg)", progs[i]);
	}
	pr_buf_free(&out);
}

int
main(int argc, char **argv)
{
	struct pr_buf out = PR_BUF_INIT;
	struct video *v;
	size_t n, i;
	bool infra = false, failed = false;
	char err[512];
	int lock;

	pr_init(argv[0]);
	parse_options(argc, argv);
	/* A closed SSH session must not leave a video half combined. */
	signal(SIGHUP, SIG_IGN);
	v = read_videos(&n);
	need_programs();
	if (pr_mkdirs(o.state) < 0)
		pr_die(PR_EXIT_INFRA, "%s: %s", o.state, strerror(errno));
	if ((lock = pr_lock_state(o.state, err, sizeof err)) < 0)
		pr_die(PR_EXIT_INFRA, "%s", err);
	for (i = 0; i < n; i++) {
		cJSON *rec = combine(&v[i], &infra);
		const char *st = pr_json_get_string(rec, "status");
		if (strcmp(st, "success") != 0) {
			failed = true;
			pr_warn("%s: %s", v[i].name,
			    pr_json_get_string(pr_json_get(rec, "error"), "message"));
		}
		pr_record_append(&out, rec);
		cJSON_Delete(rec);
		video_free(&v[i]);
	}
	free(v);
	pr_stdout_write(&out);
	pr_buf_free(&out);
	pr_stdout_close();
	close(lock);
	return infra ? PR_EXIT_INFRA : failed ? PR_EXIT_FAILED : PR_EXIT_OK;
}
