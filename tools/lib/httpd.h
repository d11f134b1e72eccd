/*
 * A small blocking HTTP/1.1 server for the loopback stand-ins (fake-gcs,
 * fake-runpod): one thread per connection, request heads parsed in place
 * in the connection's buffer, bodies streamed to the caller, answers
 * always with Content-Length and keep-alive. One server per process.
 *
 * What differs between stand-ins (limits, the wording of bad-head answers,
 * the error body, logging) comes in through struct pr_httpd, so each keeps
 * its wire behaviour while the framing rules live here once.
 */
#ifndef PR_HTTPD_H
#define PR_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "json.h"

struct pr_httpd_conn;

struct pr_httpd_header {
	const char *name, *value;
};

/* One request. Strings point into the connection's buffer and live until
 * the next request is read. A stand-in's own request struct starts with
 * one of these (see pr_httpd.req_size), so hooks can convert back. */
struct pr_httpd_req {
	struct pr_httpd_conn *c;
	const char *method;
	const char *target;     /* as sent: path and query */
	char *path;             /* up to '?', still percent-encoded */
	const char *query;      /* after '?', or "" */
	struct pr_httpd_header *h;
	size_t nh;
	long long clen;         /* Content-Length; -1 when absent */
	long long got;          /* body bytes read so far */
	bool expect;            /* Expect: 100-continue */
	bool sent_continue;
	bool chunked;           /* Transfer-Encoding present: refused */
	bool close;             /* close the connection after this request */
	int status;             /* answered with; 0: not answered */
};

/* Why a request head is refused; pr_httpd.bad[] words each one. */
enum pr_httpd_bad {
	PR_HTTPD_BAD_LINE,      /* no method, target and version */
	PR_HTTPD_BAD_METHOD,    /* not a token */
	PR_HTTPD_BAD_FORM,      /* a target not starting with '/' */
	PR_HTTPD_BAD_TARGET,    /* a target byte outside 0x21-0x7e */
	PR_HTTPD_BAD_VERSION,   /* neither HTTP/1.1 nor HTTP/1.0 */
	PR_HTTPD_BAD_FIELD,     /* a header line without ':' */
	PR_HTTPD_BAD_FOLDING,   /* a header line starting with a blank */
	PR_HTTPD_BAD_NAME,      /* a header name that is not a token */
	PR_HTTPD_BAD_FIELDS,    /* more than max_headers (431) */
	PR_HTTPD_BAD_VALUE,     /* a lone CR or LF in a value */
	PR_HTTPD_BAD_LENGTH,    /* Content-Length not a number, or over max_length */
	PR_HTTPD_BAD_LENGTHS,   /* Content-Length headers that disagree */
	PR_HTTPD_BAD_NUL,       /* a NUL in the head */
	PR_HTTPD_BAD_SIZE,      /* the head over head_max (431) */
	PR_HTTPD_BAD_COUNT
};

/* A stand-in's server. */
struct pr_httpd {
	size_t head_max;        /* request head bytes at most */
	size_t max_headers;
	unsigned long long max_length;  /* largest Content-Length taken */
	/* An unread body longer than this is not drained before an answer:
	 * the connection closes instead. */
	long long drain_max;
	int max_conns;
	int idle_seconds;       /* an idle connection or a stalled body ends */
	/* Words for each refusal. NULL for TARGET, FOLDING or VALUE: that
	 * check is not made at all; the others are always made and need
	 * words (bad_head gets them). */
	const char *bad[PR_HTTPD_BAD_COUNT];
	/* Connection: close and Expect: 100-continue seen in any such header,
	 * "close" anywhere in the value; else only the first header counts
	 * and "close" must be one of its tokens. */
	bool loose_connection;
	/* Only the common reason phrases: 308, 409, 410, 412, 499 and 501
	 * say "Status". */
	bool few_phrases;
	const char *headers;    /* on every answer: "Server: x\r\n..." */
	const char *json_type;  /* Content-Type of pr_httpd_json */
	int json_indent;        /* pr_json_write's indent */
	size_t req_size;        /* of the stand-in's request struct */
	/* A request whose head is in. */
	void (*route)(struct pr_httpd_req *r);
	/* Answers a refused head (code 400 or 431) in the stand-in's shape. */
	void (*bad_head)(struct pr_httpd_req *r, int code, const char *msg);
	/* Optional: just before an answer goes out, or a hang-up. */
	void (*answering)(struct pr_httpd_req *r);
	/* Optional: n more body bytes were read. */
	void (*body_read)(struct pr_httpd_req *r, long n);
};

/* A listening socket on a loopback address (anything else is refused
 * with EADDRNOTAVAIL); *bound gets the port. From then on SIGINT and
 * SIGTERM only end pr_httpd_serve: set up before the caller announces the
 * port, so a signal sent on seeing it is never lost. -1 and errno. */
int pr_httpd_listen(const char *addr, int port, int *bound);
/* Accepts connections, each served by its own thread, until SIGINT or
 * SIGTERM; then stops every connection, joins their threads and closes
 * lfd. srv must outlive the call. */
void pr_httpd_serve(int lfd, const struct pr_httpd *srv);
/* Serves one connection, fd (a connected stream socket), on the
 * caller's thread until it ends, then closes fd: what each connection
 * thread of pr_httpd_serve does, for tests/fuzz/fuzz-httpd.c. Not while
 * pr_httpd_serve runs. */
void pr_httpd_handle_fd(int fd, const struct pr_httpd *srv);
/* Sleeps (for ever when seconds < 0), waking early when serving stops. */
void pr_httpd_nap(double seconds);
/* Whether serving is stopping. */
bool pr_httpd_stopping(void);

/* First header named name (case-insensitive), or NULL. */
const char *pr_httpd_header(const struct pr_httpd_req *r, const char *name);
/* 1 and a decoded copy in *out ('+' is a space), 0 when absent, -1 when
 * badly encoded. */
int pr_httpd_query(const struct pr_httpd_req *r, const char *key, char **out);

/* Up to n body bytes into dst: the count, 0 at the end of the body, -1
 * when the peer went away (r->close is then set). Sends 100 Continue
 * first when the client asked for it. */
long pr_httpd_body_read(struct pr_httpd_req *r, void *dst, size_t n);
/* Reads and discards the rest of the body; 0, or -1 as above. */
int pr_httpd_drain(struct pr_httpd_req *r);
/* The whole body (at most max bytes) into b: 0, -1 gone, -2 too big. */
int pr_httpd_body_all(struct pr_httpd_req *r, size_t max, struct pr_buf *b);

/* Answers. headers: extra lines, each ending in CRLF, or NULL. The unread
 * part of the body is drained first, or the connection closed after the
 * answer when the client still waits for 100 Continue. */
void pr_httpd_send(struct pr_httpd_req *r, int code, const char *headers,
    const char *ctype, const void *body, size_t len);
void pr_httpd_json(struct pr_httpd_req *r, int code, const char *headers, const cJSON *v);
/* A head announcing len body bytes that the caller then writes. */
int pr_httpd_send_head(struct pr_httpd_req *r, int code, const char *headers,
    const char *ctype, long long len);
int pr_httpd_write(struct pr_httpd_req *r, const void *p, size_t n);
/* Ends the connection without an answer (cut and drop faults). */
void pr_httpd_hang_up(struct pr_httpd_req *r);

#endif
