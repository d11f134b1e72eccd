#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "file.h"
#include "final.h"

/* A final record is a few hundred bytes a segment. */
#define FINAL_MAX ((size_t)16 << 20)

char *
pr_final_path(const char *state, const char *video)
{
	return pr_xasprintf("%s/%s/final.json", state, video);
}

cJSON *
pr_final_read(const char *state, const char *video)
{
	char *path = pr_final_path(state, video);
	struct pr_buf b = PR_BUF_INIT;
	struct pr_json_error jerr;
	const char *st;
	cJSON *rec = NULL;

	if (pr_file_read(path, FINAL_MAX, &b) == 0)
		rec = pr_json_parse(b.data, b.len, &jerr, NULL);
	pr_buf_free(&b);
	free(path);
	if (rec && (!(st = pr_json_get_string(rec, "status")) || strcmp(st, "success") != 0)) {
		cJSON_Delete(rec);
		rec = NULL;
	}
	return rec;
}
