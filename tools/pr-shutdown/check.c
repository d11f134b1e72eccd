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

/* The records of a JSON Lines stream; bad input ends the program. */
static cJSON *
read_all(FILE *fp, const char *name)
{
	struct pr_jsonl in;
	cJSON *all = pr_json_array(), *rec;
	int rc;

	pr_jsonl_open(&in, fp, name);
	while ((rc = pr_jsonl_next(&in, &rec)) == 1) {
		if (pr_json_get(rec, "path") && !cJSON_IsString(pr_json_get(rec, "path")))
			pr_die(PR_EXIT_USAGE, "%s:%zu: path: expected a string", name, in.line);
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
	want = read_all(fp, finals);
	fclose(fp);
	have = read_all(stdin, "<stdin>");
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
