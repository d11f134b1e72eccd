#include <errno.h>
#include <time.h>

#include "clock.h"

static double
seconds(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double
pr_monotonic(void)
{
	return seconds(CLOCK_MONOTONIC);
}

double
pr_wall(void)
{
	return seconds(CLOCK_REALTIME);
}

void
pr_sleep(double s)
{
	struct timespec ts;

	if (!(s > 0))
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}
