/*
 * The control requests every HTTP stand-in (fake-gcs, fake-runpod)
 * answers alike, under /fake/: its state and counters, its request log
 * and its armed faults, each read with GET and emptied with POST
 * .../clear. Arming faults (POST /fake/faults) stays with each stand-in,
 * which reads the body and words errors in its service's shape.
 */
#ifndef PR_FAKECTL_H
#define PR_FAKECTL_H

#include <pthread.h>
#include <stddef.h>

#include "faultset.h"
#include "json.h"

struct pr_fakectl {
	pthread_mutex_t *lock;  /* guards counters and log */
	void *counters;         /* zeroed by /fake/state/clear */
	size_t counters_size;
	cJSON **log;            /* a JSON array, one object per request */
	struct pr_faultset *faults;
	cJSON *(*state)(void);  /* /fake/state; takes the lock itself */
};

/* The answer to method on path (the caller's), or NULL if it is not one
 * of these requests. */
cJSON *pr_fakectl_answer(const struct pr_fakectl *c, const char *method, const char *path);

/* Adds one request to the log (taking it), or drops it once the log holds
 * PR_FAKECTL_LOG_MAX: a stand-in left running must not grow for ever. */
#define PR_FAKECTL_LOG_MAX 100000
void pr_fakectl_log(const struct pr_fakectl *c, cJSON *entry);

#endif
