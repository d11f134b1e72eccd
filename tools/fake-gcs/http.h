/*
 * fake-gcs's side of the shared HTTP server (httpd.h): its request, its
 * limits and wording, and GCS's error body.
 */
#ifndef FAKE_GCS_HTTP_H
#define FAKE_GCS_HTTP_H

#include <stdbool.h>

#include "fake.h"
#include "httpd.h"

/* One request: the server's part, then ours. */
struct req {
	struct pr_httpd_req http;   /* first: the server hands out &r->http */
	bool upload;            /* body bytes count as upload_bytes */
	enum kind kind;
	char faults[64];        /* kinds of faults fired, for the log */
};

extern const struct pr_httpd http_server;

/* GCS's error body: {"error":{"code","message","errors":[...]}}. */
void http_error(struct req *r, int code, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void http_fail(struct req *r, const struct fail *f);
/* Same with extra header lines (WWW-Authenticate, Retry-After). */
void http_error_with(struct req *r, int code, const char *reason, const char *msg,
    const char *headers);

#endif
