/*
 * Seam sheets. For every join of chunk k and chunk k+1: the last kept
 * frame of k, the first kept frame of k+1 and the reference image k+1 was
 * given, side by side under their labels, one row per seam. ffmpeg does
 * the pictures (select, scale, pad, drawtext, concat, tile); we only lay
 * them out, so the record can say where each picture is.
 *
 * Frames come from the final when the video has one, since that is what
 * the user sees; a failed video has no final, so its seams come from the
 * segments still on disk. A reference removed with the intermediates is
 * the same frame of the previous chunk, which the final holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "file.h"
#include "report.h"
#include "video.h"

#define BOX_H      240   /* pictures are scaled to fit BOX_W x BOX_H */
#define CELL_MIN_W 240   /* room for a label's line */
#define LABEL_H    60    /* three lines of text above each picture */
#define GAP        8     /* around and between the cells */

static bool
usable(const char *rel)
{
	char *path;
	bool ok;

	if (!rel || pr_path_outside(rel))
		return false;
	path = out_path(rel);
	ok = pr_file_exists(path);
	free(path);
	return ok;
}

static int64_t
seg_int(const cJSON *seg, const char *key, int i)
{
	const cJSON *v = i < 0 ? pr_json_get(seg, key) :
	    cJSON_GetArrayItem(pr_json_get(seg, key), i);
	int64_t n;

	return pr_json_to_i64(v, &n) == 0 ? n : -1;
}

static struct seam *
add_seam(struct video *v, int64_t chunk)
{
	struct seam *s;

	v->seams = pr_xrealloc(v->seams, (v->nseams + 1) * sizeof *v->seams);
	s = &v->seams[v->nseams++];
	*s = (struct seam){ .chunk = chunk };
	s->t[0].what = "last";
	s->t[1].what = "first";
	s->t[2].what = "reference";
	for (int i = 0; i < 3; i++)
		s->t[i].frame = s->t[i].source = s->t[i].final_frame = -1;
	return s;
}

static void
set_frame(struct tile *t, const char *job_id, const struct job *j, int64_t frame)
{
	t->job = job_id;
	t->frame = frame;
	t->source = j && j->start >= 0 && frame >= 0 ? j->start + frame : -1;
}

static void
from_file(struct tile *t, const char *from, const char *file, int64_t at)
{
	t->from = from;
	t->file = pr_xstrdup(file);
	t->at = at;
}

/* The job that saved ref, and which frame of its segment ref is. */
static const struct job *
deriver(const struct video *v, const char *ref, int64_t *frame)
{
	const cJSON *d;

	for (size_t i = 0; i < v->njobs; i++)
		cJSON_ArrayForEach(d, pr_json_get(v->jobs[i]->rec, "derive")) {
			const char *p = pr_json_get_string(d, "path");
			if (p && strcmp(p, ref) == 0) {
				*frame = seg_int(d, "frame", -1);
				return v->jobs[i];
			}
		}
	return NULL;
}

/*
 * The reference chunk `chunk` was given: its HIGH job's, which the
 * previous chunk's LOW job derived from its segment. prev is the final's
 * segment record before the seam (NULL without a final), through which a
 * reference no longer on disk is found in the final.
 */
static void
plan_reference(struct video *v, struct seam *s, int64_t chunk, const cJSON *prev)
{
	struct tile *t = &s->t[2];
	const struct job *d;
	const char *ref = NULL;
	int64_t f = -1;

	for (size_t i = 0; i < v->njobs && !ref; i++) {
		const struct job *j = v->jobs[i];
		if (j->chunk == chunk && j->pass && strcmp(j->pass, "high") == 0)
			ref = j->reference;
	}
	if (!ref)
		return;
	if ((d = deriver(v, ref, &f)))
		set_frame(t, d->id, d, f);
	if (usable(ref)) {
		from_file(t, "file", ref, 0);
	} else if (d && prev && f >= 0 &&
	    strcmp(pr_json_get_string(prev, "job"), d->id) == 0 &&
	    f >= seg_int(prev, "keep", 0) && f < seg_int(prev, "keep", 1)) {
		t->final_frame = seg_int(prev, "first", -1) + f - seg_int(prev, "keep", 0);
		from_file(t, "final", pr_json_get_string(v->final, "path"), t->final_frame);
	} else if (d && f >= 0 && usable(d->segment)) {
		from_file(t, "segment", d->segment, f);
	}
}

/* Seams of a final: between each pair of its segments, as joined. */
static void
final_seams(struct video *v, const cJSON *segs)
{
	const char *final = pr_json_get_string(v->final, "path");
	int n = cJSON_GetArraySize(segs);

	for (int i = 0; i + 1 < n; i++) {
		const cJSON *l = cJSON_GetArrayItem(segs, i), *r = cJSON_GetArrayItem(segs, i + 1);
		const char *lid = pr_json_get_string(l, "job"), *rid = pr_json_get_string(r, "job");
		const struct job *lj = find_job(v, lid), *rj = find_job(v, rid);
		struct seam *s = add_seam(v, lj && lj->chunk >= 0 ? lj->chunk : i);
		int64_t at = seg_int(r, "first", -1);

		set_frame(&s->t[0], lid, lj, seg_int(l, "keep", 1) - 1);
		s->t[0].final_frame = at - 1;
		from_file(&s->t[0], "final", final, at - 1);
		set_frame(&s->t[1], rid, rj, seg_int(r, "keep", 0));
		s->t[1].final_frame = at;
		from_file(&s->t[1], "final", final, at);
		plan_reference(v, s, rj && rj->chunk >= 0 ? rj->chunk : s->chunk + 1, l);
	}
}

static int
by_chunk(const void *a, const void *b)
{
	const struct job *x = *(struct job *const *)a, *y = *(struct job *const *)b;

	return (x->chunk > y->chunk) - (x->chunk < y->chunk);
}

/* Seams of a video without a final: between segments still on disk of
 * chunks next to each other. */
static void
segment_seams(struct video *v)
{
	struct job **low = pr_xcalloc(v->njobs + 1, sizeof *low);
	size_t n = 0;

	for (size_t i = 0; i < v->njobs; i++) {
		struct job *j = v->jobs[i];
		if (j->pass && strcmp(j->pass, "low") == 0 && j->status &&
		    strcmp(j->status, "success") == 0 && j->chunk >= 0 &&
		    j->keep_to > j->keep_from && usable(j->segment))
			low[n++] = j;
	}
	qsort(low, n, sizeof *low, by_chunk);
	for (size_t i = 0; i + 1 < n; i++) {
		const struct job *l = low[i], *r = low[i + 1];
		struct seam *s;
		if (r->chunk != l->chunk + 1)
			continue;
		s = add_seam(v, l->chunk);
		set_frame(&s->t[0], l->id, l, l->keep_to - 1);
		from_file(&s->t[0], "segment", l->segment, l->keep_to - 1);
		set_frame(&s->t[1], r->id, r, r->keep_from);
		from_file(&s->t[1], "segment", r->segment, r->keep_from);
		plan_reference(v, s, r->chunk, NULL);
	}
	free(low);
}

void
plan_seams(struct video *v)
{
	const cJSON *segs = v->final ? pr_json_get(v->final, "segments") : NULL;

	if (strcmp(v->status, "success") == 0 && cJSON_GetArraySize(segs) >= 2 &&
	    usable(pr_json_get_string(v->final, "path")))
		final_seams(v, segs);
	else
		segment_seams(v);
}

/* ffmpeg's two levels of filter escaping: an option's value, then the
 * filter graph around it (a path may hold any of ':', '\'', ',', ...). */
static void
filter_value(struct pr_buf *b, const char *s)
{
	struct pr_buf one = PR_BUF_INIT;

	for (const char *p = s; *p; p++) {
		if (strchr("\\':", *p))
			pr_buf_addc(&one, '\\');
		pr_buf_addc(&one, *p);
	}
	for (const char *p = one.data; p && *p; p++) {
		if (strchr("\\'[],;", *p))
			pr_buf_addc(b, '\\');
		pr_buf_addc(b, *p);
	}
	pr_buf_free(&one);
}

/* An image2 file name pattern naming exactly path and frame numbers. */
static void
pattern_path(struct pr_buf *b, const char *path)
{
	for (const char *p = path; *p; p++) {
		if (*p == '%')
			pr_buf_addc(b, '%');
		pr_buf_addc(b, *p);
	}
}

/* The width and height a PNG's header gives; -1 when it is not a PNG. */
static int
png_size(const char *path, int *w, int *h)
{
	unsigned char hd[24];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, hd, sizeof hd);
	close(fd);
	if (n != (ssize_t)sizeof hd || memcmp(hd, "\x89PNG\r\n\x1a\n", 8) != 0 ||
	    memcmp(hd + 12, "IHDR", 4) != 0)
		return -1;
	*w = (int)((unsigned)hd[16] << 24 | hd[17] << 16 | hd[18] << 8 | hd[19]);
	*h = (int)((unsigned)hd[20] << 24 | hd[21] << 16 | hd[22] << 8 | hd[23]);
	return *w > 0 && *h > 0 && *w < 65536 && *h < 65536 ? 0 : -1;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/*
 * Takes the frames the tiles want out of each video file, each as
 * TMP/fK_NNNNN.png, in one decode per file; input[i] gets tile i's
 * picture (NULL for a tile with none).
 */
static int
extract(struct video *v, const char *tmp, char **input, char *err, size_t errlen)
{
	size_t ntiles = v->nseams * 3;
	struct tile **t = pr_xcalloc(ntiles + 1, sizeof *t);
	int64_t *at = pr_xcalloc(ntiles + 1, sizeof *at);
	int rc = 0;

	for (size_t i = 0; i < ntiles; i++)
		t[i] = &v->seams[i / 3].t[i % 3];
	for (size_t i = 0; i < ntiles && rc == 0; i++) {
		struct pr_buf sel = PR_BUF_INIT, pat = PR_BUF_INIT;
		char *src, *url, *outurl;
		size_t n = 0;

		if (!t[i]->file || input[i])
			continue;
		if (strcmp(t[i]->from, "file") == 0) {
			input[i] = out_path(t[i]->file);
			continue;
		}
		/* Every tile reading this file, so it is decoded once. */
		for (size_t k = i; k < ntiles; k++)
			if (t[k]->file && strcmp(t[k]->from, "file") != 0 &&
			    strcmp(t[k]->file, t[i]->file) == 0)
				at[n++] = t[k]->at;
		qsort(at, n, sizeof *at, cmp_i64);
		pr_buf_adds(&sel, "select=");
		for (size_t k = 0; k < n; k++)
			if (k == 0 || at[k] != at[k - 1])
				pr_buf_printf(&sel, "%seq(n\\,%lld)", k ? "+" : "", (long long)at[k]);
		src = out_path(t[i]->file);
		url = pr_video_url(src);
		pattern_path(&pat, tmp);
		pr_buf_printf(&pat, "/f%zu_%%05d.png", i);
		outurl = pr_video_url(pat.data);
		{
			char *argv[] = { "ffmpeg", "-hide_banner", "-nostdin", "-v", "error",
			    "-i", url, "-vf", sel.data, "-fps_mode", "passthrough",
			    "-start_number", "0", "-y", outurl, NULL };
			rc = pr_video_run(argv, src, NULL, 0, err, errlen);
		}
		for (size_t k = i; k < ntiles && rc == 0; k++) {
			size_t rank = 0;
			if (!t[k]->file || strcmp(t[k]->from, "file") == 0 ||
			    strcmp(t[k]->file, t[i]->file) != 0)
				continue;
			/* Frames come out in order, one file per distinct number. */
			for (size_t m = 0; m < n && at[m] < t[k]->at; m++)
				rank += m == 0 || at[m] != at[m - 1];
			input[k] = pr_xasprintf("%s/f%zu_%05zu.png", tmp, i, rank);
			if (!pr_file_exists(input[k])) {
				snprintf(err, errlen, "%s: has no frame %lld", src, (long long)t[k]->at);
				rc = -1;
			}
		}
		free(outurl);
		free(url);
		free(src);
		pr_buf_free(&pat);
		pr_buf_free(&sel);
	}
	free(at);
	free(t);
	return rc;
}

static void
put_num(struct pr_buf *b, int64_t n)
{
	if (n >= 0)
		pr_buf_printf(b, "%lld", (long long)n);
	else
		pr_buf_adds(b, "?");
}

/* The three lines above a picture. */
static char *
label(const struct seam *s, const struct tile *t)
{
	struct pr_buf b = PR_BUF_INIT;
	const char *job = t->job ? strrchr(t->job, '/') : NULL;

	job = job ? job + 1 : t->job ? t->job : "?";
	if (strcmp(t->what, "last") == 0)
		pr_buf_printf(&b, "chunk %lld: last kept frame\n", (long long)s->chunk);
	else if (strcmp(t->what, "first") == 0)
		pr_buf_printf(&b, "chunk %lld: first kept frame\n", (long long)s->chunk + 1);
	else
		pr_buf_printf(&b, "reference for chunk %lld\n", (long long)s->chunk + 1);
	if (!t->file && !t->job) {
		pr_buf_adds(&b, "none\n");
		return pr_buf_steal(&b);
	}
	pr_buf_printf(&b, "%s frame ", job);
	put_num(&b, t->frame);
	pr_buf_adds(&b, "\n");
	if (t->final_frame >= 0)
		pr_buf_printf(&b, "final %lld, ", (long long)t->final_frame);
	pr_buf_adds(&b, "source ");
	put_num(&b, t->source);
	if (!t->file)
		pr_buf_adds(&b, " (not kept)");
	return pr_buf_steal(&b);
}

/* A label for drawtext's textfile: a scratch file, not worth an fsync. */
static int
write_label(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	int rc;

	if (!fp)
		return -1;
	rc = fputs(text, fp) < 0 ? -1 : 0;
	if (fclose(fp) != 0)
		rc = -1;
	return rc;
}

/* Runs the composing ffmpeg; labels off leaves drawtext out. */
static int
compose(struct video *v, const char *tmp, char **input, bool labels, const char *sheet,
    char *err, size_t errlen)
{
	size_t ntiles = v->nseams * 3, nin = 0;
	struct pr_buf g = PR_BUF_INIT;
	char **argv = pr_xcalloc(6 * ntiles + 20, sizeof *argv);
	char **urls = pr_xcalloc(ntiles + 1, sizeof *urls);
	char *outurl = pr_video_url(sheet);
	int (*dim)[2] = pr_xcalloc(ntiles + 1, sizeof *dim);
	int cell_w = 0, box_w = 0, rc, a = 0;

	/* Each picture's size (0 x 0: none to show); the cell's picture box
	 * follows the first one's shape. */
	for (size_t i = 0; i < ntiles; i++) {
		if (!input[i] || png_size(input[i], &dim[i][0], &dim[i][1]) < 0)
			dim[i][0] = dim[i][1] = 0;
		if (dim[i][0] && !box_w) {
			box_w = (int)((int64_t)BOX_H * dim[i][0] / dim[i][1]) & ~1;
			box_w = box_w < 96 ? 96 : box_w > 428 ? 428 : box_w;
		}
	}
	if (!box_w)
		box_w = BOX_H;
	cell_w = box_w > CELL_MIN_W ? box_w : CELL_MIN_W;

	argv[a++] = "ffmpeg";
	argv[a++] = "-hide_banner";
	argv[a++] = "-nostdin";
	argv[a++] = "-v";
	argv[a++] = "error";
	for (size_t i = 0; i < ntiles; i++) {
		struct tile *t = &v->seams[i / 3].t[i % 3];
		int sw = box_w, sh = BOX_H, col = (int)(i % 3), row = (int)(i / 3);
		int w = dim[i][0], h = dim[i][1];
		char *lab;

		if (w) {
			if ((int64_t)w * BOX_H >= (int64_t)h * box_w) {
				sw = box_w;
				sh = (int)(((int64_t)h * box_w + w / 2) / w);
			} else {
				sh = BOX_H;
				sw = (int)(((int64_t)w * BOX_H + h / 2) / h);
			}
			sw = sw < 2 ? 2 : sw;
			sh = sh < 2 ? 2 : sh;
			urls[nin] = pr_video_url(input[i]);
			/* A single file, even when its name holds a '%'. */
			argv[a++] = "-f";
			argv[a++] = "image2";
			argv[a++] = "-pattern_type";
			argv[a++] = "none";
			argv[a++] = "-i";
			argv[a++] = urls[nin];
			pr_buf_printf(&g, "[%zu:v]scale=%d:%d:flags=lanczos,", nin++, sw, sh);
			t->box[0] = GAP + col * (cell_w + GAP) + (cell_w - sw) / 2;
			t->box[1] = GAP + row * (LABEL_H + BOX_H + GAP) + LABEL_H + (BOX_H - sh) / 2;
			t->box[2] = sw;
			t->box[3] = sh;
		} else {
			pr_buf_printf(&g, "color=c=0x3a3a3a:s=%dx%d:r=25:d=0.04,", sw, sh);
			memset(t->box, 0, sizeof t->box);
		}
		pr_buf_printf(&g, "setsar=1,format=rgb24,pad=%d:%d:%d:%d:color=0x1e1e1e",
		    cell_w, LABEL_H + BOX_H, (cell_w - sw) / 2, LABEL_H + (BOX_H - sh) / 2);
		if (labels) {
			char *lfile = pr_xasprintf("%s/l%zu.txt", tmp, i);
			lab = label(&v->seams[i / 3], t);
			if (write_label(lfile, lab) < 0) {
				snprintf(err, errlen, "%s: %s", lfile, strerror(errno));
				free(lab);
				free(lfile);
				rc = -1;
				goto out;
			}
			pr_buf_adds(&g, ",drawtext=textfile=");
			filter_value(&g, lfile);
			pr_buf_adds(&g, ":expansion=none:fontcolor=0xf0f0f0:fontsize=13:"
			    "x=8:y=8:line_spacing=5");
			free(lab);
			free(lfile);
		}
		pr_buf_printf(&g, "[c%zu];", i);
	}
	for (size_t i = 0; i < ntiles; i++)
		pr_buf_printf(&g, "[c%zu]", i);
	pr_buf_printf(&g, "concat=n=%zu:v=1:a=0,tile=3x%zu:margin=%d:padding=%d:color=0x101010[sheet]",
	    ntiles, v->nseams, GAP, GAP);
	argv[a++] = "-filter_complex";
	argv[a++] = g.data;
	argv[a++] = "-map";
	argv[a++] = "[sheet]";
	argv[a++] = "-frames:v";
	argv[a++] = "1";
	argv[a++] = "-update";
	argv[a++] = "1";
	argv[a++] = "-y";
	argv[a++] = outurl;
	argv[a] = NULL;
	rc = pr_video_run(argv, sheet, NULL, 0, err, errlen);
	v->sheet_w = 4 * GAP + 3 * cell_w;
	v->sheet_h = (int)(GAP * (v->nseams + 1) + v->nseams * (LABEL_H + BOX_H));
out:
	for (size_t i = 0; i < nin; i++)
		free(urls[i]);
	free(urls);
	free(dim);
	free(argv);
	free(outurl);
	pr_buf_free(&g);
	return rc;
}

int
write_sheet(struct video *v, const char *tmp)
{
	size_t ntiles = v->nseams * 3;
	char **input = pr_xcalloc(ntiles + 1, sizeof *input);
	char *made = pr_xasprintf("%s/%s_seams.png", tmp, v->name);
	char *rel = pr_xasprintf("report/%s_seams.png", v->name);
	char *dest = out_path(rel);
	char err[1024] = "";
	int rc = -1;

	if (!v->nseams) {
		rc = 0;
		goto out;
	}
	if (extract(v, tmp, input, err, sizeof err) < 0)
		goto out;
	if (compose(v, tmp, input, true, made, err, sizeof err) < 0) {
		/* Without a font drawtext fails; the pictures still tell. */
		char again[1024];
		if (compose(v, tmp, input, false, made, again, sizeof again) < 0)
			goto out;
		pr_warn("%s: the labels were left out: %s", dest, err);
		v->unlabelled = true;
	}
	if (pr_file_publish(made, dest) < 0) {
		snprintf(err, sizeof err, "%s: %s", dest, strerror(errno));
		goto out;
	}
	v->sheet = rel;
	rel = NULL;
	rc = 0;
out:
	if (rc < 0)
		v->sheet_error = pr_xstrdup(err);
	for (size_t i = 0; i < ntiles; i++)
		free(input[i]);
	free(input);
	free(made);
	free(rel);
	free(dest);
	return rc;
}
