/* A growable byte buffer, always NUL-terminated. The owner frees it. */
#ifndef PR_BUF_H
#define PR_BUF_H

#include <stddef.h>

struct pr_buf {
	char *data;
	size_t len;
	size_t cap;
};

#define PR_BUF_INIT { NULL, 0, 0 }

void pr_buf_add(struct pr_buf *b, const void *p, size_t n);
void pr_buf_adds(struct pr_buf *b, const char *s);
void pr_buf_addc(struct pr_buf *b, char c);
void pr_buf_printf(struct pr_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void pr_buf_reset(struct pr_buf *b);
void pr_buf_free(struct pr_buf *b);
/* Hands the storage to the caller; the buffer is left empty. */
char *pr_buf_steal(struct pr_buf *b);

#endif
