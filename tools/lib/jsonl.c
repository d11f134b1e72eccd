#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crash.h"
#include "err.h"
#include "jsonl.h"

void
pr_jsonl_open(struct pr_jsonl *r, FILE *fp, const char *name)
{
	memset(r, 0, sizeof *r);
	r->fp = fp;
	r->name = name;
}

#define CHUNK 65536

/* Reads one line (without its newline) into r->buf. 1 read, 0 EOF, -1 error.
 * Own buffering rather than getline: a hostile endless line must hit the
 * size limit instead of memory, and NUL bytes must stay visible. */
static int
read_line(struct pr_jsonl *r)
{
	const char *start, *nl;
	size_t take, n;

	pr_buf_reset(&r->buf);
	if (!r->chunk)
		r->chunk = pr_xmalloc(CHUNK);
	for (;;) {
		if (r->pos == r->len) {
			n = fread(r->chunk, 1, CHUNK, r->fp);
			if (n == 0) {
				if (ferror(r->fp)) {
					snprintf(r->err, sizeof r->err, "%s:%zu: read error: %s",
					    r->name, r->line + 1, strerror(errno));
					r->status = PR_EXIT_INFRA;
					return -1;
				}
				return r->buf.len > 0;
			}
			r->pos = 0;
			r->len = n;
		}
		start = r->chunk + r->pos;
		nl = memchr(start, '\n', r->len - r->pos);
		take = nl ? (size_t)(nl - start) : r->len - r->pos;
		if (r->buf.len + take > PR_JSONL_MAX_LINE) {
			snprintf(r->err, sizeof r->err, "%s:%zu: line longer than %zu MiB",
			    r->name, r->line + 1, PR_JSONL_MAX_LINE >> 20);
			r->status = PR_EXIT_USAGE;
			return -1;
		}
		pr_buf_add(&r->buf, start, take);
		r->pos += take + (nl != NULL);
		if (nl)
			return 1;
	}
}

static int
blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r')
			return 0;
	return 1;
}

int
pr_jsonl_next(struct pr_jsonl *r, cJSON **rec)
{
	struct pr_json_error e;
	cJSON *v;
	int rc;

	*rec = NULL;
	for (;;) {
		rc = read_line(r);
		if (rc <= 0)
			return rc;
		r->line++;
		if (!blank(r->buf.data))
			break;
	}
	if (strlen(r->buf.data) != r->buf.len) {
		snprintf(r->err, sizeof r->err, "%s:%zu: NUL byte in line", r->name, r->line);
		r->status = PR_EXIT_USAGE;
		return -1;
	}
	v = pr_json_parse(r->buf.data, r->buf.len, &e, NULL);
	if (!v) {
		snprintf(r->err, sizeof r->err, "%s:%zu: column %zu: invalid JSON: %s",
		    r->name, r->line, e.col, e.msg);
		r->status = PR_EXIT_USAGE;
		return -1;
	}
	if (!cJSON_IsObject(v)) {
		snprintf(r->err, sizeof r->err, "%s:%zu: expected a JSON object, found %s",
		    r->name, r->line, pr_json_type_name(v));
		r->status = PR_EXIT_USAGE;
		cJSON_Delete(v);
		return -1;
	}
	*rec = v;
	pr_crash_point("read");
	return 1;
}

void
pr_jsonl_close(struct pr_jsonl *r)
{
	pr_buf_free(&r->buf);
	free(r->chunk);
	r->chunk = NULL;
}
