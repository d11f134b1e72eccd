/* Command-line helpers shared by the tools. */
#ifndef PR_CLI_H
#define PR_CLI_H

#include <stdint.h>

#ifndef PR_VERSION
#define PR_VERSION "0.0.0"
#endif

/* --help: the usage and help texts on stdout, then exit 0. */
_Noreturn void pr_help_exit(const char *usage, const char *help);
/* --version: "pr-plan (prompt-runner) 0.1.0" on stdout, then exit 0. */
_Noreturn void pr_version_exit(void);

/* Strict unsigned decimal: digits only, no sign, no overflow. 0 or -1. */
int pr_parse_u64(const char *s, uint64_t *out);

/* A number from min to max (decimals allowed), or a usage error naming
 * the option and what it expected ("a price in USD"). */
double pr_number_arg(const char *usage, const char *name, const char *arg,
    double min, double max, const char *what);
/* The same for a number of seconds. */
double pr_seconds_arg(const char *usage, const char *name, const char *arg,
    double min, double max);
/* Prints the usage line(s) to stderr with a hint, exits with status 2. */
_Noreturn void pr_usage_error(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
