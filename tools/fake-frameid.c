/*
 * fake-frameid: part of the test stand-in kit. Makes videos whose frames
 * carry their own number (frameid.h) and reads the numbers back, so a test
 * can say which source frame each frame of a rendered, concatenated,
 * trimmed or scaled video is.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frameid.h"
#include "pr.h"
#include "video.h"

static const char usage[] =
    "usage: fake-frameid [--size WxH] FILE...\n"
    "       fake-frameid --make OUT --frames N [--first K] [--size WxH] [--fps R] [--crf C]\n";

static const char help[] =
    "Reads the frame codes of video or image files, or makes a video whose frame\n"
    "k shows the number K+k as a grid of 8 x 6 black and white cells.\n"
    "\n"
    "Reading prints one record per FILE:\n"
    "  {\"path\":P,\"frames\":N,\"width\":W,\"height\":H,\"codes\":[...],\"runs\":[[A,B],...]}\n"
    "codes has each frame's number, or null for a frame without one; runs lists\n"
    "the maximal runs of consecutive numbers, first and last inclusive.\n"
    "\n"
    "  --size WxH    read: decode scaled to WxH; make: picture size (default 64x48)\n"
    "  --make OUT    write an MP4 (h264, yuv420p, as ComfyUI's VideoHelperSuite\n"
    "                does) or, when OUT ends in .png, a gray PNG\n"
    "  --frames N    frames to make (1 for a PNG)\n"
    "  --first K     number of the first frame (default 0; at most 16777215)\n"
    "  --fps R       frame rate, such as 30 or 30000/1001 (default 30)\n"
    "  --crf C       x264 quality, 0-51 (default 19)\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 done, 2 bad usage or unreadable input, 3 cannot write.\n"
    "See fake-frameid(1).\n";

struct opts {
	const char *make;
	uint64_t frames, first;
	bool have_frames, have_first, have_size, have_fps, have_crf;
	int w, h;
	const char *fps;
	int crf;
};

/* "WxH" with decimal sides, strictly. */
static int
parse_size(const char *s, int *w, int *h)
{
	const char *x = strchr(s, 'x');
	uint64_t a, b;
	char *ws;
	int rc;

	if (!x)
		return -1;
	ws = pr_xstrndup(s, (size_t)(x - s));
	rc = pr_parse_u64(ws, &a);
	free(ws);
	if (rc < 0 || pr_parse_u64(x + 1, &b) < 0 || a == 0 || b == 0 || a > 16384 ||
	    b > 16384)
		return -1;
	*w = (int)a;
	*h = (int)b;
	return 0;
}

/* A rate ffmpeg reads: digits, an optional fraction or /denominator, not
 * zero. Checked here so a typo is a usage error, not an ffmpeg one. */
static bool
fps_ok(const char *s)
{
	bool nonzero = false, digits = false;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++) {
		digits = true;
		nonzero |= *p != '0';
	}
	if (*p == '.' && p[1] >= '0' && p[1] <= '9')
		for (p++; *p >= '0' && *p <= '9'; p++)
			nonzero |= *p != '0';
	if (!digits || !nonzero)
		return false;
	if (*p == '/') {
		uint64_t den;

		return pr_parse_u64(p + 1, &den) == 0 && den > 0 && den <= INT32_MAX;
	}
	return *p == '\0';
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int
make(const struct opts *o)
{
	char err[1024];
	uint32_t *codes;
	size_t i;
	int rc;

	if (ends_with(o->make, ".png") || ends_with(o->make, ".PNG")) {
		if (o->frames != 1)
			pr_usage_error(usage, "a PNG holds one frame: --frames 1");
		if (o->have_fps || o->have_crf)
			pr_usage_error(usage, "--fps and --crf are for videos, not a PNG");
		if (pr_image_write_code(o->make, (uint32_t)o->first, o->w, o->h, err, sizeof err) < 0)
			pr_die(PR_EXIT_INFRA, "%s", err);
		return PR_EXIT_OK;
	}
	if (o->w % 2 || o->h % 2)
		pr_usage_error(usage, "--size %dx%d: a yuv420p video needs even sides", o->w, o->h);
	codes = pr_xcalloc((size_t)o->frames, sizeof *codes);
	for (i = 0; i < o->frames; i++)
		codes[i] = (uint32_t)(o->first + i);
	rc = pr_video_write_codes(o->make, codes, (size_t)o->frames, o->w, o->h, o->fps, o->crf,
	    err, sizeof err);
	free(codes);
	if (rc < 0)
		pr_die(PR_EXIT_INFRA, "%s", err);
	return PR_EXIT_OK;
}

/* Maximal runs of consecutive codes; a frame without a code ends a run and
 * is in none. */
static cJSON *
runs(const uint32_t *codes, size_t n)
{
	cJSON *all = pr_json_array(), *run;
	size_t i = 0, j;

	while (i < n) {
		if (codes[i] == PR_FRAMEID_NONE) {
			i++;
			continue;
		}
		for (j = i; j + 1 < n && codes[j + 1] != PR_FRAMEID_NONE &&
		    codes[j + 1] == codes[j] + 1; j++)
			;
		run = pr_json_array();
		cJSON_AddItemToArray(run, pr_json_uint(codes[i]));
		cJSON_AddItemToArray(run, pr_json_uint(codes[j]));
		cJSON_AddItemToArray(all, run);
		i = j + 1;
	}
	return all;
}

static void
read_file(const struct opts *o, const char *path, struct pr_buf *out)
{
	struct pr_video_info info;
	char err[1024];
	uint32_t *codes;
	size_t n, i;
	cJSON *rec, *list;
	int w = o->w, h = o->h;

	/* The native size is asked for once here and passed on, which spares
	 * pr_video_read_codes() a second ffprobe. */
	if (!o->have_size) {
		if (pr_video_probe(path, &info, err, sizeof err) < 0)
			pr_die(PR_EXIT_USAGE, "%s", err);
		w = info.width;
		h = info.height;
	}
	if (pr_video_read_codes(path, w, h, &codes, &n, err, sizeof err) < 0)
		pr_die(PR_EXIT_USAGE, "%s", err);
	rec = pr_json_object();
	pr_json_set_string(rec, "path", path);
	pr_json_set(rec, "frames", pr_json_uint(n));
	pr_json_set_int(rec, "width", w);
	pr_json_set_int(rec, "height", h);
	list = pr_json_array();
	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(list, codes[i] == PR_FRAMEID_NONE ? cJSON_CreateNull()
		    : pr_json_uint(codes[i]));
	pr_json_set(rec, "codes", list);
	pr_json_set(rec, "runs", runs(codes, n));
	pr_record_append(out, rec);
	cJSON_Delete(rec);
	free(codes);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "make", required_argument, NULL, 'm' },
		{ "frames", required_argument, NULL, 'n' },
		{ "first", required_argument, NULL, 'f' },
		{ "fps", required_argument, NULL, 'r' },
		{ "crf", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .w = 64, .h = 48, .fps = "30", .crf = 19 };
	struct pr_buf out = PR_BUF_INIT;
	uint64_t crf;
	int c, i;

	pr_init(argv[0]);
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_size(optarg, &o.w, &o.h) < 0)
				pr_usage_error(usage, "--size \"%s\": expected WxH, such as 64x48",
				    optarg);
			o.have_size = true;
			break;
		case 'm':
			if (!*optarg)
				pr_usage_error(usage, "--make needs a file name");
			o.make = optarg;
			break;
		case 'n':
			if (pr_parse_u64(optarg, &o.frames) < 0 || o.frames == 0 ||
			    o.frames > (uint64_t)PR_FRAMEID_MAX + 1)
				pr_usage_error(usage, "--frames \"%s\": expected a number from 1 "
				    "to %lu", optarg, (unsigned long)PR_FRAMEID_MAX + 1);
			o.have_frames = true;
			break;
		case 'f':
			if (pr_parse_u64(optarg, &o.first) < 0 || o.first > PR_FRAMEID_MAX)
				pr_usage_error(usage, "--first \"%s\": expected a number from 0 to %lu",
				    optarg, (unsigned long)PR_FRAMEID_MAX);
			o.have_first = true;
			break;
		case 'r':
			if (!fps_ok(optarg))
				pr_usage_error(usage, "--fps \"%s\": expected a rate such as 30 or "
				    "30000/1001", optarg);
			o.fps = optarg;
			o.have_fps = true;
			break;
		case 'c':
			if (pr_parse_u64(optarg, &crf) < 0 || crf > 51)
				pr_usage_error(usage, "--crf \"%s\": expected a number from 0 to 51",
				    optarg);
			o.crf = (int)crf;
			o.have_crf = true;
			break;
		case 'h': pr_help_exit(usage, help);
		case 'V': pr_version_exit();
		default: pr_usage_error(usage, NULL);
		}
	}
	if (o.have_size && (o.w < PR_FRAMEID_MIN_W || o.h < PR_FRAMEID_MIN_H))
		pr_usage_error(usage, "--size %dx%d: the code needs at least %dx%d", o.w, o.h,
		    PR_FRAMEID_MIN_W, PR_FRAMEID_MIN_H);
	if (o.make) {
		if (optind < argc)
			pr_usage_error(usage, "unexpected argument \"%s\" with --make", argv[optind]);
		if (!o.have_frames)
			pr_usage_error(usage, "--make needs --frames");
		if (o.first + o.frames - 1 > PR_FRAMEID_MAX)
			pr_usage_error(usage, "--first %lu --frames %lu: codes would pass %lu",
			    (unsigned long)o.first, (unsigned long)o.frames,
			    (unsigned long)PR_FRAMEID_MAX);
		return make(&o);
	}
	if (o.have_frames || o.have_first || o.have_fps || o.have_crf)
		pr_usage_error(usage, "--frames, --first, --fps and --crf go with --make");
	if (optind == argc)
		pr_usage_error(usage, "no FILE to read");
	for (i = optind; i < argc; i++)
		read_file(&o, argv[i], &out);
	pr_stdout_write(&out);
	pr_stdout_close();
	pr_buf_free(&out);
	return PR_EXIT_OK;
}
