/*
 * The rule the pod is stopped by: every final that was produced (status
 * success in the finals) has an upload record that is verified and has
 * the final's size. A failed video produced nothing and needs nothing;
 * a stopped pod with a finished video not in the bucket loses it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shutdown.h"

/*
 * The fields the rule reads must have their types: a final whose status
 * is 5, or that says success but names no file, would otherwise count as
 * no final at all, and the pod would be stopped with it not uploaded.
 */
static void
check_record(const cJSON *rec, const char *name, size_t line, bool finals)
{
	const cJSON *status = pr_json_get(rec, "status"), *size = pr_json_get(rec, "size");
	const cJSON *verified = pr_json_get(rec, "verified");
	int64_t n;

	if (pr_json_get(rec, "path") && !cJSON_IsString(pr_json_get(rec, "path")))
		pr_die(PR_EXIT_USAGE, "%s:%zu: path: expected a string", name, line);
	if (!status && finals)
		pr_die(PR_EXIT_USAGE, "%s:%zu: status: missing (is this pr-combine's output?)",
		    name, line);
	if (status && !cJSON_IsString(status))
		pr_die(PR_EXIT_USAGE, "%s:%zu: status: expected a string", name, line);
	if (cJSON_IsString(status) && strcmp(status->valuestring, "success") == 0 &&
	    !pr_json_get(rec, "path"))
		pr_die(PR_EXIT_USAGE, "%s:%zu: path: missing (a final with status success "
		    "names its file)", name, line);
	if (size && (pr_json_to_i64(size, &n) < 0 || n < 0))
		pr_die(PR_EXIT_USAGE, "%s:%zu: size: expected a whole number of bytes", name,
		    line);
	if (verified && !cJSON_IsBool(verified))
		pr_die(PR_EXIT_USAGE, "%s:%zu: verified: expected true or false", name, line);
}

/* The records of a JSON Lines stream; bad input ends the program. */
static cJSON *
read_all(FILE *fp, const char *name, bool finals)
{
	struct pr_jsonl in;
	cJSON *all = pr_json_array(), *rec;
	int rc;

	pr_jsonl_open(&in, fp, name);
	while ((rc = pr_jsonl_next(&in, &rec)) == 1) {
		check_record(rec, name, in.line, finals);
		cJSON_AddItemToArray(all, rec);
	}
	if (rc < 0)
		pr_die(in.status, "%s", in.err);
	pr_jsonl_close(&in);
	return all;
}

static bool
uploaded(const cJSON *uploads, const char *path, const cJSON *size)
{
	const cJSON *u;
	int64_t want, got;

	cJSON_ArrayForEach(u, uploads) {
		if (!cJSON_IsTrue(pr_json_get(u, "verified")) ||
		    strcmp(pr_json_get_string(u, "path") ? pr_json_get_string(u, "path") : "", path) != 0)
			continue;
		/* A final made again after its upload is not that upload. */
		if (pr_json_to_i64(size, &want) == 0 &&
		    (pr_json_to_i64(pr_json_get(u, "size"), &got) < 0 || got != want))
			continue;
		return true;
	}
	return false;
}

int
check_uploads(const char *finals, char *why, size_t len, int *nfinals)
{
	struct pr_buf missing = PR_BUF_INIT;
	cJSON *want, *have;
	const cJSON *f;
	const char *path, *status;
	FILE *fp;
	int n = 0, lost = 0;

	if (!(fp = fopen(finals, "r")))
		pr_die(errno == ENOENT ? PR_EXIT_USAGE : PR_EXIT_INFRA, "%s: %s", finals,
		    strerror(errno));
	want = read_all(fp, finals, true);
	fclose(fp);
	have = read_all(stdin, "<stdin>", false);
	cJSON_ArrayForEach(f, want) {
		status = pr_json_get_string(f, "status");
		path = pr_json_get_string(f, "path");
		if (!status || strcmp(status, "success") != 0 || !path)
			continue;
		n++;
		if (uploaded(have, path, pr_json_get(f, "size")))
			continue;
		if (lost++ < 3)
			pr_buf_printf(&missing, "%s%s", missing.len ? ", " : "", path);
	}
	if (lost > 3)
		pr_buf_printf(&missing, " and %d more", lost - 3);
	if (lost)
		snprintf(why, len, "%d of %d finals have no verified upload: %s", lost, n,
		    missing.data);
	*nfinals = n;
	pr_buf_free(&missing);
	cJSON_Delete(want);
	cJSON_Delete(have);
	return lost ? 1 : 0;
}
