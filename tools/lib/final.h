/*
 * A video's final record as pr-combine keeps it, STATE/VIDEO/final.json:
 * written atomically after the final is verified, so it survives a
 * finals.jsonl cut short. pr-combine reuses an intact final through it;
 * pr-submit's cache trusts it once intermediates are cleaned up.
 */
#ifndef PR_FINAL_H
#define PR_FINAL_H

#include "json.h"

/* STATE/VIDEO/final.json; the caller frees it. */
char *pr_final_path(const char *state, const char *video);

/* The record when it is there, parses and says "success"; else NULL. */
cJSON *pr_final_read(const char *state, const char *video);

#endif
