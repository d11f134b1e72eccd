/*
 * fake-runpod: a loopback stand-in for RunPod's REST (/v1/pods/...) and
 * GraphQL (/graphql) APIs as far as stopping, terminating and reading a
 * pod go, with fault injection. See fake-runpod(1).
 *
 * Threads: the main thread accepts; every connection has its own thread
 * doing blocking I/O. Everything shared lives in S under S.lock.
 */
#ifndef FAKE_RUNPOD_H
#define FAKE_RUNPOD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "faultset.h"
#include "pr.h"

/* Request bodies (GraphQL, control) are held in memory up to this. */
#define BODY_MAX (1 << 20)

struct req;
struct pr_httpd_req;

/* What a request is, for counters, the log and where faults strike. */
enum kind {
	K_REST_GET, K_REST_STOP, K_REST_DELETE, K_REST_START, K_GRAPHQL, K_OTHER,
	K_COUNT
};
extern const char *const kind_names[K_COUNT];

enum status { ST_RUNNING, ST_EXITED, ST_TERMINATED };
extern const char *const status_names[3];

struct pod {
	struct pod *next;
	char *id;
	enum status status;     /* as it is now */
	bool pending;           /* a change accepted, not yet applied */
	enum status target;     /* what it becomes ... */
	double due;             /* ... at this monotonic time */
	bool network;           /* has a network volume: no stop */
	double changed;         /* wall time status last changed */
};

struct settings {
	const char *listen;
	int port;
	char *key;              /* NULL: no authentication */
	char *price;            /* costPerHr, as JSON number text */
	double stop_delay;      /* seconds before an accepted change applies */
	bool verbose;
};

struct counters {
	long long requests[K_COUNT];
	long long unauthorized;
	long long faults_fired;
	long long stops;        /* stop requests carried out */
	long long terminations; /* terminate requests carried out */
};

struct state {
	pthread_mutex_t lock;
	struct settings set;
	double t0;              /* monotonic start */
	struct counters n;
	struct pod *pods;       /* in creation order */
	cJSON *log;             /* one object per request */
};

extern struct state S;

/* ---- pods.c (callers hold S.lock unless said otherwise) ---- */

/* Whether s can be a pod id: 1 to 64 of [A-Za-z0-9_-]. */
bool pod_id_ok(const char *s);
/* "RUNNING", "EXITED", "TERMINATED" or -1. */
int status_parse(const char *s);
/* Adds the pod, or resets the one with that id. */
void pod_put(const char *id, enum status st, bool network);
/* The pod with its due change applied, or NULL; terminated ones too. */
struct pod *pod_find(const char *id);
/* The RunPod Pod object. */
cJSON *pod_json(const struct pod *p);
/* The pods as /fake/state lists them. */
cJSON *pods_state(void);
/* Accepts a change: applied now, or after --stop-delay. */
void pod_change(struct pod *p, enum status to);
/* Takes S.lock: parses "ID[:STATUS[:VOLUME]]" (the --pod option). -1 and why. */
int pod_option(const char *arg, char *why, size_t whylen);
void pods_free(void);

/* ---- routes.c ---- */

/* Every request, as the server hands it over (a struct req). */
void route(struct pr_httpd_req *hr);
/* Logs a routed request once: called just before it is answered (or the
 * connection is cut), and at the end of route for the rest. */
void log_request(struct req *r);
/* A JSON error answer {"error": msg} (REST's shape). */
void rest_error(struct req *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- graphql.c ---- */

void route_graphql(struct req *r);

/* ---- faults.c ---- */

enum fault_kind {
	F_STATUS = 1, F_GRAPHQL_ERROR = 2, F_TIMEOUT = 4, F_DROP = 8, F_IGNORE = 16,
};

struct fault {
	enum fault_kind kind;
	int code;               /* status */
	double seconds;         /* timeout; -1 for ever */
	char message[256];      /* graphql_error */
};

/* The armed faults, guarded by S.lock. */
extern struct pr_faultset faults;
/* Arms one fault object or an array of them (all or none); -1 with why. */
int faults_add(const cJSON *spec, char *why, size_t whylen);
/* Takes one shot of the first armed fault of one of kinds (a mask) that
 * strikes request kind k; notes it in the request for the log. */
bool fault_take(struct req *r, unsigned kinds, enum kind k, struct fault *out);
/* The same with S.lock held. */
bool fault_take_locked(struct req *r, unsigned kinds, enum kind k, struct fault *out);

#endif
