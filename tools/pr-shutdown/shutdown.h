/*
 * pr-shutdown: stop (or terminate) this RunPod pod once every final is
 * safely uploaded, or at a watchdog's deadline. See pr-shutdown(1).
 *
 * main.c    options, the watchdog, the record written
 * check.c   every produced final has a verified upload
 * runpod.c  REST, then GraphQL, then runpodctl; the pod's state confirmed
 */
#ifndef PR_SHUTDOWN_H
#define PR_SHUTDOWN_H

#include <stdbool.h>

#include "httpc.h"
#include "pr.h"

/* ---- check.c ---- */

/* Reads the finals at path and the upload records on stdin. 0 when
 * every final that was produced has a verified upload of the same size;
 * else 1 with what is missing in why (one line), or exits 2 on bad input. */
int check_uploads(const char *finals, char *why, size_t len, int *nfinals);

/* ---- runpod.c ---- */

struct pod {
	const char *id;
	const char *key;          /* RUNPOD_API_KEY; NULL: runpodctl only */
	char *rest;               /* RUNPOD_API_URL or https://rest.runpod.io/v1 */
	char *graphql;            /* RUNPOD_GRAPHQL_URL or https://api.runpod.io/graphql */
	struct pr_http *http;
	double confirm_time;      /* seconds to wait for the state to change */
	/* What happened, for the record. */
	const char *via;          /* "rest", "graphql", "runpodctl" */
	char status[32];          /* desiredStatus last seen */
	double cost_per_hr;       /* -1 when unknown */
	bool network_volume;
};

/* Stops (or terminates) the pod and confirms its state. 0, or -1 with
 * every way tried named in err. */
int pod_stop(struct pod *p, bool terminate, char *err, size_t len);
/* The pod's state and price, where the API tells them: true when either
 * API answered (a pod it does not know is TERMINATED), false without a
 * key or an answer. */
bool pod_look(struct pod *p);

#endif
