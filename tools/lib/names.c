#include <stdio.h>
#include <string.h>

#include "names.h"

int
pr_video_name_check(const char *name, char *why, size_t whylen)
{
	size_t len = strlen(name);
	const char *p;

	if (len == 0) {
		snprintf(why, whylen, "is empty");
		return -1;
	}
	if (len > PR_VIDEO_NAME_MAX) {
		snprintf(why, whylen, "is longer than %d bytes", PR_VIDEO_NAME_MAX);
		return -1;
	}
	if (name[0] == '.' || name[0] == '-') {
		snprintf(why, whylen, "starts with '%c'", name[0]);
		return -1;
	}
	for (p = name; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')
			continue;
		if (c >= 0x20 && c < 0x7f)
			snprintf(why, whylen, "contains '%c'", c);
		else
			snprintf(why, whylen, "contains byte 0x%02x", c);
		return -1;
	}
	return 0;
}

void
pr_job_name(char *out, size_t outlen, const char *kind, long n)
{
	snprintf(out, outlen, "%s_%03ld", kind, n);
}
