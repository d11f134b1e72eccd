/* Diagnostics and exit status shared by every tool (DESIGN §3). */
#ifndef PR_ERR_H
#define PR_ERR_H

#include <stddef.h>
#include <stdnoreturn.h>

enum pr_exit {
	PR_EXIT_OK = 0,      /* everything done */
	PR_EXIT_FAILED = 1,  /* some items failed; the records say which */
	PR_EXIT_USAGE = 2,   /* usage or bad input; nothing done */
	PR_EXIT_INFRA = 3,   /* infrastructure: disk full, closed pipe, no server */
};

extern const char *pr_progname;

/* Sets the program name used in messages and makes a closed stdout an
 * error we report instead of a silent SIGPIPE death. */
void pr_init(const char *argv0);

/* "prog: message" on stderr. */
void pr_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void pr_die(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Out of memory is an infrastructure failure, never an input error. */
void *pr_xmalloc(size_t n);
void *pr_xcalloc(size_t n, size_t size);
void *pr_xrealloc(void *p, size_t n);
char *pr_xstrdup(const char *s);
char *pr_xstrndup(const char *s, size_t n);
/* A new string made by printf. */
char *pr_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
