/*
 * Rules files: the node edits that turn a base workflow into the workflow
 * of one job, kept beside the workflow instead of in C (docs/FORMATS.md,
 * "Rules files"). The engine knows nothing of HIGH or LOW: conditions and
 * values come from the job record.
 */
#ifndef PR_RULES_H
#define PR_RULES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "json.h"

struct pr_rules;

/* Reads and checks a rules file. NULL with a "FILE:LINE: ..." message in
 * err and the exit status in *status on failure. */
struct pr_rules *pr_rules_load(const char *path, int *status, char *err,
    size_t errlen);
void pr_rules_free(struct pr_rules *r);

/* The frame multiplier the file declares (RIFE x2 -> 2), or 0. */
int64_t pr_rules_frame_multiplier(const struct pr_rules *r);

/* What the rules made of one job. The caller owns all four trees. */
struct pr_patched {
	cJSON *workflow;
	cJSON *stage;    /* [{path, as}] */
	cJSON *collect;  /* [{node, role, path}] */
	cJSON *derive;   /* [{from, frame, path, role}] */
};

/* Applies the rules to a copy of workflow for job. When explain is not
 * NULL every change is described there. 0, or -1 with one line in err
 * naming the rules file, line, rule, job, node and input. */
int pr_rules_apply(const struct pr_rules *r, const cJSON *workflow,
    const cJSON *job, FILE *explain, struct pr_patched *out, char *err,
    size_t errlen);

void pr_patched_free(struct pr_patched *p);

#endif
