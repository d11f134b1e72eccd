/*
 * The JSON Lines reader: records come out one by one until the end or the
 * first bad line, whose error names its line; it never reads past the
 * input and never exits.
 */
#define _GNU_SOURCE     /* fmemopen */
#include <string.h>

#include "pr.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pr_jsonl in;
	cJSON *rec;
	FILE *fp;
	int rc;
	size_t n = 0;

	if (size == 0 || !(fp = fmemopen((void *)data, size, "r")))
		return 0;
	pr_jsonl_open(&in, fp, "fuzz");
	while ((rc = pr_jsonl_next(&in, &rec)) == 1) {
		check(rec != NULL);
		cJSON_Delete(rec);
		n++;
	}
	if (rc < 0)
		check(in.err[0] != '\0');
	check(n <= size);
	pr_jsonl_close(&in);
	fclose(fp);
	return 0;
}
