/*
 * An HTTP client for one server (libcurl), for pr-submit and the tools
 * after it. One handle per server keeps its connection alive between
 * calls. Nothing here retries: the caller decides, knowing what a repeat
 * costs. Bodies are bounded; downloads stream to disk, so memory stays
 * flat whatever the size.
 */
#ifndef PR_HTTPC_H
#define PR_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "json.h"

struct pr_http;

/* Start it zeroed (= {0}); each call overwrites it; free it with
 * pr_http_response_free. status keeps what arrived even after -1. */
struct pr_http_response {
	long status;            /* HTTP status; 0 when none arrived */
	struct pr_buf body;     /* the body (not for downloads) */
	struct pr_buf headers;  /* the last answer's header lines (pr_http_header) */
	char err[256];          /* after -1: what went wrong, one line */
	/* After -1: a bound of pr_http_set_bounds (or a call's max) ended it,
	 * not the network: trying again gets the same. */
	bool over_bound;
};

/* base: "http://127.0.0.1:8188" or "https://host:port/prefix", no
 * trailing slash needed. NULL if it is not an http(s) URL. */
struct pr_http *pr_http_new(const char *base);
void pr_http_free(struct pr_http *h);
const char *pr_http_base(const struct pr_http *h);

/* The outcome of a call: 0 when a response arrived (any status: look at
 * r->status), -1 on a transport failure (refused, reset, timed out, body
 * over max) with r->err set. Connection errors never reach the caller as
 * statuses. A POST always goes on a fresh connection and is never sent
 * twice (libcurl would silently resend one whose kept-alive connection
 * died: a prompt queued twice runs twice); a GET may be resent once. */
int pr_http_get(struct pr_http *h, const char *path, size_t max,
    struct pr_http_response *r);
int pr_http_post_json(struct pr_http *h, const char *path, const cJSON *body,
    size_t max, struct pr_http_response *r);
/* HEAD path: r->status says whether it is there; no body. */
int pr_http_head(struct pr_http *h, const char *path,
    struct pr_http_response *r);
/* POST with an empty body (POST /interrupt without a prompt). */
int pr_http_post_empty(struct pr_http *h, const char *path, size_t max,
    struct pr_http_response *r);

/* POST /upload/image as multipart/form-data: the file at local_path as
 * part "image" named name, with "subfolder" and "overwrite" fields. Sends
 * a Content-Length and no "Expect: 100-continue". A '"' or newline in
 * name goes out percent-encoded and ';' cuts it short on aiohttp: use the
 * name the server answers. */
int pr_http_upload(struct pr_http *h, const char *local_path, const char *name,
    const char *subfolder, bool overwrite, struct pr_http_response *r);

/* GET path streamed to a temporary file beside dest, fsynced and renamed
 * to dest only when the whole body (status 200, as long as Content-Length
 * said) arrived. -1 on transport failure or a short body; 0 with
 * r->status != 200 when the server said no (nothing written). *size gets
 * the bytes written. */
int pr_http_download(struct pr_http *h, const char *path, const char *dest,
    int64_t *size, struct pr_http_response *r);

/* Percent-escaped for a query value. The caller frees it. */
char *pr_http_escape(const char *s);

/*
 * A call for APIs the helpers above do not cover (Google Cloud Storage,
 * OAuth token endpoints): any method, extra headers, a body from memory
 * or from a range of a file (streamed, never read whole), and the
 * answer's headers kept for pr_http_header(). Start it zeroed.
 */
struct pr_http_file {
	int fd;
	int64_t offset, len;
};
struct pr_http_call {
	const char *method;            /* GET, POST, PUT, DELETE */
	const char *path;              /* after the base, or a whole URL (url) */
	bool url;                      /* path is a whole http(s) URL */
	/* How messages name the URL when it is a secret (a GCS session URI
	 * authorises whoever holds it); NULL: the URL itself. */
	const char *shown;
	const char *const *headers;    /* "Name: value" lines, NULL-ended */
	const void *data;              /* a body in memory (data_len bytes) */
	size_t data_len;
	const struct pr_http_file *file; /* or a body from a file */
	size_t max;                    /* the answer's body limit */
	/* May go on a kept-alive connection, which libcurl may silently send
	 * again: only for calls a repeat cannot harm. */
	bool idempotent;
};
int pr_http_call(struct pr_http *h, const struct pr_http_call *c,
    struct pr_http_response *r);

/* The value of the answer's header name (any case), trimmed, in buf;
 * NULL when the answer has none (or it does not fit). */
const char *pr_http_header(const struct pr_http_response *r, const char *name,
    char *buf, size_t len);

void pr_http_response_free(struct pr_http_response *r);

/* Timeouts (seconds): connecting, and a call that makes no progress
 * (no byte moved) for that long. Defaults 10 and 60; values <= 0 are
 * ignored (libcurl would read 0 as "no limit"). */
void pr_http_set_timeouts(struct pr_http *h, long connect, long stall);

/* Bounds for a server that lies (default: none): a download whose body
 * would pass max_download bytes fails (refused by its Content-Length, or
 * cut off), a download or upload still going after transfer_secs fails,
 * and so does any other call still going after call_secs: an endless body
 * ends whatever its speed, where the stall timeout only ends silence.
 * 0 leaves a bound off. */
void pr_http_set_bounds(struct pr_http *h, int64_t max_download,
    long transfer_secs, long call_secs);

#endif
