/*
 * fake-runpod's side of the shared HTTP server (httpd.h): its request and
 * the server's settings (16 KiB heads, small JSON bodies read whole).
 */
#ifndef FAKE_RUNPOD_HTTP_H
#define FAKE_RUNPOD_HTTP_H

#include <stdbool.h>

#include "fake.h"
#include "httpd.h"

/* One request: the server's part, then ours. */
struct req {
	struct pr_httpd_req http;   /* first: the server hands out &r->http */
	enum kind kind;
	char op[72];            /* the operation, for the log */
	char pod[72];           /* the pod named, for the log */
	char faults[64];        /* kinds of faults fired, for the log */
	bool log;               /* to be logged (once, before it is answered) */
	double t;               /* seconds since start when it came */
};

extern const struct pr_httpd http_server;

#endif
