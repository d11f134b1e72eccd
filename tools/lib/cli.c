#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "err.h"
#include "out.h"

_Noreturn void
pr_help_exit(const char *usage, const char *help)
{
	fputs(usage, stdout);
	fputc('\n', stdout);
	fputs(help, stdout);
	pr_stdout_close();
	exit(PR_EXIT_OK);
}

_Noreturn void
pr_version_exit(void)
{
	printf("%s (prompt-runner) %s\n", pr_progname, PR_VERSION);
	pr_stdout_close();
	exit(PR_EXIT_OK);
}

int
pr_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

_Noreturn void
pr_usage_error(const char *usage, const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		fprintf(stderr, "%s: ", pr_progname);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fputs(usage, stderr);
	fprintf(stderr, "Try '%s --help' for more information.\n", pr_progname);
	exit(PR_EXIT_USAGE);
}

double
pr_number_arg(const char *usage, const char *name, const char *arg, double min,
    double max, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	/* !(v >= min) also refuses NaN. */
	if (errno || end == arg || *end || !(v >= min) || v > max)
		pr_usage_error(usage, "%s \"%s\": expected %s from %.15g to %.15g", name, arg,
		    what, min, max);
	return v;
}

double
pr_seconds_arg(const char *usage, const char *name, const char *arg, double min,
    double max)
{
	return pr_number_arg(usage, name, arg, min, max, "seconds");
}
