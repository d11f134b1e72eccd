#define _GNU_SOURCE   /* program_invocation_short_name */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crash.h"

/* One line in one write: O_APPEND keeps the lines of the processes of a
 * pipeline whole. A test aid: a failed write is ignored. */
static void
trace(const char *path, const char *name, const char *what)
{
	char line[256];
	int fd, n;

	n = snprintf(line, sizeof line, "%s %ld %s%s\n", program_invocation_short_name,
	    (long)getpid(), name, what);
	if (n < 0 || (size_t)n >= sizeof line)
		return;
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return;
	if (write(fd, line, (size_t)n) < 0) {
		/* nothing to do: the trace is best effort */
	}
	close(fd);
}

/* Whether the spec's [PROG/]NAME part (len bytes) names this point. */
static int
matches(const char *spec, size_t len, const char *name)
{
	const char *slash = memchr(spec, '/', len);

	if (slash) {
		size_t plen = (size_t)(slash - spec);

		if (strlen(program_invocation_short_name) != plen ||
		    strncmp(spec, program_invocation_short_name, plen) != 0)
			return 0;
		len -= plen + 1;
		spec = slash + 1;
	}
	if (len == 1 && *spec == '*')
		return 1;
	return strlen(name) == len && strncmp(spec, name, len) == 0;
}

void
pr_crash_point(const char *name)
{
	static const char *spec, *trace_path;
	static int read, hits;
	const char *colon;
	size_t len;
	int saved = errno;

	if (!read) {
		spec = getenv("PR_CRASH_AT");
		trace_path = getenv("PR_CRASH_TRACE");
		read = 1;
	}
	if (trace_path && *trace_path)
		trace(trace_path, name, "");
	if (spec && *spec) {
		colon = strchr(spec, ':');
		len = colon ? (size_t)(colon - spec) : strlen(spec);
		if (matches(spec, len, name) && ++hits >= (colon ? atoi(colon + 1) : 1)) {
			if (trace_path && *trace_path)
				trace(trace_path, name, " kill");
			raise(SIGKILL);
		}
	}
	errno = saved;
}
