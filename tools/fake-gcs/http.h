/*
 * HTTP/1.1 server side, on a blocking socket: request heads read into the
 * connection's buffer (64 KiB at most), bodies streamed to the caller in
 * pieces, answers always with Content-Length and keep-alive.
 */
#ifndef FAKE_GCS_HTTP_H
#define FAKE_GCS_HTTP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "fake.h"

#define HEAD_MAX 65536
#define MAX_HEADERS 256

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
	char *path;             /* up to '?', still percent-encoded */
	const char *query;      /* after '?', or "" */
	struct header h[MAX_HEADERS];
	size_t nh;
	long long clen;         /* Content-Length; -1 when absent */
	long long got;          /* body bytes read so far */
	bool expect;            /* Expect: 100-continue */
	bool sent_continue;
	bool chunked;           /* Transfer-Encoding present: refused */
	bool close;             /* close the connection after this request */
	bool upload;            /* body bytes count as upload_bytes */
	int status;             /* answered with; 0: not answered */
	enum kind kind;
	char faults[64];        /* kinds of faults fired, for the log */
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
/* %XX decoding ('+' is a space when plus); NULL if malformed or a NUL. */
char *pct_decode(const char *s, size_t n, bool plus);
/* Appends s with everything but unreserved characters as %XX. */
void pct_encode(struct pr_buf *b, const char *s);

/* Up to n body bytes into dst: the count, 0 at the end of the body, -1
 * when the peer went away (r->close is then set). Sends 100 Continue
 * first when the client asked for it. */
long http_body_read(struct req *r, void *dst, size_t n);
/* Reads and discards the rest of the body; 0, or -1 as above. */
int http_drain(struct req *r);
/* The whole body (at most max bytes) into b: 0, -1 gone, -2 too big. */
int http_body_all(struct req *r, size_t max, struct pr_buf *b);

/* Answers. headers: extra lines, each ending in CRLF, or NULL. The unread
 * part of the body is drained first, or the connection closed after the
 * answer when the client still waits for 100 Continue. */
void http_send(struct req *r, int code, const char *headers, const char *ctype,
    const void *body, size_t len);
void http_json(struct req *r, int code, const char *headers, const cJSON *v);
/* GCS's error body: {"error":{"code","message","errors":[...]}}. */
void http_error(struct req *r, int code, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void http_fail(struct req *r, const struct fail *f);
/* Same with extra header lines (WWW-Authenticate, Retry-After). */
void http_error_with(struct req *r, int code, const char *reason, const char *msg,
    const char *headers);
/* A head announcing len body bytes that the caller then writes. */
int http_send_head(struct req *r, int code, const char *headers, const char *ctype,
    long long len);
int http_write(struct req *r, const void *p, size_t n);
/* Ends the connection without an answer (cut and drop faults). */
void http_hang_up(struct req *r);

#endif
