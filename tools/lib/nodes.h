/*
 * The node facts (tools/lib/nodes.json, compiled in): for every node class
 * our workflows and the protocol recordings use, its /object_info entry
 * as a real ComfyUI 0.3.64 serves it, plus our x-files, x-validate and
 * x-links keys (see tools/lib/mknodes.jq). The ComfyUI stand-in serves and
 * validates with them; pr-submit's preflight validates with them.
 */
#ifndef PR_NODES_H
#define PR_NODES_H

#include <stddef.h>

#include "json.h"

extern const char pr_nodes_json[];
extern const size_t pr_nodes_json_len;

/* The facts, parsed on first use and kept for the life of the process. */
const cJSON *pr_nodes(void);

#endif
