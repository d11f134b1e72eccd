/*
 * Video I/O through the ffmpeg and ffprobe programs (see LIBS-NOTES §6 for
 * the traps this avoids). File names reach ffmpeg as "file:PATH": without
 * the protocol prefix a name with a colon would be read as a protocol and
 * an output name with a leading '-' as an option.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "frameid.h"
#include "hash.h"
#include "json.h"
#include "proc.h"
#include "video.h"

/* Larger pictures are refused before w * h can overflow anything. */
#define MAX_SIDE 16384
/* ffprobe's JSON for one stream is a few hundred bytes. */
#define PROBE_OUT_MAX (1u << 20)

/* Lines ffmpeg adds after the one that says what went wrong. */
static bool
noise(const char *line, size_t len)
{
	static const char *const lines[] = {
		"Conversion failed!",
		"To ignore this, add a trailing '?' to the map.",
	};
	size_t i;

	for (i = 0; i < sizeof lines / sizeof lines[0]; i++)
		if (len == strlen(lines[i]) && strncmp(line, lines[i], len) == 0)
			return true;
	return false;
}

/*
 * The last meaningful line of what ffmpeg said, on one line. The
 * "file:PATH: " it puts before a file's error repeats what we already say.
 */
static void
last_line(const char *text, const char *path, struct pr_buf *line)
{
	const char *end = text + strlen(text), *start, *p;
	size_t plen = strlen(path);

	pr_buf_reset(line);
	for (;;) {
		while (end > text && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
			end--;
		if (end == text)
			return;
		for (start = end; start > text && start[-1] != '\n'; start--)
			;
		if (noise(start, (size_t)(end - start))) {
			end = start;
			continue;
		}
		break;
	}
	/* "file:PATH: " or "file:PATH.tmp.123.0: " */
	if ((size_t)(end - start) > 5 + plen && strncmp(start, "file:", 5) == 0 &&
	    strncmp(start + 5, path, plen) == 0) {
		for (p = start + 5 + plen; p + 1 < end; p++) {
			if (p[0] == ':' && p[1] == ' ') {
				start = p + 2;
				break;
			}
		}
	}
	/* Control characters would break the one-line promise. */
	for (p = start; p < end; p++)
		pr_buf_addc(line, (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p);
}

/* "PATH: what ffmpeg said", or why it ended when it said nothing. */
static void
child_error(char *err, size_t errlen, const char *path, const char *prog, int status,
    const struct pr_buf *said)
{
	struct pr_buf line = PR_BUF_INIT;

	last_line(said->data ? said->data : "", path, &line);
	if (status < 0)
		snprintf(err, errlen, "%s: cannot run %s: %s", path, prog, strerror(errno));
	else if (line.len)
		snprintf(err, errlen, "%s: %s", path, line.data);
	else if (status > 128)
		snprintf(err, errlen, "%s: %s was killed by signal %d", path, prog, status - 128);
	else
		snprintf(err, errlen, "%s: %s failed with exit status %d", path, prog, status);
	pr_buf_free(&line);
}

static char *
file_url(const char *path)
{
	struct pr_buf b = PR_BUF_INIT;

	pr_buf_printf(&b, "file:%s", path);
	return pr_buf_steal(&b);
}

/*
 * A name beside path that no other writer uses: the pid tells processes
 * apart, the counter threads and successive calls.
 */
static char *
tmp_name(const char *path)
{
	static atomic_uint seq;
	struct pr_buf b = PR_BUF_INIT;

	pr_buf_printf(&b, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&seq, 1));
	return pr_buf_steal(&b);
}

/*
 * ffmpeg's image2 demuxer takes an image name with a %d in it for a
 * numbered sequence ("a%03d.png" is a001.png, a002.png, ...) and would
 * read other files than the one named, or none. Such names are given to
 * that demuxer with -pattern_type none, which reads them literally; only
 * such names, as ffmpeg refuses the option for every other format.
 */
static bool
literal_image(const char *path)
{
	static const char *const exts[] = {
		"png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp", "pgm", "ppm", "pam",
		"exr", "dpx", "tga",
	};
	const char *dot = strrchr(path, '.');
	size_t i;

	if (!strchr(path, '%') || !dot || strchr(dot, '/'))
		return false;
	for (i = 0; i < sizeof exts / sizeof exts[0]; i++)
		if (strcasecmp(dot + 1, exts[i]) == 0)
			return true;
	return false;
}

/* Adds "[options] -i file:PATH" to argv at *i (ffprobe takes -i too). */
static void
add_input(char **argv, int *i, const char *url, const char *path)
{
	if (literal_image(path)) {
		argv[(*i)++] = "-f";
		argv[(*i)++] = "image2";
		argv[(*i)++] = "-pattern_type";
		argv[(*i)++] = "none";
	}
	argv[(*i)++] = "-i";
	argv[(*i)++] = (char *)url;
}

/* An input that is missing or unreadable gets the system's words, which
 * are clearer than ffmpeg's, and ffmpeg is not started for nothing. */
static int
check_input(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	if (S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: %s", path, strerror(EISDIR));
		return -1;
	}
	return 0;
}

/* fsync before rename, so a crash cannot leave an empty file at path. */
static int
sync_file(const char *tmp)
{
	int fd, rc;

	if ((fd = open(tmp, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/*
 * Runs an ffmpeg whose stdin takes the frames (one w x h gray picture per
 * code) and whose output is tmp, then renames tmp to path.
 */
static int
encode(char *const argv[], const char *path, const char *tmp, const uint32_t *codes, size_t n,
    int w, int h, char *err, size_t errlen)
{
	struct pr_buf said = PR_BUF_INIT;
	struct pr_child c;
	size_t size = (size_t)w * (size_t)h, i;
	uint8_t *frame;
	int status, werr = 0;

	if (pr_child_start(argv, PR_PIPE_TO_CHILD, &c) < 0) {
		snprintf(err, errlen, "%s: cannot run ffmpeg: %s", path, strerror(errno));
		return -1;
	}
	frame = pr_xmalloc(size);
	for (i = 0; i < n; i++) {
		pr_frameid_draw(frame, w, h, codes[i]);
		/* EPIPE (SIGPIPE is ignored) when ffmpeg gave up: its own
		 * message, collected below, says why. */
		if (pr_write_full(c.fd, frame, size) < 0) {
			werr = errno;
			break;
		}
	}
	free(frame);
	status = pr_child_finish(&c, &said);
	if (status == 0 && !werr && sync_file(tmp) == 0 && rename(tmp, path) == 0) {
		pr_buf_free(&said);
		return 0;
	}
	if (status == 0 && werr)
		snprintf(err, errlen, "%s: writing frames to ffmpeg: %s", path, strerror(werr));
	else if (status == 0)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	else
		child_error(err, errlen, path, "ffmpeg", status, &said);
	unlink(tmp);
	pr_buf_free(&said);
	return -1;
}

static bool
size_ok(int w, int h)
{
	return w >= PR_FRAMEID_MIN_W && h >= PR_FRAMEID_MIN_H && w <= MAX_SIDE && h <= MAX_SIDE;
}

int
pr_video_write_codes(const char *path, const uint32_t *codes, size_t n, int w, int h,
    const char *fps, int crf, char *err, size_t errlen)
{
	char size[32], crfs[16];
	char *tmp, *url;
	size_t i;
	int rc;

	if (!size_ok(w, h) || w % 2 || h % 2) {
		snprintf(err, errlen, "%s: bad size %dx%d (even, from %dx%d to %dx%d)", path, w, h,
		    PR_FRAMEID_MIN_W, PR_FRAMEID_MIN_H, MAX_SIDE, MAX_SIDE);
		return -1;
	}
	if (n == 0) {
		snprintf(err, errlen, "%s: a video needs at least one frame", path);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (codes[i] > PR_FRAMEID_MAX && codes[i] != PR_FRAMEID_NONE) {
			snprintf(err, errlen, "%s: frame code %lu is over %lu", path,
			    (unsigned long)codes[i], (unsigned long)PR_FRAMEID_MAX);
			return -1;
		}
	}
	if (crf < 0 || crf > 51 || !fps || !*fps) {
		snprintf(err, errlen, "%s: bad crf %d or frame rate", path, crf);
		return -1;
	}
	snprintf(size, sizeof size, "%dx%d", w, h);
	snprintf(crfs, sizeof crfs, "%d", crf);
	tmp = tmp_name(path);
	url = file_url(tmp);
	{
		/* VideoHelperSuite's video/h264-mp4: default preset (B-frames),
		 * yuv420p, bt709 tagged. -y: a stale temporary of ours is junk. */
		char *const argv[] = {
			"ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
			"-f", "rawvideo", "-pix_fmt", "gray", "-s", size, "-r", (char *)fps,
			"-i", "pipe:0",
			"-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", crfs,
			"-vf", "scale=out_color_matrix=bt709", "-color_range", "tv",
			"-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
			"-f", "mp4", url, NULL,
		};

		rc = encode(argv, path, tmp, codes, n, w, h, err, errlen);
	}
	free(url);
	free(tmp);
	return rc;
}

int
pr_image_write_code(const char *path, uint32_t code, int w, int h, char *err, size_t errlen)
{
	char size[32];
	char *tmp, *url;
	int rc;

	if (!size_ok(w, h)) {
		snprintf(err, errlen, "%s: bad size %dx%d (from %dx%d to %dx%d)", path, w, h,
		    PR_FRAMEID_MIN_W, PR_FRAMEID_MIN_H, MAX_SIDE, MAX_SIDE);
		return -1;
	}
	if (code > PR_FRAMEID_MAX && code != PR_FRAMEID_NONE) {
		snprintf(err, errlen, "%s: frame code %lu is over %lu", path, (unsigned long)code,
		    (unsigned long)PR_FRAMEID_MAX);
		return -1;
	}
	snprintf(size, sizeof size, "%dx%d", w, h);
	tmp = tmp_name(path);
	url = file_url(tmp);
	{
		/* -update 1: the name is a plain file name, not a %d pattern. */
		char *const argv[] = {
			"ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
			"-f", "rawvideo", "-pix_fmt", "gray", "-s", size, "-i", "pipe:0",
			"-frames:v", "1", "-c:v", "png", "-pix_fmt", "gray",
			"-f", "image2", "-update", "1", url, NULL,
		};

		rc = encode(argv, path, tmp, &code, 1, w, h, err, errlen);
	}
	free(url);
	free(tmp);
	return rc;
}

/* A member that ffprobe prints as a number, or as a string of digits. */
static int
get_long(const cJSON *obj, const char *key, long *out)
{
	const cJSON *v = pr_json_get(obj, key);
	uint64_t u;
	int64_t i;

	if (cJSON_IsString(v)) {
		if (pr_parse_u64(v->valuestring, &u) < 0 || u > (uint64_t)LONG_MAX)
			return -1;
		*out = (long)u;
		return 0;
	}
	if (!v || pr_json_to_i64(v, &i) < 0 || i < 0 || i > LONG_MAX)
		return -1;
	*out = (long)i;
	return 0;
}

static void
get_name(const cJSON *obj, const char *key, char *dst, size_t size)
{
	const char *s = pr_json_get_string(obj, key);

	snprintf(dst, size, "%s", s ? s : "");
}

#define STREAM_ENTRIES \
	"codec_name,profile,pix_fmt,width,height,r_frame_rate,time_base," \
	"sample_aspect_ratio,color_range,color_space,color_primaries,color_transfer,extradata"

/* ffprobe of the first video stream; count: also decode to count frames. */
static int
probe(const char *path, bool count, struct pr_video_info *info, char *err, size_t errlen)
{
	struct pr_buf out = PR_BUF_INIT, said = PR_BUF_INIT;
	struct pr_json_error jerr;
	const cJSON *streams, *s;
	const char *rate;
	char *url;
	cJSON *doc = NULL;
	long v;
	int status, saved, rc = -1;

	memset(info, 0, sizeof *info);
	info->frames = -1;
	if (check_input(path, err, errlen) < 0)
		return -1;
	url = file_url(path);
	{
		char *argv[24];   /* 12 at most here, 6 from add_input, NULL */
		int i = 0;

		argv[i++] = "ffprobe";
		argv[i++] = "-v";
		argv[i++] = "error";
		argv[i++] = "-select_streams";
		argv[i++] = "v:0";
		if (count)
			argv[i++] = "-count_frames";
		argv[i++] = "-show_data";   /* the headers (extradata) as hex */
		argv[i++] = "-show_entries";
		argv[i++] = count ? "stream=" STREAM_ENTRIES ",nb_read_frames" : "stream=" STREAM_ENTRIES;
		argv[i++] = "-of";
		argv[i++] = "json";
		add_input(argv, &i, url, path);
		argv[i] = NULL;
		status = pr_run(argv, &out, PROBE_OUT_MAX, &said);
	}
	saved = errno;
	free(url);
	errno = saved;
	if (status != 0) {
		child_error(err, errlen, path, "ffprobe", status, &said);
		goto done;
	}
	if (!(doc = pr_json_parse(out.data, out.len, &jerr, NULL))) {
		snprintf(err, errlen, "%s: ffprobe output: %s", path, jerr.msg);
		goto done;
	}
	streams = pr_json_get(doc, "streams");
	if (!cJSON_IsArray(streams) || !(s = streams->child)) {
		snprintf(err, errlen, "%s: no video stream", path);
		goto done;
	}
	get_name(s, "codec_name", info->codec, sizeof info->codec);
	get_name(s, "profile", info->profile, sizeof info->profile);
	get_name(s, "pix_fmt", info->pix_fmt, sizeof info->pix_fmt);
	get_name(s, "sample_aspect_ratio", info->sar, sizeof info->sar);
	get_name(s, "color_range", info->color_range, sizeof info->color_range);
	get_name(s, "color_space", info->color_space, sizeof info->color_space);
	get_name(s, "color_primaries", info->color_primaries, sizeof info->color_primaries);
	get_name(s, "color_transfer", info->color_transfer, sizeof info->color_transfer);
	if ((rate = pr_json_get_string(s, "time_base")) &&
	    sscanf(rate, "%d/%d", &info->tb_num, &info->tb_den) != 2)
		info->tb_num = info->tb_den = 0;
	if ((rate = pr_json_get_string(s, "extradata")) && *rate) {
		struct pr_sha256 *h = pr_sha256_new();
		pr_sha256_add(h, rate, strlen(rate));
		pr_sha256_done(h, info->headers);
	}
	if (get_long(s, "width", &v) < 0 || v > MAX_SIDE || (info->width = (int)v) <= 0 ||
	    get_long(s, "height", &v) < 0 || v > MAX_SIDE || (info->height = (int)v) <= 0) {
		snprintf(err, errlen, "%s: video stream without a usable size", path);
		goto done;
	}
	if ((rate = pr_json_get_string(s, "r_frame_rate")) &&
	    sscanf(rate, "%d/%d", &info->fps_num, &info->fps_den) != 2)
		info->fps_num = info->fps_den = 0;
	if (count && get_long(s, "nb_read_frames", &info->frames) < 0) {
		snprintf(err, errlen, "%s: ffprobe did not count the frames", path);
		goto done;
	}
	rc = 0;
done:
	cJSON_Delete(doc);
	pr_buf_free(&out);
	pr_buf_free(&said);
	return rc;
}

int
pr_video_probe(const char *path, struct pr_video_info *info, char *err, size_t errlen)
{
	return probe(path, true, info, err, errlen);
}

int
pr_video_read_codes(const char *path, int w, int h, uint32_t **codes, size_t *n, char *err,
    size_t errlen)
{
	struct pr_buf said = PR_BUF_INIT;
	struct pr_video_info info;
	struct pr_child c;
	char scale[64];
	uint32_t *out = NULL;
	size_t size, count = 0, cap = 0;
	uint8_t *frame;
	ssize_t got;
	char *url;
	int status, rerr = 0;

	*codes = NULL;
	*n = 0;
	if (w > 0 && h > 0) {
		if (w > MAX_SIDE || h > MAX_SIDE) {
			snprintf(err, errlen, "%s: bad size %dx%d (at most %dx%d)", path, w, h,
			    MAX_SIDE, MAX_SIDE);
			return -1;
		}
		if (check_input(path, err, errlen) < 0)
			return -1;
	} else {
		/* rawvideo carries no size: ask for the native one first. */
		if (probe(path, false, &info, err, errlen) < 0)
			return -1;
		w = info.width;
		h = info.height;
	}
	snprintf(scale, sizeof scale, "scale=%d:%d", w, h);
	url = file_url(path);
	{
		/* passthrough: every decoded frame once, none dropped or repeated
		 * to fit a constant rate (concats of different rates are VFR). */
		char *const tail[] = {
			"-map", "0:v:0", "-fps_mode", "passthrough", "-vf", scale,
			"-f", "rawvideo", "-pix_fmt", "gray", "pipe:1", NULL,
		};
		char *argv[32];   /* 4 + 6 from add_input + 11 + NULL */
		int i = 0, k;

		argv[i++] = "ffmpeg";
		argv[i++] = "-v";
		argv[i++] = "error";
		argv[i++] = "-nostdin";
		add_input(argv, &i, url, path);
		for (k = 0; tail[k]; k++)
			argv[i++] = tail[k];
		argv[i] = NULL;
		status = pr_child_start(argv, PR_PIPE_FROM_CHILD, &c);
	}
	if (status < 0) {
		snprintf(err, errlen, "%s: cannot run ffmpeg: %s", path, strerror(errno));
		free(url);
		return -1;
	}
	free(url);
	size = (size_t)w * (size_t)h;
	frame = pr_xmalloc(size);
	for (;;) {
		got = pr_read_full(c.fd, frame, size);
		if (got < 0)
			rerr = errno;
		if (got <= 0)
			break;
		if ((size_t)got < size) {
			rerr = -1;
			break;
		}
		if (count == cap) {
			cap = cap ? cap * 2 : 128;
			out = pr_xrealloc(out, cap * sizeof *out);
		}
		out[count++] = pr_frameid_read(frame, w, h);
	}
	free(frame);
	status = pr_child_finish(&c, &said);
	if (status != 0)
		child_error(err, errlen, path, "ffmpeg", status, &said);
	else if (rerr > 0)
		snprintf(err, errlen, "%s: reading frames from ffmpeg: %s", path, strerror(rerr));
	else if (rerr < 0)
		snprintf(err, errlen, "%s: ffmpeg ended inside a frame", path);
	pr_buf_free(&said);
	if (status != 0 || rerr) {
		free(out);
		return -1;
	}
	*codes = out;
	*n = count;
	return 0;
}

char *
pr_video_url(const char *path)
{
	return file_url(path);
}

int
pr_video_run(char *const argv[], const char *path, struct pr_buf *out, size_t out_max,
    char *err, size_t errlen)
{
	struct pr_buf said = PR_BUF_INIT;
	int status = pr_run(argv, out, out_max, &said);

	/* ffmpeg 5.1 exits 0 when finishing its output failed (a full disk
	 * while writing the trailer): what it said is the truth. */
	if (status == 0 && said.data && (strstr(said.data, "Error writing trailer") ||
	    strstr(said.data, "Error closing file")))
		status = 1;
	if (status != 0)
		child_error(err, errlen, path, argv[0], status, &said);
	pr_buf_free(&said);
	return status == 0 ? 0 : -1;
}
