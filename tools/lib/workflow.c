#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "file.h"
#include "workflow.h"

#define WORKFLOW_MAX ((size_t)256 << 20)

/* The member of wf that holds an API workflow a file wraps: a saved POST
 * /prompt body ("prompt") or the original tool's dry-run files
 * ("workflow"). NULL when there is none. */
static const char *
wrapper(const cJSON *wf)
{
	static const char *const keys[] = { "prompt", "workflow", NULL };
	const char *const *k;
	const cJSON *w;

	for (k = keys; *k; k++) {
		w = pr_json_get(wf, *k);
		if (cJSON_IsObject(w) && w->child && cJSON_IsObject(w->child) &&
		    pr_json_get(w->child, "class_type"))
			return *k;
	}
	return NULL;
}

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
		const char *inside;

		if ((!cJSON_IsObject(node) || !ct) && (inside = wrapper(wf))) {
			snprintf(err, errlen, "%s: the API workflow is inside \"%s\" (a saved "
			    "request or dry-run file?); save that member alone, for example "
			    "with jq .%s", path, inside, inside);
			return -1;
		}
		if (!cJSON_IsObject(node)) {
			snprintf(err, errlen, "%s: node \"%s\": expected an object, found %s",
			    path, node->string, pr_json_type_name(node));
			return -1;
		}
		if (!ct) {
			snprintf(err, errlen, "%s:%zu: node \"%s\" has no class_type "
			    "(is this an API-format workflow?)", path, line, node->string);
			return -1;
		}
		if (!cJSON_IsString(ct) || !*ct->valuestring) {
			snprintf(err, errlen, "%s:%zu: node \"%s\": class_type must be the name "
			    "of a node class, found %s%s", path, line, node->string,
			    cJSON_IsString(ct) ? "an empty " : "", pr_json_type_name(ct));
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

static int
cmp_node_ids(const void *a, const void *b)
{
	return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

const cJSON **
pr_workflow_sorted(const cJSON *wf, size_t *n)
{
	const cJSON **nodes, *c;
	size_t i = 0;

	*n = 0;
	for (c = wf->child; c; c = c->next)
		(*n)++;
	nodes = pr_xcalloc(*n + 1, sizeof *nodes);
	for (c = wf->child; c; c = c->next)
		nodes[i++] = c;
	qsort(nodes, *n, sizeof *nodes, cmp_node_ids);
	return nodes;
}

/* bsearch's key is the id itself. */
static int
cmp_id_node(const void *id, const void *node)
{
	return strcmp(id, (*(const cJSON *const *)node)->string);
}

size_t
pr_workflow_find(const cJSON **sorted, size_t n, const char *id)
{
	const cJSON **found = bsearch(id, sorted, n, sizeof *sorted, cmp_id_node);

	return found ? (size_t)(found - sorted) : n;
}

/* The index in nodes (sorted by id) of the node a link names, or n. */
static size_t
link_target(const cJSON *v, const cJSON **nodes, size_t n)
{
	if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !cJSON_IsString(v->child))
		return n;
	return pr_workflow_find(nodes, n, v->child->valuestring);
}

static const cJSON *
first_input(const cJSON *node)
{
	const cJSON *in = pr_json_get(node, "inputs");

	return in ? in->child : NULL;
}

/* t feeds cur, which feeds the node that led to it, and so on back to t:
 * "t -> cur -> ... -> t", a long one cut in the middle. */
static void
cycle_text(const cJSON **nodes, const size_t *from, size_t t, size_t cur, char *why,
    size_t whylen)
{
	struct pr_buf b = PR_BUF_INIT;
	size_t i, len = 1, k = 1;

	for (i = cur; i != t; i = from[i])
		len++;
	pr_buf_adds(&b, nodes[t]->string);
	for (i = cur; ; i = from[i], k++) {
		if (len <= 8 || k <= 3 || k >= len - 1)
			pr_buf_printf(&b, " -> %s", nodes[i]->string);
		else if (k == 4)
			pr_buf_adds(&b, " -> ...");
		if (i == t)
			break;
	}
	if (len > 8)
		pr_buf_printf(&b, ", %zu nodes", len);
	snprintf(why, whylen, "%s", b.data);
	pr_buf_free(&b);
}

/*
 * Depth-first along the links, without recursion: a workflow of 200 000
 * nodes in a chain must not take the stack. A node met again while it is
 * still on the path closes a cycle.
 */
int
pr_workflow_find_cycle(const cJSON *wf, char *why, size_t whylen)
{
	enum { NEW, ON_PATH, DONE };
	const cJSON **nodes, **next;
	size_t n, s, cur, t, *from;
	unsigned char *state;
	int rc = 0;

	nodes = pr_workflow_sorted(wf, &n);
	next = pr_xcalloc(n + 1, sizeof *next);
	from = pr_xcalloc(n + 1, sizeof *from);
	state = pr_xcalloc(n + 1, 1);
	for (s = 0; s < n && rc == 0; s++) {
		if (state[s] != NEW)
			continue;
		state[s] = ON_PATH;
		next[s] = first_input(nodes[s]);
		from[s] = n;
		for (cur = s; cur < n && rc == 0;) {
			if (!next[cur]) {
				state[cur] = DONE;
				cur = from[cur];
				continue;
			}
			t = link_target(next[cur], nodes, n);
			next[cur] = next[cur]->next;
			if (t == n || state[t] == DONE)
				continue;
			if (state[t] == ON_PATH) {
				cycle_text(nodes, from, t, cur, why, whylen);
				rc = -1;
				break;
			}
			state[t] = ON_PATH;
			next[t] = first_input(nodes[t]);
			from[t] = cur;
			cur = t;
		}
	}
	free(nodes);
	free(next);
	free(from);
	free(state);
	return rc;
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
