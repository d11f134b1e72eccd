#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "file.h"
#include "workflow.h"

#define WORKFLOW_MAX ((size_t)256 << 20)

static int
check_api_format(const char *path, const cJSON *wf, const struct pr_json_locs *locs,
    char *err, size_t errlen)
{
	const cJSON *node, *nodes, *links;

	if (!cJSON_IsObject(wf)) {
		snprintf(err, errlen, "%s: a workflow must be a JSON object, found %s",
		    path, pr_json_type_name(wf));
		return -1;
	}
	nodes = pr_json_get(wf, "nodes");
	links = pr_json_get(wf, "links");
	if (cJSON_IsArray(nodes) || cJSON_IsArray(links)) {
		snprintf(err, errlen, "%s: this is a UI-format workflow (it has \"nodes\" and "
		    "\"links\"); in ComfyUI export it with Save (API)", path);
		return -1;
	}
	if (!wf->child) {
		snprintf(err, errlen, "%s: the workflow has no nodes", path);
		return -1;
	}
	for (node = wf->child; node; node = node->next) {
		size_t line = pr_json_line(locs, node);
		const cJSON *ct = pr_json_get(node, "class_type");

		if (!cJSON_IsObject(node)) {
			snprintf(err, errlen, "%s: node \"%s\" is a %s, not an object",
			    path, node->string, pr_json_type_name(node));
			return -1;
		}
		if (!cJSON_IsString(ct) || !*ct->valuestring) {
			snprintf(err, errlen, "%s:%zu: node \"%s\" has no class_type "
			    "(is this an API-format workflow?)", path, line, node->string);
			return -1;
		}
		if (!cJSON_IsObject(pr_json_get(node, "inputs"))) {
			snprintf(err, errlen, "%s:%zu: node \"%s\" (%s) has no \"inputs\" object",
			    path, line, node->string, ct->valuestring);
			return -1;
		}
	}
	return 0;
}

int
pr_workflow_load(const char *path, cJSON **out, int *status, char *err, size_t errlen)
{
	struct pr_buf text = PR_BUF_INIT;
	struct pr_json_locs locs = { 0 };
	struct pr_json_error e;
	cJSON *wf;

	*out = NULL;
	*status = PR_EXIT_USAGE;
	if (pr_file_read(path, WORKFLOW_MAX, &text) < 0) {
		if (errno == EFBIG)
			snprintf(err, errlen, "%s: workflow larger than %zu MiB", path,
			    WORKFLOW_MAX >> 20);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		pr_buf_free(&text);
		return -1;
	}
	wf = pr_json_parse(text.data, text.len, &e, &locs);
	pr_buf_free(&text);
	if (!wf) {
		snprintf(err, errlen, "%s:%zu: column %zu: invalid JSON: %s", path, e.line,
		    e.col, e.msg);
		pr_json_locs_free(&locs);
		return -1;
	}
	if (check_api_format(path, wf, &locs, err, errlen) < 0) {
		cJSON_Delete(wf);
		pr_json_locs_free(&locs);
		return -1;
	}
	pr_json_locs_free(&locs);
	*out = wf;
	return 0;
}

bool
pr_workflow_is_link_shaped(const cJSON *v)
{
	return cJSON_IsArray(v);
}

int
pr_workflow_link_check(const cJSON *v, char *why, size_t whylen)
{
	const cJSON *id, *idx;
	int64_t i;

	if (cJSON_GetArraySize(v) != 2) {
		snprintf(why, whylen, "a link is [\"node id\", output index]; a literal list "
		    "must be wrapped as {\"__value__\": [...]}");
		return -1;
	}
	id = v->child;
	idx = id->next;
	if (!cJSON_IsString(id)) {
		snprintf(why, whylen, "the node id of a link must be a string "
		    "(ComfyUI rejects numeric ids such as [33, 0])");
		return -1;
	}
	if (pr_json_to_i64(idx, &i) < 0 || i < 0) {
		snprintf(why, whylen, "the output index of a link must be a whole number >= 0");
		return -1;
	}
	return 0;
}

cJSON *
pr_workflow_node(const cJSON *wf, const char *id)
{
	return pr_json_get(wf, id);
}

cJSON *
pr_workflow_inputs(const cJSON *wf, const char *id)
{
	return pr_json_get(pr_workflow_node(wf, id), "inputs");
}

const char *
pr_workflow_class(const cJSON *node)
{
	return pr_json_get_string(node, "class_type");
}

const char *
pr_workflow_title(const cJSON *node)
{
	return pr_json_get_string(pr_json_get(node, "_meta"), "title");
}

char *
pr_workflow_input_list(const cJSON *node)
{
	struct pr_buf b = PR_BUF_INIT;
	const cJSON *in = pr_json_get(node, "inputs"), *c;

	for (c = in ? in->child : NULL; c; c = c->next) {
		if (b.len)
			pr_buf_adds(&b, ", ");
		pr_buf_adds(&b, c->string);
	}
	if (!b.len)
		pr_buf_adds(&b, "none");
	return pr_buf_steal(&b);
}
