/* pr-report's pieces: what the run did (gather.c), the seam sheets
 * (seams.c) and the page (page.c). */
#ifndef PR_REPORT_H
#define PR_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "json.h"

struct opts {
	const char *state, *out;
	double started;   /* the run's start (epoch seconds), < 0 when unknown */
	double price;     /* the pod's USD per hour, < 0 when unknown */
};
extern struct opts o;

/* One job as pr-submit's results tell it; the strings point into rec. */
struct job {
	const cJSON *rec;
	const char *id, *video, *kind, *pass, *status, *server, *model;
	int64_t chunk, start, frames;          /* -1 when absent */
	int64_t keep_from, keep_to;            /* -1 when no keep */
	double submitted, started, finished, collected;  /* < 0 when absent */
	int64_t attempts;
	bool cached;
	bool model_load;                       /* estimated, see gather.c */
	const char *segment;                   /* files[] entry of role segment */
	const char *reference;                 /* vars.reference: the image it was given */
};

/* One picture in a seam sheet: where it is read from and what it is. */
struct tile {
	const char *what;        /* "last", "first" or "reference" */
	const char *job;         /* the job whose frame it is, NULL when unknown */
	int64_t frame;           /* in that job's output; -1 when unknown */
	int64_t source;          /* the source video's frame; -1 when unknown */
	int64_t final_frame;     /* in the final; -1 when not read from it */
	char *file;              /* read from (relative to --out); NULL: none kept */
	int64_t at;              /* frame of file to take; 0 for an image */
	const char *from;        /* "final", "segment", "file" or NULL */
	int box[4];              /* x, y, w, h of the picture in the sheet */
};

struct seam {
	int64_t chunk;           /* the seam joins chunk and chunk + 1 */
	struct tile t[3];        /* last of chunk, first of chunk + 1, its reference */
};

struct video {
	const char *name;
	const cJSON *final;      /* the final record; NULL when there is none */
	const char *status;      /* the final's, or "failed" */
	const char *error;       /* why it failed, when it did */
	struct job **jobs;       /* this video's, in results order */
	size_t njobs;
	int64_t planned_chunks;  /* from the plan; -1 when unknown */
	struct seam *seams;
	size_t nseams;
	char *sheet;             /* "report/VIDEO_seams.png" once written */
	char *sheet_error;       /* why there is no sheet though there are seams */
	int sheet_w, sheet_h;
	bool unlabelled;         /* drawtext failed: the sheet has no labels */
};

/* GPU time on one server: each prompt's start to end as it reported
 * them, and the model loads estimated in gather.c. */
struct server_time {
	const char *server;
	double busy;
	size_t prompts, loads;
};

struct run {
	struct job *jobs;
	size_t njobs;
	struct video *videos;
	size_t nvideos;
	cJSON *finals;           /* the records read, owned here */
	cJSON *results;
	double t0, t1;           /* the timeline's span (epoch seconds) */
	double wall;             /* seconds: from --started, else t0 to t1 */
	bool wall_given;         /* from --started */
	size_t ran, cached, failed, skipped, loads;
	int64_t retried;
	struct server_time *servers;   /* in the order they first ran a prompt */
	size_t nservers;
	double price;            /* < 0 when unknown */
	const char *price_from;  /* where the price came from */
};

/* gather.c: reads finals from stdin and the state folder; exits 2 on bad
 * input naming file, line and field. */
void gather(struct run *r);
void run_free(struct run *r);
/* The video's result record for id, or NULL. */
struct job *find_job(const struct video *v, const char *id);

/* seams.c: lays out the video's seams and writes its sheet. 0, or -1
 * with v->sheet_error set. */
void plan_seams(struct video *v);
int write_sheet(struct video *v, const char *tmpdir);

/* page.c: report/index.html. 0 or -1 (errno). */
int write_page(const struct run *r, const char *path);

/* "OUT/rel", caller frees. */
char *out_path(const char *rel);

#endif
