#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "crash.h"

void
pr_crash_point(const char *name)
{
	static const char *spec;
	static int read, hits;
	const char *colon;
	size_t len;

	if (!read) {
		spec = getenv("PR_CRASH_AT");
		read = 1;
	}
	if (!spec || !*spec)
		return;
	colon = strchr(spec, ':');
	len = colon ? (size_t)(colon - spec) : strlen(spec);
	if (strlen(name) != len || strncmp(spec, name, len) != 0)
		return;
	if (++hits >= (colon ? atoi(colon + 1) : 1))
		raise(SIGKILL);
}
