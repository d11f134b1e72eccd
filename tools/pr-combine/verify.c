/*
 * Checking a joined video before it becomes the final: its decoded frame
 * count, and on identity-coded sources (the stand-in's) which source
 * frame every frame is. A final is only ever published after this.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "combine.h"
#include "final.h"
#include "frameid.h"

/* Frames are read back this small: the code's cells stay 8 pixels wide. */
#define IDS_W 64
#define IDS_H 48

static int
check_ids(const struct video *v, const uint32_t *codes, size_t n, char *err, size_t errlen)
{
	size_t pos = 0;

	for (size_t r = 0; r < v->nruns; r++) {
		const struct run_of_frames *run = &v->runs[r];
		for (int64_t i = 0; i < run->count; i++, pos += (size_t)run->mult) {
			uint32_t want = (uint32_t)(run->first + i);
			if (pos >= n) {
				snprintf(err, errlen, "joined video ends at frame %zu, before source "
				    "frame %u (from %s)", n, want, run->job);
				return -1;
			}
			if (codes[pos] != want) {
				if (codes[pos] == PR_FRAMEID_NONE)
					snprintf(err, errlen, "frame %zu of the joined video carries no "
					    "frame number, expected source frame %u (from %s)", pos, want,
					    run->job);
				else
					snprintf(err, errlen, "frame %zu of the joined video is source frame "
					    "%u, expected %u (from %s)", pos, codes[pos], want, run->job);
				return -1;
			}
		}
		/* the frames in between were interpolated: nothing to compare */
		if (run->count)
			pos -= (size_t)run->mult - 1;
	}
	return 0;
}

int
verify(struct video *v, const char *file, struct pr_video_info *info, bool *ids, char *err,
    size_t errlen)
{
	uint32_t *codes = NULL;
	size_t n = 0;
	int rc = -1;

	*ids = false;
	if (pr_video_probe(file, info, err, errlen) < 0)
		return -1;
	if (info->frames != v->expect) {
		snprintf(err, errlen, "joined video has %ld frames, expected %lld", info->frames,
		    (long long)v->expect);
		return -1;
	}
	if (o.ids == 0)
		return 0;
	if (pr_video_read_codes(file, IDS_W, IDS_H, &codes, &n, err, errlen) < 0)
		return -1;
	if (n != (size_t)info->frames) {
		snprintf(err, errlen, "joined video decodes to %zu frames, ffprobe counted %ld", n,
		    info->frames);
	} else if (o.ids < 0 && (n == 0 || codes[0] == PR_FRAMEID_NONE)) {
		rc = 0;     /* not an identity-coded source */
	} else if (check_ids(v, codes, n, err, errlen) == 0) {
		*ids = true;
		rc = 0;
	}
	free(codes);
	return rc;
}

/* The record of the video's final from an earlier run, when it was made
 * from the same pieces and the file is still intact. */
cJSON *
cached_final(struct video *v)
{
	cJSON *rec = pr_final_read(o.state, v->name);
	const char *key, *sum, *rel;
	char hex[PR_SHA256_HEX];

	if (!rec)
		return NULL;
	key = pr_json_get_string(rec, "key");
	sum = pr_json_get_string(rec, "sha256");
	rel = pr_json_get_string(rec, "path");
	if (!key || !sum || !rel || strcmp(key, v->key) != 0 || strcmp(rel, v->final_rel) != 0 ||
	    pr_sha256_file(v->final, hex, NULL) < 0 || strcmp(hex, sum) != 0) {
		cJSON_Delete(rec);
		return NULL;
	}
	pr_json_set(rec, "cached", pr_json_bool(true));
	return rec;
}
