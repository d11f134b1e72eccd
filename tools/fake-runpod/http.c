/*
 * What fake-runpod asks of the shared HTTP server: 16 KiB heads, bodies
 * up to BODY_MAX (a longer unread one closes the connection rather than
 * being drained), REST's error body, compact JSON, and every request
 * logged just before it is answered.
 */
#include "http.h"

static void
bad_head(struct pr_httpd_req *r, int code, const char *msg)
{
	rest_error((struct req *)r, code, "%s", msg);
}

static void
answering(struct pr_httpd_req *r)
{
	log_request((struct req *)r);
}

const struct pr_httpd http_server = {
	.head_max = 16384,
	.max_headers = 100,
	.max_length = (unsigned long long)1 << 40,
	.drain_max = BODY_MAX,
	.max_conns = 256,
	.idle_seconds = 60,
	.bad = {
		[PR_HTTPD_BAD_LINE] = "bad request line",
		[PR_HTTPD_BAD_METHOD] = "bad method",
		[PR_HTTPD_BAD_FORM] = "bad request line",
		[PR_HTTPD_BAD_TARGET] = "bad request target",
		[PR_HTTPD_BAD_VERSION] = "unsupported HTTP version",
		[PR_HTTPD_BAD_FIELD] = "bad header line",
		[PR_HTTPD_BAD_NAME] = "bad header name",
		[PR_HTTPD_BAD_FIELDS] = "too many header fields",
		[PR_HTTPD_BAD_LENGTH] = "bad Content-Length",
		[PR_HTTPD_BAD_LENGTHS] = "bad Content-Length",
		[PR_HTTPD_BAD_NUL] = "NUL in request head",
		[PR_HTTPD_BAD_SIZE] = "request head over 16 KiB",
	},
	.loose_connection = true,
	.few_phrases = true,
	.headers = "Server: fake-runpod\r\n",
	.json_type = "application/json",
	.json_indent = 0,
	.req_size = sizeof(struct req),
	.route = route,
	.bad_head = bad_head,
	.answering = answering,
};
