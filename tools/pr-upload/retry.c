/*
 * Google's retry strategy for Cloud Storage: 408, 429, every 5xx and any
 * call that got no answer are worth another try, after an exponential
 * backoff with jitter (so many clients that failed together do not come
 * back together), until the time allowed for one file is spent.
 */
/* random(3) is XSI. */
#define _XOPEN_SOURCE 700
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "upload.h"

#define MAX_DELAY 32.0

void
retry_start(struct retry *r)
{
	static int seeded;

	if (!seeded) {
		srandom((unsigned)time(NULL) ^ (unsigned)getpid());
		seeded = 1;
	}
	r->started = pr_monotonic();
	r->delay = o.retry_delay;
	r->attempts = 1;
}

bool
retry_worth(int rc, long status)
{
	return rc < 0 || status == 408 || status == 429 || (status >= 500 && status <= 599);
}

bool
retry_wait(struct retry *r, const struct pr_http_response *resp)
{
	char v[32], *end;
	double wait = r->delay, after, left;

	/* A server that says when to come back knows better than a guess. */
	if (resp && pr_http_header(resp, "Retry-After", v, sizeof v)) {
		after = strtod(v, &end);
		if (end != v && *end == '\0' && after >= 0 && after <= 3600)
			wait = after;
	}
	/* Jitter: up to a quarter of the wait, at most a second. */
	wait += (double)random() / RAND_MAX * (wait / 4 < 1 ? wait / 4 : 1);
	left = o.max_retry_time - (pr_monotonic() - r->started);
	if (left <= 0 || wait > left)
		return false;
	pr_sleep(wait);
	r->delay = r->delay * 2 > MAX_DELAY ? MAX_DELAY : r->delay * 2;
	r->attempts++;
	return true;
}
