#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"

static void
grow(struct pr_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1, cap;

	if (need < b->len)
		pr_die(PR_EXIT_INFRA, "buffer size overflow");
	if (need <= b->cap)
		return;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > (size_t)-1 / 2 ? need : cap * 2;
	b->data = pr_xrealloc(b->data, cap);
	b->cap = cap;
}

void
pr_buf_add(struct pr_buf *b, const void *p, size_t n)
{
	grow(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
pr_buf_adds(struct pr_buf *b, const char *s)
{
	pr_buf_add(b, s, strlen(s));
}

void
pr_buf_addc(struct pr_buf *b, char c)
{
	pr_buf_add(b, &c, 1);
}

void
pr_buf_printf(struct pr_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		pr_die(PR_EXIT_INFRA, "formatting failed");
	grow(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void
pr_buf_reset(struct pr_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
pr_buf_free(struct pr_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *
pr_buf_steal(struct pr_buf *b)
{
	char *p;

	if (!b->data)
		grow(b, 0);
	p = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
