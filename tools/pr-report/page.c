/*
 * report/index.html: one static page, readable from the disk or from the
 * bucket beside the finals. No script, no external resource: styles are
 * inline, the timelines are inline SVG, and files are linked relative to
 * report/ so the page works wherever the run's folder is copied.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "file.h"
#include "report.h"

#define PLOT_X   130   /* the timeline's label column */
#define PLOT_W   640
#define ROW_H    20

static const char style[] =
    "body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1000px;padding:1em;"
    "color:#1d232a;background:#fafbfc}"
    "h1{font-size:1.5em}h2{margin-top:0}h3{margin:1.2em 0 .4em}"
    "section{background:#fff;border:1px solid #d8dee4;border-radius:6px;padding:1em 1.2em;"
    "margin:1em 0}"
    "table{border-collapse:collapse}td,th{text-align:left;padding:.2em .8em .2em 0;"
    "vertical-align:top}th{font-weight:600}"
    ".status{font-size:.7em;padding:.15em .5em;border-radius:4px;vertical-align:middle}"
    ".success{background:#d9f2df;color:#155d27}.failed{background:#fbdcdc;color:#8a1616}"
    ".error{color:#8a1616}.note{color:#5b6570;font-size:.9em}"
    "video,img{max-width:100%;height:auto;display:block;background:#222}"
    "svg{max-width:100%;height:auto;font:11px sans-serif}"
    ".key span{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 .9em;"
    "vertical-align:-.1em}"
    "code{font-size:.9em}.seamtab td:first-child{white-space:nowrap}";

static void
esc(struct pr_buf *b, const char *s)
{
	for (; s && *s; s++)
		switch (*s) {
		case '&': pr_buf_adds(b, "&amp;"); break;
		case '<': pr_buf_adds(b, "&lt;"); break;
		case '>': pr_buf_adds(b, "&gt;"); break;
		case '"': pr_buf_adds(b, "&quot;"); break;
		case '\'': pr_buf_adds(b, "&#39;"); break;
		default: pr_buf_addc(b, *s);
		}
}

/* A path relative to --out as a URL relative to report/. */
static void
href(struct pr_buf *b, const char *rel)
{
	static const char hex[] = "0123456789ABCDEF";

	if (strncmp(rel, "report/", 7) == 0)
		rel += 7;
	else
		pr_buf_adds(b, "../");
	for (const unsigned char *p = (const unsigned char *)rel; *p; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~/", *p))
			pr_buf_addc(b, (char)*p);
		else
			pr_buf_printf(b, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
}

static void
seconds(struct pr_buf *b, double s)
{
	if (s >= 3600)
		pr_buf_printf(b, "%d h %02d min", (int)(s / 3600), (int)fmod(s / 60, 60));
	else if (s >= 60)
		pr_buf_printf(b, "%d min %02d s", (int)(s / 60), (int)fmod(s, 60));
	else
		pr_buf_printf(b, "%.1f s", s);
}

static void
row_open(struct pr_buf *b, const char *th)
{
	pr_buf_adds(b, "<tr><th>");
	esc(b, th);
	pr_buf_adds(b, "</th><td>");
}

static void
totals(struct pr_buf *b, const struct run *r)
{
	pr_buf_adds(b, "<section id=\"totals\"><h2>The run</h2><table>");
	row_open(b, "wall time");
	seconds(b, r->wall);
	pr_buf_adds(b, r->wall_given ? " <span class=\"note\">(from the pipeline's start to this report)</span>" :
	    " <span class=\"note\">(from the first prompt sent to the last output fetched)</span>");
	pr_buf_adds(b, "</td></tr>");
	row_open(b, "prompts");
	pr_buf_printf(b, "%zu run, %zu cached, %lld retried, %zu failed, %zu skipped</td></tr>",
	    r->ran, r->cached, (long long)r->retried, r->failed, r->skipped);
	for (size_t i = 0; i < r->nservers; i++) {
		const struct server_time *s = &r->servers[i];
		pr_buf_adds(b, "<tr><th>GPU busy on <code>");
		esc(b, s->server);
		pr_buf_adds(b, "</code></th><td>");
		seconds(b, s->busy);
		if (r->wall > 0)
			pr_buf_printf(b, " (%.0f%% of the wall time)", s->busy / r->wall * 100);
		pr_buf_printf(b, ", %zu prompts, %zu model loads <span class=\"note\">(estimated from "
		    "the server's start and end times, and from consecutive prompts naming "
		    "different models)</span></td></tr>", s->prompts, s->loads);
	}
	row_open(b, "model loads");
	pr_buf_printf(b, "%zu <span class=\"note\">(estimated)</span></td></tr>", r->loads);
	row_open(b, "cost");
	if (r->price >= 0) {
		pr_buf_printf(b, "%.4f USD <span class=\"note\">(", r->wall / 3600 * r->price);
		seconds(b, r->wall);
		pr_buf_printf(b, " at %g USD/h, the pod's price ", r->price);
		esc(b, r->price_from);
		pr_buf_adds(b, ")</span>");
	} else {
		pr_buf_adds(b, "unknown <span class=\"note\">(the pod's price was not known)</span>");
	}
	pr_buf_adds(b, "</td></tr></table><p>");
	for (size_t i = 0; i < r->nvideos; i++) {
		pr_buf_adds(b, i ? " · " : "Videos: ");
		pr_buf_adds(b, "<a href=\"#video-");
		esc(b, r->videos[i].name);
		pr_buf_adds(b, "\">");
		esc(b, r->videos[i].name);
		pr_buf_adds(b, "</a>");
	}
	pr_buf_adds(b, "</p></section>\n");
}

static void
tile_cell(struct pr_buf *b, const struct tile *t)
{
	const char *job = t->job ? strrchr(t->job, '/') : NULL;

	pr_buf_adds(b, "<td>");
	if (!t->job && !t->file) {
		pr_buf_adds(b, "none</td>");
		return;
	}
	esc(b, job ? job + 1 : t->job ? t->job : "?");
	if (t->frame >= 0)
		pr_buf_printf(b, " frame %lld", (long long)t->frame);
	if (t->final_frame >= 0)
		pr_buf_printf(b, ", final frame %lld", (long long)t->final_frame);
	if (t->source >= 0)
		pr_buf_printf(b, ", source frame %lld", (long long)t->source);
	if (!t->file)
		pr_buf_adds(b, " <span class=\"note\">(not kept)</span>");
	else if (strcmp(t->from, "file") != 0)
		pr_buf_printf(b, " <span class=\"note\">(from the %s)</span>", t->from);
	pr_buf_adds(b, "</td>");
}

static void
seams(struct pr_buf *b, const struct video *v)
{
	pr_buf_adds(b, "<h3>Seams</h3>");
	if (!v->nseams) {
		pr_buf_adds(b, "<p class=\"note\">No seams to show: ");
		pr_buf_adds(b, strcmp(v->status, "success") == 0 ? "the video is one chunk." :
		    "no two neighbouring chunks have a segment on disk.");
		pr_buf_adds(b, "</p>");
		return;
	}
	if (v->sheet) {
		pr_buf_adds(b, "<p class=\"note\">Each row: the last kept frame before the seam, the "
		    "first kept frame after it, and the reference image the next chunk was given.</p>"
		    "<img class=\"seams\" src=\"");
		href(b, v->sheet);
		pr_buf_printf(b, "\" width=\"%d\" height=\"%d\" alt=\"seams of ", v->sheet_w, v->sheet_h);
		esc(b, v->name);
		pr_buf_adds(b, "\">");
	} else {
		pr_buf_adds(b, "<p class=\"error\">The seam sheet could not be made: ");
		esc(b, v->sheet_error);
		pr_buf_adds(b, "</p>");
	}
	pr_buf_adds(b, "<table class=\"seamtab\"><tr><th>seam</th><th>last kept</th><th>first kept</th>"
	    "<th>reference</th></tr>");
	for (size_t i = 0; i < v->nseams; i++) {
		const struct seam *s = &v->seams[i];
		pr_buf_printf(b, "<tr><td>chunk %lld → %lld</td>", (long long)s->chunk,
		    (long long)s->chunk + 1);
		for (int t = 0; t < 3; t++)
			tile_cell(b, &s->t[t]);
		pr_buf_adds(b, "</tr>");
	}
	pr_buf_adds(b, "</table>");
}

static double
x_of(const struct run *r, double t)
{
	double span = r->t1 > r->t0 ? r->t1 - r->t0 : 1;

	return PLOT_X + (t - r->t0) / span * PLOT_W;
}

static void
bar(struct pr_buf *b, const struct run *r, int y, double from, double to, int h,
    const char *fill, const char *job, const char *what)
{
	double x0 = x_of(r, from), x1 = x_of(r, to);

	pr_buf_printf(b, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\">"
	    "<title>", x0, y + (ROW_H - 4 - h) / 2 + 2, x1 - x0 < 1 ? 1 : x1 - x0, h, fill);
	esc(b, job);
	pr_buf_printf(b, ": %s %.1f s</title></rect>", what, to - from);
}

/* A round step giving at most eight ticks. */
static double
tick_step(double span)
{
	static const double nice[] = { 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300,
	    600, 900, 1800, 3600, 7200, 14400, 28800, 86400 };

	for (size_t i = 0; i < sizeof nice / sizeof *nice; i++)
		if (span / nice[i] <= 8)
			return nice[i];
	return span / 8;
}

/* The video's jobs on the run's time axis: waiting in the queue, running
 * (the GPU's time), fetching the outputs; a mark where a model was
 * probably loaded. */
static void
timeline(struct pr_buf *b, const struct run *r, const struct video *v)
{
	size_t rows = 0, y;
	double span = r->t1 - r->t0, step;

	pr_buf_adds(b, "<h3>GPU time</h3>");
	for (size_t i = 0; i < v->njobs; i++)
		rows += !v->jobs[i]->cached && v->jobs[i]->started >= 0;
	if (!rows || span <= 0) {
		pr_buf_adds(b, "<p class=\"note\">No prompt of this video ran in this run");
		pr_buf_adds(b, v->njobs ? " (its jobs were cached or never started).</p>" : ".</p>");
		return;
	}
	pr_buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%zu\" "
	    "viewBox=\"0 0 %d %zu\" role=\"img\"><title>GPU time of ", PLOT_X + PLOT_W + 20,
	    rows * ROW_H + 30, PLOT_X + PLOT_W + 20, rows * ROW_H + 30);
	esc(b, v->name);
	pr_buf_adds(b, "</title>");
	step = tick_step(span);
	for (int k = 0; k * step <= span + 1e-9; k++) {
		double t = k * step, x = x_of(r, r->t0 + t);
		pr_buf_printf(b, "<line x1=\"%.1f\" y1=\"0\" x2=\"%.1f\" y2=\"%zu\" stroke=\"#e3e7eb\"/>"
		    "<text x=\"%.1f\" y=\"%zu\" text-anchor=\"middle\" fill=\"#5b6570\">%g %s</text>",
		    x, x, rows * ROW_H, x, rows * ROW_H + 16, step >= 60 ? t / 60 : round(t * 10) / 10,
		    step >= 60 ? "min" : "s");
	}
	y = 0;
	for (size_t i = 0; i < v->njobs; i++) {
		const struct job *j = v->jobs[i];
		const char *name = strrchr(j->id, '/');
		bool failed = j->status && strcmp(j->status, "failed") == 0;
		const char *fill = failed ? "#c0392b" : !j->pass ? "#4a9a5a" :
		    strcmp(j->pass, "high") == 0 ? "#e07b39" : "#3979e0";
		if (j->cached || j->started < 0)
			continue;
		pr_buf_printf(b, "<text x=\"4\" y=\"%zu\">", y + ROW_H - 6);
		esc(b, name ? name + 1 : j->id);
		if (j->pass) {
			pr_buf_adds(b, " ");
			esc(b, j->pass);
		}
		if (j->attempts > 1)
			pr_buf_printf(b, " ×%lld", (long long)j->attempts);
		pr_buf_adds(b, "</text>");
		if (j->submitted >= 0 && j->started > j->submitted)
			bar(b, r, (int)y, j->submitted, j->started, 8, "#c8d0da", j->id, "queued");
		if (j->finished >= j->started)
			bar(b, r, (int)y, j->started, j->finished, 14, fill, j->id,
			    failed ? "ran, then failed," : "running");
		if (j->finished >= 0 && j->collected > j->finished)
			bar(b, r, (int)y, j->finished, j->collected, 8, "#9aa7b5", j->id, "fetching outputs");
		if (j->model_load) {
			double x = x_of(r, j->started);
			pr_buf_printf(b, "<path d=\"M%.1f %zu l-5 -7 h10 z\" fill=\"#1d232a\"><title>",
			    x, y + 9);
			esc(b, j->id);
			pr_buf_adds(b, ": model load (estimated: the server's previous prompt named "
			    "another model)</title></path>");
		}
		y += ROW_H;
	}
	pr_buf_adds(b, "</svg><p class=\"key note\"><span style=\"background:#c8d0da\"></span>queued"
	    "<span style=\"background:#e07b39\"></span>HIGH pass"
	    "<span style=\"background:#3979e0\"></span>LOW pass"
	    "<span style=\"background:#4a9a5a\"></span>other"
	    "<span style=\"background:#c0392b\"></span>failed"
	    "<span style=\"background:#9aa7b5\"></span>fetching outputs"
	    " ▼ model load (estimated)</p>");
}

static void
failures(struct pr_buf *b, const struct video *v)
{
	size_t failed = 0, skipped = 0, retried = 0;

	for (size_t i = 0; i < v->njobs; i++) {
		const char *st = v->jobs[i]->status;
		failed += st && strcmp(st, "failed") == 0;
		skipped += st && strcmp(st, "skipped") == 0;
		retried += v->jobs[i]->attempts > 1;
	}
	if (failed) {
		pr_buf_adds(b, "<h3>Failures</h3><table class=\"failures\"><tr><th>job</th><th>node</th>"
		    "<th>exception</th><th>message</th></tr>");
		for (size_t i = 0; i < v->njobs; i++) {
			const struct job *j = v->jobs[i];
			const cJSON *e = pr_json_get(j->rec, "error");
			const cJSON *node = pr_json_get(e, "node_id");
			char *nodetext = node && !cJSON_IsString(node) ? pr_json_print(node, 0) : NULL;
			if (!j->status || strcmp(j->status, "failed") != 0)
				continue;
			pr_buf_adds(b, "<tr><td>");
			esc(b, j->id);
			pr_buf_adds(b, "</td><td>");
			esc(b, cJSON_IsString(node) ? node->valuestring : nodetext);
			if (pr_json_get_string(e, "node_type")) {
				pr_buf_adds(b, " ");
				esc(b, pr_json_get_string(e, "node_type"));
			}
			pr_buf_adds(b, "</td><td>");
			esc(b, pr_json_get_string(e, "exception_type"));
			pr_buf_adds(b, "</td><td class=\"error\">");
			esc(b, pr_json_get_string(e, "message"));
			pr_buf_adds(b, "</td></tr>");
			free(nodetext);
		}
		pr_buf_adds(b, "</table>");
	}
	if (skipped) {
		pr_buf_adds(b, "<p>Not run because a job they need failed:");
		for (size_t i = 0; i < v->njobs; i++)
			if (v->jobs[i]->status && strcmp(v->jobs[i]->status, "skipped") == 0) {
				pr_buf_adds(b, " <code>");
				esc(b, v->jobs[i]->id);
				pr_buf_adds(b, "</code>");
			}
		pr_buf_adds(b, "</p>");
	}
	if (retried) {
		pr_buf_adds(b, "<h3>Retries</h3><table><tr><th>job</th><th>attempts</th></tr>");
		for (size_t i = 0; i < v->njobs; i++)
			if (v->jobs[i]->attempts > 1) {
				pr_buf_adds(b, "<tr><td>");
				esc(b, v->jobs[i]->id);
				pr_buf_printf(b, "</td><td>%lld</td></tr>", (long long)v->jobs[i]->attempts);
			}
		pr_buf_adds(b, "</table>");
	}
}

static void
video(struct pr_buf *b, const struct run *r, const struct video *v)
{
	bool ok = strcmp(v->status, "success") == 0;
	const cJSON *f = v->final;
	size_t low = 0;
	double w = 0, h = 0;

	for (size_t i = 0; i < v->njobs; i++)
		low += v->jobs[i]->pass && strcmp(v->jobs[i]->pass, "low") == 0 &&
		    v->jobs[i]->status && strcmp(v->jobs[i]->status, "success") == 0;
	pr_buf_adds(b, "<section class=\"video\" id=\"video-");
	esc(b, v->name);
	pr_buf_adds(b, "\" data-video=\"");
	esc(b, v->name);
	pr_buf_printf(b, "\" data-status=\"%s\"><h2>", ok ? "success" : "failed");
	esc(b, v->name);
	pr_buf_printf(b, " <span class=\"status %s\">%s</span></h2>", ok ? "success" : "failed",
	    ok ? "finished" : "failed");
	if (!ok) {
		pr_buf_adds(b, "<p class=\"error\">");
		esc(b, v->error);
		pr_buf_adds(b, "</p>");
	}
	pr_buf_printf(b, "<p>%zu chunk%s rendered", low, low == 1 ? "" : "s");
	if (v->planned_chunks >= 0)
		pr_buf_printf(b, " of %lld planned", (long long)v->planned_chunks);
	if (ok) {
		pr_json_to_double(pr_json_get(f, "width"), &w);
		pr_json_to_double(pr_json_get(f, "height"), &h);
		pr_buf_adds(b, "; final <code>");
		esc(b, pr_json_get_string(f, "path"));
		pr_buf_adds(b, "</code>");
		for (const char *const *k = (const char *const[]){ "frames", "fps", "codec", "size", NULL };
		    *k; k++) {
			const cJSON *val = pr_json_get(f, *k);
			char *text = val ? pr_json_print(val, 0) : NULL;
			if (text) {
				pr_buf_printf(b, ", %s ", *k);
				esc(b, cJSON_IsString(val) ? val->valuestring : text);
			}
			free(text);
		}
		if (w > 0 && h > 0)
			pr_buf_printf(b, ", %.0f×%.0f", w, h);
	}
	pr_buf_adds(b, "</p>");
	if (ok) {
		/* Shown at most 480 wide or 360 high, in its own shape. */
		double scale = w > 0 && h > 0 ? fmin(480 / w, 360 / h) : 0;
		pr_buf_adds(b, "<video controls preload=\"metadata\" src=\"");
		href(b, pr_json_get_string(f, "path"));
		pr_buf_adds(b, "\"");
		if (scale > 0)
			pr_buf_printf(b, " width=\"%.0f\" height=\"%.0f\"", w * scale, h * scale);
		pr_buf_adds(b, "></video>");
	}
	seams(b, v);
	timeline(b, r, v);
	failures(b, v);
	pr_buf_adds(b, "</section>\n");
}

int
write_page(const struct run *r, const char *path)
{
	struct pr_buf b = PR_BUF_INIT;
	size_t done = 0;
	time_t now = (time_t)pr_wall();
	char when[64];
	int rc;

	for (size_t i = 0; i < r->nvideos; i++)
		done += strcmp(r->videos[i].status, "success") == 0;
	strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
	pr_buf_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	    "<title>prompt-runner report</title><style>%s</style></head><body>\n"
	    "<h1>prompt-runner report</h1><p>%zu videos: %zu finished, %zu failed. Made %s.</p>\n",
	    style, r->nvideos, done, r->nvideos - done, when);
	totals(&b, r);
	for (size_t i = 0; i < r->nvideos; i++)
		video(&b, r, &r->videos[i]);
	pr_buf_adds(&b, "</body></html>\n");
	rc = pr_file_write_atomic(path, b.data, b.len);
	pr_buf_free(&b);
	return rc;
}
