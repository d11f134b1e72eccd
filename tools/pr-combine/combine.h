/*
 * pr-combine: what it knows about one video. main.c reads the results and
 * writes one final record per video; gather.c works out which files make
 * the video and what each must hold; join.c cuts and joins them with
 * ffmpeg; verify.c checks the joined video; cleanup.c removes what the
 * verified final no longer needs.
 */
#ifndef PR_COMBINE_H
#define PR_COMBINE_H

#include <stdbool.h>
#include <stdint.h>

#include "pr.h"
#include "hash.h"
#include "video.h"

struct opts {
	const char *state, *out;
	bool reencode;          /* convert segments that do not match */
	bool keep_intermediate;
	int ids;                /* frame identity check: -1 auto, 0 off, 1 on */
};

/*
 * A run of source frames in the final: count originals, first source
 * index first, with mult - 1 interpolated frames between each two
 * (RIFE x2: mult 2), so (count - 1) * mult + 1 frames.
 */
struct run_of_frames {
	int64_t first, count;
	int mult;
	const char *job;        /* the job that made them */
};

/* One file that goes into the final, in order. */
struct segment {
	const char *job;        /* its job id (in the owning video's results) */
	char *rel;              /* as the result names it (relative to --out) */
	char *path;             /* where it is on this machine */
	char *sha256;           /* what pr-submit collected, or NULL */
	int64_t from, to;       /* its frames [from, to) that belong in the final */
	struct pr_video_info info;
	bool cut;               /* frames outside [from, to): must be re-encoded */
	bool convert;           /* differs from the first segment (--reencode) */
	bool redo;              /* to be re-encoded by the join */
	char *use;              /* the file the join reads: path, or a re-encode */
	int64_t first;          /* index of its first frame in the final */
};

struct video {
	const char *name;
	const char *mode;       /* "none", "segments" or "progressive" */
	cJSON *results;         /* this video's result records, borrowed */
	struct segment *seg;
	size_t nseg;
	struct run_of_frames *runs;
	size_t nruns;
	int64_t expect;         /* frames the final must have */
	int64_t total_frames;   /* what the prompt asked for (T) */
	char key[PR_SHA256_HEX];
	char work[4096];        /* OUT/final/.VIDEO.work */
	char final[4096];       /* OUT/final/VIDEO_final.mp4 */
	char final_rel[4096];
	const char *failed_job; /* the job a failure is about, if one */
	char *missing_job;      /* a job of the plan with no result (owned) */
	int reencoded;          /* segments re-encoded by the join */
	bool reencoded_all;
};

extern struct opts o;

/* gather.c */
char *local_path(const char *rel);
int gather(struct video *v, char *err, size_t errlen);
void video_free(struct video *v);

/* join.c */
int join(struct video *v, char *err, size_t errlen);
int publish_copy(struct video *v, const char *src, char *err, size_t errlen);

/* verify.c */
int verify(struct video *v, const char *file, struct pr_video_info *info, bool *ids,
    char *err, size_t errlen);
cJSON *cached_final(struct video *v);

/* cleanup.c */
void remove_work(struct video *v);
void cleanup(struct video *v);

#endif
