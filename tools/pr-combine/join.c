/*
 * Joining segments into one video with ffmpeg's concat demuxer.
 *
 * Stream copy is exact and fast, but only safe when every piece has the
 * same codec headers (for h264 the SPS and PPS: a decoder uses the first
 * file's for all, and a different one decodes as garbage with exit status
 * 0, LIBS-NOTES §6) and the same time base. Cutting a segment to its keep
 * range is never exact with stream copy, so a cut segment is re-encoded:
 * with the encoder options x264 recorded in the first copied segment and
 * qpmax 12, so it comes out near-lossless and with headers identical to
 * the others. When the headers still differ (another encoder, unusual
 * options), every segment is re-encoded with one set of settings instead.
 * Either way each frame passes through at most one more encode.
 */
#define _GNU_SOURCE   /* memmem; realpath */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "combine.h"
#include "crash.h"

/* The settings a re-encode uses when it cannot match the other segments:
 * libx264 at CRF 12 is visually lossless for these videos. */
#define FALLBACK_PRESET "medium"
#define FALLBACK_CRF "12"
/* The highest quantizer a matched re-encode may use: near-lossless while
 * keeping the original's rate control (and so its PPS). */
#define MATCHED_QPMAX "12"

/* x264's first frame carries its options as text; at most this much of
 * the first frame is read to find them. */
#define FIRST_FRAME_MAX ((size_t)64 << 20)

static bool
same_shape(const struct pr_video_info *a, const struct pr_video_info *b)
{
	return strcmp(a->codec, b->codec) == 0 && strcmp(a->pix_fmt, b->pix_fmt) == 0 &&
	    a->width == b->width && a->height == b->height &&
	    (long long)a->fps_num * b->fps_den == (long long)b->fps_num * a->fps_den &&
	    strcmp(a->sar, b->sar) == 0;
}

static void
shape(const struct pr_video_info *i, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s %s %dx%d at %d/%d fps%s%s", i->codec, i->pix_fmt, i->width,
	    i->height, i->fps_num, i->fps_den, i->sar[0] ? ", SAR " : "", i->sar);
}

/*
 * x264's options as -x264-params text, from the "x264 - core ... options:"
 * string in the first frame. Only options that shape the headers or the
 * quality are carried over, renamed to what x264_param_parse takes.
 */
static const struct {
	const char *sei, *param;
} carried[] = {
	{ "cabac", "cabac" }, { "ref", "ref" }, { "me", "me" }, { "subme", "subme" },
	{ "psy", "psy" }, { "mixed_ref", "mixed-refs" }, { "me_range", "merange" },
	{ "chroma_me", "chroma-me" }, { "trellis", "trellis" }, { "8x8dct", "8x8dct" },
	{ "fast_pskip", "fast-pskip" }, { "bframes", "bframes" }, { "b_pyramid", "b-pyramid" },
	{ "b_adapt", "b-adapt" }, { "b_bias", "b-bias" }, { "weightb", "weightb" },
	{ "open_gop", "open-gop" }, { "weightp", "weightp" }, { "keyint", "keyint" },
	{ "keyint_min", "min-keyint" }, { "scenecut", "scenecut" },
	{ "intra_refresh", "intra-refresh" }, { "rc_lookahead", "rc-lookahead" },
	{ "mbtree", "mbtree" }, { "qcomp", "qcomp" }, { "qpmin", "qpmin" },
	{ "qpstep", "qpstep" }, { "ip_ratio", "ipratio" }, { "pb_ratio", "pbratio" },
	{ "constrained_intra", "constrained-intra" }, { "bluray_compat", "bluray-compat" },
};

static void
add_param(struct pr_buf *b, const char *name, const char *value)
{
	if (b->len)
		pr_buf_addc(b, ':');
	pr_buf_printf(b, "%s=%s", name, value);
}

/* One "name=value" of the SEI text into b; rc gets the rate control. */
static void
carry(struct pr_buf *b, const char *name, char *value, const char **rc, char *q, size_t qlen)
{
	static const char *const direct[] = { "none", "spatial", "temporal", "auto" };
	char *p;
	size_t i;

	for (i = 0; i < sizeof carried / sizeof carried[0]; i++)
		if (strcmp(name, carried[i].sei) == 0) {
			add_param(b, carried[i].param, value);
			return;
		}
	if (strcmp(name, "rc") == 0) {
		*rc = strcmp(value, "crf") == 0 ? "crf" : strcmp(value, "cqp") == 0 ? "qp" : "other";
	} else if (strcmp(name, "crf") == 0 || strcmp(name, "qp") == 0) {
		snprintf(q, qlen, "%s=%s", name, value);
	} else if (strcmp(name, "psy_rd") == 0) {
		/* "1.00:0.00": ':' separates -x264-params entries */
		for (p = value; *p; p++)
			if (*p == ':')
				*p = ',';
		add_param(b, "psy-rd", value);
	} else if (strcmp(name, "aq") == 0 && (p = strchr(value, ':'))) {
		*p = '\0';
		add_param(b, "aq-mode", value);
		add_param(b, "aq-strength", p + 1);
	} else if (strcmp(name, "deblock") == 0 && value[0] == '1' && value[1] == ':') {
		for (p = value + 2; *p; p++)
			if (*p == ':')
				*p = ',';
		add_param(b, "deblock", value + 2);
	} else if (strcmp(name, "deblock") == 0 && value[0] == '0') {
		add_param(b, "no-deblock", "1");
	} else if (strcmp(name, "direct") == 0 && value[0] >= '0' && value[0] <= '3' && !value[1]) {
		add_param(b, "direct", direct[value[0] - '0']);
	}
}

/* 0 and the -x264-params text in params, or -1 when the file was not
 * made by x264 with a rate control a re-encode can reproduce. */
static int
x264_params(const char *path, struct pr_buf *params)
{
	static const char tag[] = "x264 - core ", opts[] = " options: ";
	struct pr_buf out = PR_BUF_INIT;
	char *url = pr_video_url(path), err[512], q[64] = "", *text, *end, *tok, *save;
	const char *rc = NULL, *p;
	int r = -1;
	char *argv[] = {
		"ffmpeg", "-v", "error", "-nostdin", "-i", url, "-map", "0:v:0", "-c", "copy",
		"-frames:v", "1", "-bsf:v", "h264_mp4toannexb", "-f", "h264", "pipe:1", NULL,
	};

	if (pr_video_run(argv, path, &out, FIRST_FRAME_MAX, err, sizeof err) < 0 || !out.len)
		goto done;
	p = memmem(out.data, out.len, tag, sizeof tag - 1);
	if (!p || !(p = memmem(p, out.len - (size_t)(p - out.data), opts, sizeof opts - 1)))
		goto done;
	p += sizeof opts - 1;
	for (end = (char *)p; end < out.data + out.len && *end >= 0x20 && *end < 0x7f; end++)
		;
	text = pr_xstrndup(p, (size_t)(end - p));
	for (tok = strtok_r(text, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq)
			continue;
		*eq = '\0';
		carry(params, tok, eq + 1, &rc, q, sizeof q);
	}
	free(text);
	if (rc && strcmp(rc, "other") != 0 && q[0] && strncmp(q, rc, strlen(rc)) == 0) {
		if (params->len)
			pr_buf_addc(params, ':');
		pr_buf_adds(params, q);
		if (strcmp(rc, "crf") == 0)
			add_param(params, "qpmax", MATCHED_QPMAX);
		r = 0;
	}
done:
	free(url);
	pr_buf_free(&out);
	return r;
}

static void
tag_colours(char **argv, int *i, const struct pr_video_info *ref)
{
	if (ref->color_range[0]) {
		argv[(*i)++] = "-color_range";
		argv[(*i)++] = (char *)ref->color_range;
	}
	if (ref->color_space[0]) {
		argv[(*i)++] = "-colorspace";
		argv[(*i)++] = (char *)ref->color_space;
	}
	if (ref->color_primaries[0]) {
		argv[(*i)++] = "-color_primaries";
		argv[(*i)++] = (char *)ref->color_primaries;
	}
	if (ref->color_transfer[0]) {
		argv[(*i)++] = "-color_trc";
		argv[(*i)++] = (char *)ref->color_transfer;
	}
}

/*
 * Re-encodes segment s to out: its frames [from, to), scaled and retimed
 * to look like ref, with params (matched x264 options) or the fallback
 * settings when params is NULL.
 */
static int
encode(const struct segment *s, const struct pr_video_info *ref, const char *params,
    const char *out, char *err, size_t errlen)
{
	struct pr_buf vf = PR_BUF_INIT;
	char *in = pr_video_url(s->path), *dst = pr_video_url(out);
	char rate[32], tb[32];
	char *argv[64];
	int i = 0, rc;

	pr_buf_printf(&vf, "trim=start_frame=%lld:end_frame=%lld,setpts=PTS-STARTPTS",
	    (long long)s->from, (long long)s->to);
	if (s->info.width != ref->width || s->info.height != ref->height)
		pr_buf_printf(&vf, ",scale=%d:%d:flags=lanczos", ref->width, ref->height);
	if (ref->sar[0] && strcmp(s->info.sar, ref->sar) != 0)
		pr_buf_printf(&vf, ",setsar=%s", ref->sar);
	snprintf(rate, sizeof rate, "%d/%d", ref->fps_num, ref->fps_den);
	if (ref->fps_num > 0 && ref->fps_den > 0 &&
	    (long long)s->info.fps_num * ref->fps_den != (long long)ref->fps_num * s->info.fps_den)
		/* frame k at k / rate: every frame kept, played at the first's rate */
		pr_buf_printf(&vf, ",setpts=N*%d/%d/TB", ref->fps_den, ref->fps_num);

	argv[i++] = "ffmpeg";
	argv[i++] = "-hide_banner";
	argv[i++] = "-v";
	argv[i++] = "error";
	argv[i++] = "-nostdin";
	argv[i++] = "-y";
	argv[i++] = "-i";
	argv[i++] = in;
	argv[i++] = "-map";
	argv[i++] = "0:v:0";
	argv[i++] = "-an";
	argv[i++] = "-vf";
	argv[i++] = vf.data;
	argv[i++] = "-fps_mode";
	argv[i++] = "passthrough";
	if (ref->fps_num > 0 && ref->fps_den > 0 &&
	    (long long)s->info.fps_num * ref->fps_den != (long long)ref->fps_num * s->info.fps_den) {
		argv[i++] = "-r";
		argv[i++] = rate;
	}
	argv[i++] = "-c:v";
	argv[i++] = "libx264";
	if (params) {
		argv[i++] = "-x264-params";
		argv[i++] = (char *)params;
	} else {
		argv[i++] = "-preset";
		argv[i++] = FALLBACK_PRESET;
		argv[i++] = "-crf";
		argv[i++] = FALLBACK_CRF;
	}
	argv[i++] = "-pix_fmt";
	argv[i++] = strcmp(ref->codec, "h264") == 0 && ref->pix_fmt[0] ? (char *)ref->pix_fmt
	    : "yuv420p";
	tag_colours(argv, &i, ref);
	if (ref->tb_num == 1 && ref->tb_den > 0) {
		snprintf(tb, sizeof tb, "%d", ref->tb_den);
		argv[i++] = "-video_track_timescale";
		argv[i++] = tb;
	}
	argv[i++] = "-f";
	argv[i++] = "mp4";
	argv[i++] = dst;
	argv[i] = NULL;
	rc = pr_video_run(argv, s->rel, NULL, 0, err, errlen);
	free(in);
	free(dst);
	pr_buf_free(&vf);
	return rc;
}

/* work/NNN.mp4 for segment k. */
static char *
work_file(const struct video *v, size_t k)
{
	return pr_xasprintf("%s/%03zu.mp4", v->work, k + 1);
}

/*
 * Re-encodes the segments marked redo, with params (x264 options matched
 * to ref) or the fallback settings (params NULL). With ref_headers,
 * *matched says whether every re-encode came out with those headers; it
 * stops at the first that did not.
 */
static int
encode_all(struct video *v, const struct pr_video_info *ref, const char *params,
    const char *ref_headers, bool *matched, char *err, size_t errlen)
{
	*matched = true;
	v->reencoded = 0;
	for (size_t k = 0; k < v->nseg; k++) {
		struct segment *s = &v->seg[k];
		struct pr_video_info got;
		char *out;

		if (!s->redo)
			continue;
		out = work_file(v, k);
		pr_crash_point("encoding");
		if (encode(s, ref, params, out, err, errlen) < 0) {
			free(out);
			v->failed_job = s->job;
			return -1;
		}
		if (s->use != s->path)
			free(s->use);
		s->use = out;
		v->reencoded++;
		if (ref_headers) {
			if (pr_video_probe(out, &got, err, errlen) < 0)
				return -1;
			if (strcmp(got.headers, ref_headers) != 0 || got.tb_den != ref->tb_den ||
			    got.tb_num != ref->tb_num) {
				*matched = false;
				return 0;
			}
		}
	}
	return 0;
}

/* Writes the concat list: absolute names, each quoted as ffconcat wants
 * (' ends a quoted string; '\'' puts one in). */
static int
write_list(struct video *v, const char *list, char *err, size_t errlen)
{
	struct pr_buf b = PR_BUF_INIT;
	int rc = 0;

	pr_buf_adds(&b, "ffconcat version 1.0\n");
	for (size_t k = 0; k < v->nseg; k++) {
		char abs[PATH_MAX];
		const char *p;

		if (!realpath(v->seg[k].use, abs)) {
			snprintf(err, errlen, "%s: %s", v->seg[k].use, strerror(errno));
			pr_buf_free(&b);
			return -1;
		}
		pr_buf_adds(&b, "file 'file:");
		for (p = abs; *p; p++) {
			if (*p == '\'')
				pr_buf_adds(&b, "'\\''");
			else
				pr_buf_addc(&b, *p);
		}
		pr_buf_adds(&b, "'\n");
	}
	if (pr_file_write_atomic(list, b.data, b.len) < 0) {
		snprintf(err, errlen, "%s: %s", list, strerror(errno));
		rc = -1;
	}
	pr_buf_free(&b);
	return rc;
}

static int
concat(struct video *v, const char *out, char *err, size_t errlen)
{
	char *list = pr_xasprintf("%s/list.txt", v->work);
	char *in = pr_video_url(list), *dst = pr_video_url(out);
	int rc = -1;
	char *argv[] = {
		"ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-y",
		"-f", "concat", "-safe", "0", "-i", in,
		"-map", "0:v:0", "-c", "copy", "-movflags", "+faststart", "-f", "mp4", dst, NULL,
	};

	if (write_list(v, list, err, errlen) == 0)
		rc = pr_video_run(argv, v->final_rel, NULL, 0, err, errlen);
	free(list);
	free(in);
	free(dst);
	return rc;
}

/* Byte copy of src to dst (the progressive mode's last combine, or a
 * single segment that needs nothing done). */
int
publish_copy(struct video *v, const char *src, char *err, size_t errlen)
{
	char *dst = pr_xasprintf("%s/joined.mp4", v->work);
	char buf[1 << 16];
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
	ssize_t n;

	if (in < 0) {
		snprintf(err, errlen, "%s: %s", src, strerror(errno));
		goto done;
	}
	if ((out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) < 0) {
		snprintf(err, errlen, "%s: %s", dst, strerror(errno));
		goto done;
	}
	while ((n = pr_read_full(in, buf, sizeof buf)) > 0)
		if (pr_write_full(out, buf, (size_t)n) < 0) {
			snprintf(err, errlen, "%s: %s", dst, strerror(errno));
			goto done;
		}
	if (n < 0) {
		snprintf(err, errlen, "%s: %s", src, strerror(errno));
		goto done;
	}
	rc = 0;
done:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && rc == 0) {
		snprintf(err, errlen, "%s: %s", dst, strerror(errno));
		rc = -1;
	}
	free(dst);
	return rc;
}

/* Probes every segment and checks it holds the frames it must. */
static int
check_segments(struct video *v, char *err, size_t errlen)
{
	char a[128], b[128];

	for (size_t k = 0; k < v->nseg; k++) {
		struct segment *s = &v->seg[k];

		v->failed_job = s->job;
		if (!pr_file_exists(s->path)) {
			snprintf(err, errlen, "%s: segment missing (made by %s)", s->rel, s->job);
			return -1;
		}
		if (s->sha256) {
			/* pr-submit verified it when it collected it: a file changed
			 * since (overwritten, truncated) is not joined */
			char hex[PR_SHA256_HEX];
			if (pr_sha256_file(s->path, hex, NULL) < 0) {
				snprintf(err, errlen, "%s: %s", s->rel, strerror(errno));
				return -1;
			}
			if (strcmp(hex, s->sha256) != 0) {
				snprintf(err, errlen, "%s (%s) changed since it was collected (SHA-256 "
				    "differs from its result's); rerun pr-submit to render it again",
				    s->rel, s->job);
				return -1;
			}
		}
		if (pr_video_probe(s->path, &s->info, err, errlen) < 0)
			return -1;
		if (strcmp(v->mode, "none") == 0) {
			if (s->info.frames < s->to) {
				snprintf(err, errlen, "%s (%s): %ld frames, its keep range [%lld, %lld) "
				    "needs %lld", s->rel, s->job, s->info.frames, (long long)s->from,
				    (long long)s->to, (long long)s->to);
				return -1;
			}
		} else if (s->info.frames != s->to) {
			snprintf(err, errlen, "%s (%s): %ld frames, expected %lld", s->rel, s->job,
			    s->info.frames, (long long)s->to);
			return -1;
		}
		s->cut = s->from > 0 || s->to < s->info.frames;
		s->use = s->path;
		if (k > 0 && !same_shape(&s->info, &v->seg[0].info)) {
			if (!o.reencode) {
				shape(&s->info, a, sizeof a);
				shape(&v->seg[0].info, b, sizeof b);
				snprintf(err, errlen, "%s (%s) is %s, but %s is %s (--reencode converts it)",
				    s->rel, s->job, a, v->seg[0].rel, b);
				return -1;
			}
			s->convert = true;
		}
	}
	v->failed_job = NULL;
	return 0;
}

int
join(struct video *v, char *err, size_t errlen)
{
	char *out = pr_xasprintf("%s/joined.mp4", v->work);
	struct pr_buf params = PR_BUF_INIT;
	const struct segment *ref = NULL;
	bool matched = false;
	int64_t first = 0;
	int rc = -1;
	size_t k;

	if (check_segments(v, err, errlen) < 0)
		goto done;
	for (k = 0; k < v->nseg; k++) {
		v->seg[k].first = first;
		first += v->seg[k].to - v->seg[k].from;
	}
	if (v->nseg == 1 && !v->seg[0].cut) {
		rc = publish_copy(v, v->seg[0].path, err, errlen);
		goto done;
	}
	/* The first segment used as it is sets the headers the others match. */
	for (k = 0; k < v->nseg && !ref; k++)
		if (!v->seg[k].cut && !v->seg[k].convert)
			ref = &v->seg[k];
	if (ref && strcmp(ref->info.codec, "h264") == 0 && ref->info.headers[0] &&
	    x264_params(ref->path, &params) == 0) {
		for (k = 0; k < v->nseg; k++) {
			struct segment *s = &v->seg[k];
			s->redo = s->cut || s->convert || strcmp(s->info.headers, ref->info.headers) != 0 ||
			    s->info.tb_num != ref->info.tb_num || s->info.tb_den != ref->info.tb_den;
		}
		if (encode_all(v, &ref->info, params.data, ref->info.headers, &matched, err,
		    errlen) < 0)
			goto done;
	}
	if (!matched) {
		/* one set of settings for every segment, shaped like the first */
		v->reencoded_all = true;
		for (k = 0; k < v->nseg; k++)
			v->seg[k].redo = true;
		if (encode_all(v, &v->seg[0].info, NULL, NULL, &matched, err, errlen) < 0)
			goto done;
	}
	rc = concat(v, out, err, errlen);
done:
	free(out);
	pr_buf_free(&params);
	return rc;
}
