/*
 * What fake-gcs asks of the shared HTTP server: a 64 KiB head, bodies of
 * any size streamed, GCS's wording and error body, and upload bytes
 * counted as they are read.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>

#include "http.h"

static void
bad_head(struct pr_httpd_req *r, int code, const char *msg)
{
	http_error((struct req *)r, code, "invalid", "%s", msg);
}

static void
body_read(struct pr_httpd_req *hr, long n)
{
	struct req *r = (struct req *)hr;

	if (r->upload) {
		pthread_mutex_lock(&S.lock);
		S.n.upload_bytes += n;
		pthread_mutex_unlock(&S.lock);
	}
}

const struct pr_httpd http_server = {
	.head_max = 65536,
	.max_headers = 256,
	.max_length = (unsigned long long)1 << 50,
	.drain_max = LLONG_MAX,
	.max_conns = 512,
	.idle_seconds = 60,
	.bad = {
		[PR_HTTPD_BAD_LINE] = "Bad request line",
		[PR_HTTPD_BAD_METHOD] = "Bad method",
		[PR_HTTPD_BAD_FORM] = "Only origin-form request targets are served",
		[PR_HTTPD_BAD_VERSION] = "Unsupported HTTP version",
		[PR_HTTPD_BAD_FIELD] = "Bad header line",
		[PR_HTTPD_BAD_FOLDING] = "Obsolete line folding is not accepted",
		[PR_HTTPD_BAD_NAME] = "Bad header name",
		[PR_HTTPD_BAD_FIELDS] = "Too many header fields",
		[PR_HTTPD_BAD_VALUE] = "Bad header value",
		[PR_HTTPD_BAD_LENGTH] = "Bad Content-Length",
		[PR_HTTPD_BAD_LENGTHS] = "Conflicting Content-Length headers",
		[PR_HTTPD_BAD_NUL] = "NUL in request head",
		[PR_HTTPD_BAD_SIZE] = "Request header section over 64 KiB",
	},
	.headers = "Server: fake-gcs\r\n"
	    "Cache-Control: no-cache, no-store, max-age=0, must-revalidate\r\n",
	.json_type = "application/json; charset=UTF-8",
	.json_indent = 2,
	.req_size = sizeof(struct req),
	.route = route,
	.bad_head = bad_head,
	.body_read = body_read,
};

void
http_error_with(struct req *r, int code, const char *reason, const char *msg,
    const char *headers)
{
	cJSON *top = pr_json_object(), *e = pr_json_object(), *list = pr_json_array(),
	    *one = pr_json_object();

	pr_json_set_string(one, "message", msg);
	pr_json_set_string(one, "domain", "global");
	pr_json_set_string(one, "reason", reason);
	cJSON_AddItemToArray(list, one);
	pr_json_set_int(e, "code", code);
	pr_json_set_string(e, "message", msg);
	cJSON_AddItemToObject(e, "errors", list);
	cJSON_AddItemToObject(top, "error", e);
	pr_httpd_json(&r->http, code, headers, top);
	cJSON_Delete(top);
}

void
http_error(struct req *r, int code, const char *reason, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	http_error_with(r, code, reason, msg, NULL);
}

void
http_fail(struct req *r, const struct fail *f)
{
	http_error_with(r, f->code, f->reason, f->msg, NULL);
}
