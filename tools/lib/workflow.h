/* ComfyUI API-format workflows: {"<node id>": {"class_type", "inputs",
 * "_meta"}}. Inputs are literals or links ["<node id>", <output index>]. */
#ifndef PR_WORKFLOW_H
#define PR_WORKFLOW_H

#include <stdbool.h>
#include <stddef.h>

#include "json.h"

/* Reads and checks an API-format workflow. The UI format ComfyUI saves by
 * default (with "nodes" and "links") is refused with a hint. 0 on
 * success; -1 with a one-line message ("FILE:LINE: ...") in err, *status
 * telling usage (2) from infrastructure (3) failures. */
int pr_workflow_load(const char *path, cJSON **out, int *status, char *err,
    size_t errlen);

/* Whether v has a link's shape: a 2-element array. */
bool pr_workflow_is_link_shaped(const cJSON *v);
/* Checks a link-shaped value: string node id, non-negative integer index.
 * 0, or -1 with the reason in why. */
int pr_workflow_link_check(const cJSON *v, char *why, size_t whylen);

cJSON *pr_workflow_node(const cJSON *wf, const char *id);
cJSON *pr_workflow_inputs(const cJSON *wf, const char *id);
const char *pr_workflow_class(const cJSON *node);
const char *pr_workflow_title(const cJSON *node);

/* The nodes of wf sorted by id, for lookups that stay cheap in a workflow
 * of 200 000 nodes (a member lookup scans them all). Caller frees. */
const cJSON **pr_workflow_sorted(const cJSON *wf, size_t *n);
/* The index in sorted (of n nodes) of the node named id, or n. */
size_t pr_workflow_find(const cJSON **sorted, size_t n, const char *id);

/* Whether links go round in a cycle, which ComfyUI refuses (its message
 * names no node). 0, or -1 with the cycle in why, in the direction data
 * flows: "19 -> 19", "3 -> 5 -> 3". Links to missing nodes are ignored. */
int pr_workflow_find_cycle(const cJSON *wf, char *why, size_t whylen);

/* "a, b, c": the input names of a node, for messages. Caller frees. */
char *pr_workflow_input_list(const cJSON *node);

#endif
