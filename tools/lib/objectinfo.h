/* /object_info as a server with the given root serves it (objectinfo.c). */
#ifndef PR_OBJECTINFO_H
#define PR_OBJECTINFO_H

#include "json.h"

/*
 * From node facts (tools/lib/nodes.json): every x-files combo filled from
 * the folders under root (recursive, '/'-relative, filtered by extension,
 * sorted; input-folder loaders list the top level only), static options
 * before the files unless x-static is "after", x- keys removed, x-bare
 * dicts dropped. root NULL: no files. The caller frees the result.
 */
cJSON *pr_object_info(const cJSON *facts, const char *root);

#endif
