/* Reading JSON Lines: one object per line, errors naming file and line. */
#ifndef PR_JSONL_H
#define PR_JSONL_H

#include <stdio.h>

#include "buf.h"
#include "json.h"

/* A record bigger than this is refused rather than read into memory. */
#define PR_JSONL_MAX_LINE ((size_t)256 << 20)

struct pr_jsonl {
	FILE *fp;
	const char *name;   /* for messages: a path, or "<stdin>" */
	size_t line;        /* line of the record last returned */
	int status;         /* after -1: PR_EXIT_USAGE or PR_EXIT_INFRA */
	char err[320];      /* after -1: "name:line: what is wrong" */
	struct pr_buf buf;
	char *chunk;        /* read-ahead */
	size_t pos, len;
};

void pr_jsonl_open(struct pr_jsonl *r, FILE *fp, const char *name);

/* 1: *rec is the next object (the caller owns it); 0: end of input;
 * -1: bad or unreadable line, see r->err and r->status. Blank lines are
 * skipped. */
int pr_jsonl_next(struct pr_jsonl *r, cJSON **rec);

void pr_jsonl_close(struct pr_jsonl *r);

#endif
