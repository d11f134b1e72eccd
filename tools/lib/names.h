/* Names that end up in file paths, job ids and server-side file names. */
#ifndef PR_NAMES_H
#define PR_NAMES_H

#include <stddef.h>

#define PR_VIDEO_NAME_MAX 100

/* 0 when name is a valid video name (letters, digits, '.', '_', '-'; not
 * starting with '.' or '-'; 1..100 bytes). Otherwise -1 and a reason such
 * as "contains ' '" in why. */
int pr_video_name_check(const char *name, char *why, size_t whylen);

/* "job_007" for n = 7: the job's name within its video (job ids are
 * "<video>/<name>"). kind is "job" or "combine". */
void pr_job_name(char *out, size_t outlen, const char *kind, long n);

#endif
