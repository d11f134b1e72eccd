#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

const char *pr_progname = "prompt-runner";

void
pr_init(const char *argv0)
{
	const char *slash;

	if (argv0 && *argv0) {
		slash = strrchr(argv0, '/');
		pr_progname = slash ? slash + 1 : argv0;
	}
	/* A reader that goes away must surface as a write error (EPIPE) so the
	 * tool exits with status 3 and says so, rather than dying unreported. */
	signal(SIGPIPE, SIG_IGN);
}

static void vwarn(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static void
vwarn(const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", pr_progname);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
pr_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
}

noreturn void
pr_die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	exit(status);
}

void *
pr_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		pr_die(PR_EXIT_INFRA, "out of memory (%zu bytes)", n);
	return p;
}

void *
pr_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		pr_die(PR_EXIT_INFRA, "out of memory (%zu x %zu bytes)", n, size);
	return p;
}

void *
pr_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		pr_die(PR_EXIT_INFRA, "out of memory (%zu bytes)", n);
	return q;
}

char *
pr_xstrdup(const char *s)
{
	return pr_xstrndup(s, strlen(s));
}

char *
pr_xstrndup(const char *s, size_t n)
{
	char *p = pr_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
pr_xasprintf(const char *fmt, ...)
{
	va_list ap;
	int n;
	char *s;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		pr_die(PR_EXIT_INFRA, "formatting failed");
	s = pr_xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}
