/*
 * HTTP/1.1 server side on a blocking socket, cut down from fake-gcs's
 * http.c to what small JSON requests need: heads read into the
 * connection's buffer (16 KiB at most), bodies read whole (1 MiB at
 * most), answers always with Content-Length and keep-alive.
 */
#ifndef FAKE_RUNPOD_HTTP_H
#define FAKE_RUNPOD_HTTP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "fake.h"

#define HEAD_MAX 16384
#define MAX_HEADERS 100

struct conn {
	int fd;                 /* -1 once closed; main may shutdown() it */
	pthread_t thread;
	bool finished;          /* the thread is done: main joins it */
	struct conn *next;
	size_t len;             /* bytes in buf */
	size_t off;             /* of them, consumed by the current request */
	char buf[HEAD_MAX + 1];
};

struct header {
	const char *name, *value;
};

/* One request. Strings point into the connection's buffer and live until
 * the next request is read. */
struct req {
	struct conn *c;
	const char *method;
	const char *target;     /* as sent: path and query */
	char *path;             /* up to '?' */
	const char *query;      /* after '?', or "" */
	struct header h[MAX_HEADERS];
	size_t nh;
	long long clen;         /* Content-Length; -1 when absent */
	long long got;          /* body bytes read so far */
	bool expect;            /* Expect: 100-continue */
	bool chunked;           /* Transfer-Encoding present: refused */
	bool close;             /* close the connection after this request */
	int status;             /* answered with; 0: not answered */
	enum kind kind;
	char op[72];            /* the operation, for the log */
	char pod[72];           /* the pod named, for the log */
	char faults[64];        /* kinds of faults fired, for the log */
	bool log;               /* to be logged (once, before it is answered) */
	double t;               /* seconds since start when it came */
};

/* 1: a request; 0: the peer closed or went idle; -1: a bad head, already
 * answered (400, 431) or not answerable. */
int http_read_head(struct conn *c, struct req *r);
/* Prepares the buffer for the next request on the connection. */
void http_next(struct req *r);

/* First header named name (case-insensitive), or NULL. */
const char *http_header(const struct req *r, const char *name);
/* 1 and a decoded copy in *out, 0 when absent, -1 when badly encoded. */
int http_query(const struct req *r, const char *key, char **out);

/* The whole body into b: 0, -1 the peer went away, -2 over BODY_MAX. */
int http_body_all(struct req *r, struct pr_buf *b);

/* Answers; an unread body is drained first (or the connection closed). */
void http_send(struct req *r, int code, const char *ctype, const void *body, size_t len);
void http_json(struct req *r, int code, const cJSON *v);
/* Ends the connection without an answer (the drop fault). */
void http_hang_up(struct req *r);

#endif
