/*
 * validate-test: answers one POST /prompt body the way ComfyUI 0.3.64
 * does, with pr_validate_prompt, for tests/validate.bats.
 *
 *   validate-test [--facts FILE] [--files DIR] [--outputs] < request.json
 *   validate-test [--facts FILE] [--files DIR] --object-info
 *
 * Prints the HTTP status on the first line, then the body as the server
 * sends it (json.dumps layout); --outputs adds a third line, the output
 * nodes the server would run (none unless accepted). --facts: node facts
 * (default: the ones compiled in). --files DIR: the server's folders, DIR/models/...,
 * DIR/input, DIR/output, DIR/temp; DIR itself is its working directory
 * and stands for "/" as well, so workflows naming absolute paths such as
 * /workspace/ComfyUI/output/x.mp4 can be satisfied in a scratch folder.
 * Without it no file exists. --object-info prints the /object_info
 * document those facts and files make instead.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "err.h"
#include "file.h"
#include "json.h"
#include "nodes.h"
#include "objectinfo.h"
#include "python.h"
#include "validate.h"

#define MAX_INPUT (64u << 20)

static const char usage[] =
    "usage: validate-test [--facts FILE] [--files DIR] [--outputs] < request.json\n"
    "       validate-test [--facts FILE] [--files DIR] --object-info\n";

static bool
exists(void *ctx, const char *folder, const char *path)
{
	const char *root = ctx;
	struct stat st;
	char *full;
	size_t n;
	bool ok;

	if (!root)
		return false;
	n = strlen(root) + strlen(folder) + strlen(path) + 3;
	full = pr_xmalloc(n);
	/* DIR stands for "/" too: absolute paths are looked up under it */
	if (path[0] == '/' || strcmp(folder, "cwd") == 0)
		snprintf(full, n, "%s/%s", root, path);
	else
		snprintf(full, n, "%s/%s/%s", root, folder, path);
	ok = stat(full, &st) == 0;
	free(full);
	return ok;
}

static void
respond(int status, const cJSON *body)
{
	struct pr_buf b = PR_BUF_INIT;

	pr_python_json(&b, body);
	printf("%d\n%s\n", status, b.data);
	pr_buf_free(&b);
}

static void
server_error(void)
{
	printf("500\n500 Internal Server Error\n\nServer got itself in trouble\n");
}

/* "key in json_data" for a body of any JSON type; -1: TypeError. */
static int
body_has(const cJSON *body, const char *key)
{
	if (cJSON_IsObject(body))
		return pr_json_get(body, key) != NULL;
	if (cJSON_IsString(body))
		return strstr(body->valuestring, key) != NULL;
	if (cJSON_IsArray(body)) {
		for (const cJSON *c = body->child; c; c = c->next)
			if (cJSON_IsString(c) && strcmp(c->valuestring, key) == 0)
				return 1;
		return 0;
	}
	return -1;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "facts", required_argument, NULL, 'f' },
		{ "files", required_argument, NULL, 'd' },
		{ "outputs", no_argument, NULL, 'o' },
		{ "object-info", no_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	const char *facts_path = NULL, *dir = NULL;
	struct pr_buf in = PR_BUF_INIT;
	struct pr_json_error e;
	cJSON *body, *facts_owned = NULL, *info, *resp;
	const cJSON *facts, *number;
	struct pr_validation v;
	struct pr_validate_files files = { exists, NULL };
	bool show_outputs = false, object_info = false, crashed;
	int ch;

	pr_init(argv[0]);
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f': facts_path = optarg; break;
		case 'd': dir = optarg; break;
		case 'o': show_outputs = true; break;
		case 'i': object_info = true; break;
		default: fputs(usage, stderr); return PR_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fputs(usage, stderr);
		return PR_EXIT_USAGE;
	}
	files.ctx = (void *)dir;
	if (facts_path) {
		struct pr_buf fb = PR_BUF_INIT;

		if (pr_file_read(facts_path, MAX_INPUT, &fb) < 0)
			pr_die(PR_EXIT_USAGE, "%s: cannot read", facts_path);
		if (!(facts_owned = pr_json_parse(fb.data, fb.len, &e, NULL)))
			pr_die(PR_EXIT_USAGE, "%s: line %zu: %s", facts_path, e.line, e.msg);
		pr_buf_free(&fb);
		facts = facts_owned;
	} else {
		facts = pr_nodes();
	}

	if (object_info) {
		struct pr_buf ob = PR_BUF_INIT;

		info = pr_object_info(facts, dir);
		pr_python_json(&ob, info);
		printf("%s\n", ob.data);
		pr_buf_free(&ob);
		cJSON_Delete(info);
		cJSON_Delete(facts_owned);
		return 0;
	}
	for (;;) {
		char chunk[65536];
		size_t n = fread(chunk, 1, sizeof chunk, stdin);

		pr_buf_add(&in, chunk, n);
		if (n < sizeof chunk)
			break;
	}
	body = pr_json_parse(in.data ? in.data : "", in.len, &e, NULL);
	pr_buf_free(&in);
	/* request.json() failing, json_data['number'] on a list or str, "in"
	 * on a number: all unhandled exceptions */
	if (!body || body_has(body, "prompt") < 0 ||
	    (!cJSON_IsObject(body) && (body_has(body, "number") || body_has(body, "front") ||
	                               body_has(body, "prompt")))) {
		server_error();
		goto out;
	}
	number = pr_json_get(body, "number");
	if (number && !pr_json_is_number(number) && !cJSON_IsBool(number)) {
		/* float() of a str is not modelled here */
		server_error();
		goto out;
	}
	if (!body_has(body, "prompt")) {
		pr_validation_no_prompt(&v);
		resp = pr_json_object();
		pr_json_set(resp, "error", v.error);
		pr_json_set(resp, "node_errors", v.node_errors);
		v.error = v.node_errors = NULL;
		respond(400, resp);
		cJSON_Delete(resp);
		goto out;
	}

	info = pr_object_info(facts, dir);
	pr_validate_prompt(pr_json_get(body, "prompt"), pr_json_get(body, "partial_execution_targets"),
	    info, facts, &files, &v);
	crashed = v.error && strcmp(pr_json_get_string(v.error, "type"), "server_error") == 0;
	resp = pr_json_object();
	if (crashed) {
		server_error();
	} else if (v.error) {
		pr_json_set(resp, "error", v.error);
		pr_json_set(resp, "node_errors", v.node_errors);
		v.error = v.node_errors = NULL;
		respond(400, resp);
	} else {
		const cJSON *pid = pr_json_get(body, "prompt_id");

		pr_json_set_string(resp, "prompt_id", cJSON_IsString(pid) ? pid->valuestring
		    : "00000000-0000-4000-8000-000000000000");
		/* float(number) when the client sent one, else the counter */
		if (number) {
			struct pr_buf nb = PR_BUF_INIT;

			pr_python_float(&nb, cJSON_IsBool(number) ? (double)cJSON_IsTrue(number)
			    : strtod(number->valuestring, NULL));
			pr_json_set(resp, "number", pr_json_number_text(nb.data));
			pr_buf_free(&nb);
		} else {
			pr_json_set(resp, "number", pr_json_number_text("0"));
		}
		pr_json_set(resp, "node_errors", v.node_errors);
		v.node_errors = NULL;
		respond(200, resp);
	}
	if (show_outputs && !crashed) {
		struct pr_buf ob = PR_BUF_INIT;

		pr_python_json(&ob, v.outputs);
		printf("%s\n", ob.data);
		pr_buf_free(&ob);
	}
	cJSON_Delete(resp);
	pr_validation_free(&v);
	cJSON_Delete(info);
out:
	cJSON_Delete(body);
	cJSON_Delete(facts_owned);
	return 0;
}
