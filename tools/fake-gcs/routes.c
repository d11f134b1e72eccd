/*
 * Which request is which (paths exactly as GCS's), what every request goes
 * through (counters, the Content-Length rule, the faults that strike at
 * its head, the bearer token), object reads, and the control endpoint
 * under /fake/, which is neither counted nor logged nor authenticated.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake.h"
#include "fakectl.h"
#include "http.h"
#include "urlcode.h"

#define META_TOKEN_PATH "/computeMetadata/v1/instance/service-accounts/default/token"

/* What the path names, decoded. */
struct target {
	char *bucket, *name, *upload_id;
	bool bad;               /* malformed percent-encoding */
	bool wrong_method;
};

static bool
after(const char *s, const char *prefix, const char **rest)
{
	size_t n = strlen(prefix);

	if (strncmp(s, prefix, n) != 0)
		return false;
	*rest = s + n;
	return true;
}

static char *
decode_seg(const char *s, size_t n, struct target *t)
{
	char *v = pr_pct_decode(s, n, false);

	if (!v)
		t->bad = true;
	return v;
}

/* BUCKET/o/NAME (or BUCKET/o when name is NULL) after a prefix. */
static bool
bucket_object(const char *rest, bool want_name, struct target *t)
{
	const char *slash = strchr(rest, '/'), *obj = NULL;

	if (!slash || slash == rest)
		return false;
	if (want_name ? !after(slash, "/o/", &obj) || !*obj : strcmp(slash, "/o") != 0)
		return false;
	t->bucket = decode_seg(rest, (size_t)(slash - rest), t);
	if (want_name)
		t->name = decode_seg(obj, strlen(obj), t);
	return true;
}

static enum kind
classify(struct req *r, struct target *t)
{
	const char *m = r->http.method, *rest;
	char *type = NULL;
	enum kind k = K_OTHER;

	if (after(r->http.path, "/upload/storage/v1/b/", &rest) && bucket_object(rest, false, t)) {
		if (pr_httpd_query(&r->http, "upload_id", &t->upload_id) < 0)
			t->bad = true;
		if (strcmp(m, "POST") == 0 && !t->upload_id) {
			if (pr_httpd_query(&r->http, "uploadType", &type) < 0)
				t->bad = true;
			if (type && strcmp(type, "media") == 0)
				k = K_MEDIA;
			else if (type && strcmp(type, "multipart") == 0)
				k = K_MULTIPART;
			else if (type && strcmp(type, "resumable") == 0)
				k = K_INITIATE;
			free(type);
		} else if (strcmp(m, "PUT") == 0 && t->upload_id) {
			k = r->http.clen > 0 ? K_CHUNK : K_QUERY;
		} else if (strcmp(m, "DELETE") == 0 && t->upload_id) {
			k = K_CANCEL;
		} else {
			t->wrong_method = !t->upload_id || strcmp(m, "POST") != 0;
		}
	} else if (after(r->http.path, "/storage/v1/b/", &rest) && bucket_object(rest, true, t)) {
		char *alt = NULL;

		if (pr_httpd_query(&r->http, "alt", &alt) < 0)
			t->bad = true;
		if (strcmp(m, "GET") == 0)
			k = alt && strcmp(alt, "media") == 0 ? K_DOWNLOAD : K_METADATA;
		else if (strcmp(m, "DELETE") == 0)
			k = K_DELETE;
		else
			t->wrong_method = true;
		free(alt);
	} else if (after(r->http.path, "/download/storage/v1/b/", &rest) &&
	    bucket_object(rest, true, t)) {
		if (strcmp(m, "GET") == 0)
			k = K_DOWNLOAD;
		else
			t->wrong_method = true;
	} else if (strcmp(r->http.path, "/token") == 0) {
		if (strcmp(m, "POST") == 0)
			k = K_TOKEN;
		else
			t->wrong_method = true;
	} else if (strcmp(r->http.path, META_TOKEN_PATH) == 0) {
		if (strcmp(m, "GET") == 0)
			k = K_METADATA_TOKEN;
		else
			t->wrong_method = true;
	}
	return k;
}

/* ---- the bearer token ---- */

static bool
needs_auth(enum kind k)
{
	return k == K_MEDIA || k == K_MULTIPART || k == K_INITIATE || k == K_METADATA ||
	    k == K_DOWNLOAD || k == K_DELETE;
}

static void
unauthorized(struct req *r, bool had_token)
{
	pthread_mutex_lock(&S.lock);
	S.n.unauthorized++;
	pthread_mutex_unlock(&S.lock);
	if (had_token)
		http_error_with(r, 401, "authError", "Invalid Credentials",
		    "WWW-Authenticate: Bearer realm=\"https://accounts.google.com/\", "
		    "error=\"invalid_token\"\r\n");
	else
		http_error_with(r, 401, "required", "Anonymous caller does not have storage "
		    "access to the Google Cloud Storage object. Permission denied on resource "
		    "(or it may not exist).",
		    "WWW-Authenticate: Bearer realm=\"https://accounts.google.com/\"\r\n");
}

static bool
authorized(struct req *r)
{
	const char *h = pr_httpd_header(&r->http, "Authorization"), *tok;
	struct fault f;

	if (!S.set.auth || !needs_auth(r->kind))
		return true;
	if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
		unauthorized(r, false);
		return false;
	}
	for (tok = h + 7; *tok == ' '; tok++)
		;
	if (!token_ok(tok)) {
		unauthorized(r, true);
		return false;
	}
	/* The token "expires" now: revoked, so the client must get a new one. */
	if (fault_take(r, F_UNAUTHORIZED, r->kind, -1, &f)) {
		token_revoke(tok);
		unauthorized(r, true);
		return false;
	}
	return true;
}

/* ---- faults at the request head ---- */

/* true when the fault answered the request (or hung up). */
static bool
head_fault(struct req *r)
{
	char buf[65536], *headers = NULL;
	struct range rg;
	struct fault f;
	long long end = -1, n;
	long k;
	unsigned kinds = F_DROP | F_STALL | F_STATUS;

	if (r->kind == K_CHUNK) {
		if (content_range(r, &rg) >= 0 && rg.last >= 0)
			end = rg.last + 1;
	} else {
		kinds |= F_CUT;
		if (r->kind == K_MEDIA || r->kind == K_MULTIPART)
			end = r->http.clen;
	}
	if (!fault_take(r, kinds, r->kind, end, &f))
		return false;
	switch (f.kind) {
	case F_DROP:
		pr_httpd_hang_up(&r->http);
		return true;
	case F_STALL:
		pr_httpd_nap(f.seconds);
		return false;
	case F_STATUS:
		/* Read and thrown away: nothing of it is kept. */
		if (pr_httpd_drain(&r->http) < 0)
			return true;
		if (f.retry_after >= 0)
			headers = pr_xasprintf("Retry-After: %lld\r\n", f.retry_after);
		http_error_with(r, f.code, f.code == 429 ? "rateLimitExceeded" :
		    f.code >= 500 ? "backendError" : "injected",
		    "Injected fault (fake-gcs): this request was answered with an error.", headers);
		free(headers);
		return true;
	case F_CUT:
		n = r->http.clen < 0 ? 0 : f.bytes >= 0 ? f.bytes :
		    f.after_bytes >= 0 ? f.after_bytes : r->http.clen / 2;
		while (n > 0 && (k = pr_httpd_body_read(&r->http, buf, n < (long long)sizeof buf ?
		    (size_t)n : sizeof buf)) > 0)
			n -= k;
		pr_httpd_hang_up(&r->http);
		return true;
	default:
		return false;
	}
}

/* ---- object reads ---- */

static int
object_checks(const struct target *t, struct fail *f)
{
	const char *why;

	if ((why = bucket_problem(t->bucket))) {
		fail_set(f, 400, "invalid", "Invalid bucket name: '%s' (%s).", t->bucket, why);
		return -1;
	}
	if (!bucket_exists(t->bucket)) {
		fail_set(f, 404, "notFound", "The specified bucket does not exist.");
		return -1;
	}
	if ((why = name_problem(t->name))) {
		fail_set(f, 400, "invalid", "%s", why);
		return -1;
	}
	return 0;
}

static void
get_object(struct req *r, const struct target *t)
{
	const char *gen, *ct;
	char *want = NULL, *dp, *headers, buf[65536];
	long long size, left;
	struct stat st;
	struct fail f;
	cJSON *side = NULL, *res;
	ssize_t k;
	int fd = -1;

	if (object_checks(t, &f) < 0)
		goto fail;
	if (pr_httpd_query(&r->http, "generation", &want) < 0) {
		fail_set(&f, 400, "invalid", "Invalid generation.");
		goto fail;
	}
	/* The record and the file of the same generation: a commit renames
	 * under S.lock, and an open file keeps its bytes. */
	dp = store_data_path(t->bucket, t->name);
	pthread_mutex_lock(&S.lock);
	if ((side = store_get(t->bucket, t->name)) && r->kind == K_DOWNLOAD)
		fd = open(dp, O_RDONLY | O_CLOEXEC);
	pthread_mutex_unlock(&S.lock);
	free(dp);
	gen = side ? pr_json_get_string(side, "generation") : NULL;
	if (!side || !gen || (want && strcmp(want, gen) != 0) ||
	    (r->kind == K_DOWNLOAD && (fd < 0 || fstat(fd, &st) < 0))) {
		fail_set(&f, 404, "notFound", "No such object: %s/%s", t->bucket, t->name);
		goto fail;
	}
	if (r->kind == K_METADATA) {
		res = store_resource(side);
		pr_httpd_json(&r->http, 200, NULL, res);
		cJSON_Delete(res);
		goto out;
	}
	size = (long long)st.st_size;
	ct = pr_json_get_string(side, "contentType");
	headers = pr_xasprintf("x-goog-hash: crc32c=%s,md5=%s\r\nx-goog-generation: %s\r\n"
	    "x-goog-metageneration: 1\r\nx-goog-stored-content-length: %lld\r\n"
	    "x-goog-stored-content-encoding: identity\r\n",
	    pr_json_get_string(side, "crc32c"), pr_json_get_string(side, "md5Hash"), gen, size);
	if (pr_httpd_send_head(&r->http, 200, headers, ct ? ct : "application/octet-stream",
	    size) == 0) {
		for (left = size; left > 0; left -= k) {
			k = read(fd, buf, left < (long long)sizeof buf ? (size_t)left : sizeof buf);
			if (k < 0 && errno == EINTR) {
				k = 0;
				continue;
			}
			if (k <= 0 || pr_httpd_write(&r->http, buf, (size_t)k) < 0) {
				r->http.close = true;    /* the length announced cannot be kept */
				break;
			}
		}
	}
	free(headers);
	goto out;
fail:
	http_fail(r, &f);
out:
	if (fd >= 0)
		close(fd);
	free(want);
	cJSON_Delete(side);
}

static void
delete_object(struct req *r, const struct target *t)
{
	struct fail f;
	char *want = NULL;
	cJSON *side;
	const char *gen;
	bool ok = object_checks(t, &f) == 0;

	/* ifGenerationMatch: only that generation is deleted, as GCS does. */
	if (ok && pr_httpd_query(&r->http, "ifGenerationMatch", &want) < 0) {
		fail_set(&f, 400, "invalid", "Invalid argument for ifGenerationMatch.");
		ok = false;
	}
	if (ok && want) {
		side = store_get(t->bucket, t->name);
		gen = pr_json_get_string(side, "generation");
		if (side && (!gen || strcmp(gen, want) != 0)) {
			fail_set(&f, 412, "conditionNotMet", "At least one of the pre-conditions "
			    "you specified did not hold.");
			ok = false;
		}
		cJSON_Delete(side);
	}
	free(want);
	if (!ok || store_delete(t->bucket, t->name, &f) < 0)
		http_fail(r, &f);
	else
		pr_httpd_send(&r->http, 204, NULL, NULL, NULL, 0);
}

/* ---- the control endpoint ---- */

static cJSON *
state_json(void)
{
	cJSON *s = pr_json_object(), *req = pr_json_object();
	long long sessions = session_count(), objects = store_count();
	int k;

	pthread_mutex_lock(&S.lock);
	for (k = 0; k < K_COUNT; k++)
		pr_json_set_int(req, kind_names[k], S.n.requests[k]);
	cJSON_AddItemToObject(s, "requests", req);
	pr_json_set_int(s, "upload_bytes", S.n.upload_bytes);
	pr_json_set_int(s, "persisted_bytes", S.n.persisted_bytes);
	pr_json_set_int(s, "sessions", sessions);
	pr_json_set_int(s, "objects", objects);
	pr_json_set_int(s, "tokens_issued", S.n.tokens_issued);
	pr_json_set_int(s, "unauthorized", S.n.unauthorized);
	pr_json_set_int(s, "faults_fired", S.n.faults_fired);
	pthread_mutex_unlock(&S.lock);
	return s;
}

/* /fake/ requests and the request log, as every HTTP stand-in keeps them. */
static const struct pr_fakectl ctl = {
	&S.lock, &S.n, sizeof S.n, &S.log, &faults, state_json,
};

static void
control(struct req *r)
{
	static const char *const paths[] = {
		"/fake/state", "/fake/state/clear", "/fake/log", "/fake/log/clear",
		"/fake/faults", "/fake/faults/clear",
	};
	struct pr_buf body = PR_BUF_INIT;
	struct pr_json_error e;
	const char *p = r->http.path;
	cJSON *v;
	char why[256];
	size_t i;
	int rc;

	v = pr_fakectl_answer(&ctl, r->http.method, p);
	if (!v && strcmp(r->http.method, "POST") == 0 && strcmp(p, "/fake/faults") == 0) {
		if ((rc = pr_httpd_body_all(&r->http, SMALL_BODY, &body)) == -1)
			goto out;
		if (rc == -2) {
			http_error(r, 413, "invalid", "Faults: the body is over 1 MiB.");
			goto out;
		}
		if (!(v = pr_json_parse(body.data, body.len, &e, NULL))) {
			http_error(r, 400, "invalid", "Faults: line %zu column %zu: %s",
			    e.line, e.col, e.msg);
			goto out;
		}
		rc = faults_add(v, why, sizeof why);
		cJSON_Delete(v);
		v = NULL;
		if (rc < 0) {
			http_error(r, 400, "invalid", "Faults: %s", why);
			goto out;
		}
		v = pr_faultset_list(&faults);
	} else if (!v) {
		for (i = 0; i < sizeof paths / sizeof paths[0]; i++)
			if (strcmp(p, paths[i]) == 0)
				break;
		if (i < sizeof paths / sizeof paths[0])
			http_error(r, 405, "methodNotAllowed", "Method %s is not allowed on %s.",
			    r->http.method, p);
		else
			http_error(r, 404, "notFound", "Not Found");
		goto out;
	}
	pr_httpd_json(&r->http, 200, NULL, v);
out:
	cJSON_Delete(v);
	pr_buf_free(&body);
}

/* ---- the log ---- */

static void
log_request(struct req *r, double t)
{
	cJSON *e = pr_json_object();
	/* The upload id hidden: the session URI is a credential. */
	char *path = pr_redact_query(r->http.target, "upload_id"), num[32];

	snprintf(num, sizeof num, "%.3f", t);
	cJSON_AddItemToObject(e, "t", pr_json_number_text(num));
	pr_json_set_string(e, "method", r->http.method);
	pr_json_set_string(e, "kind", kind_names[r->kind]);
	pr_json_set_string(e, "path", path);
	cJSON_AddItemToObject(e, "status", r->http.status ? pr_json_int(r->http.status) :
	    pr_json_null());
	pr_json_set_int(e, "body_bytes", r->http.got);
	cJSON_AddItemToObject(e, "fault", r->faults[0] ? pr_json_string(r->faults) : pr_json_null());
	if (S.set.verbose)
		fprintf(stderr, "fake-gcs: %s %s %s -> %s%d (%lld body bytes)%s%s\n", r->http.method,
		    path, kind_names[r->kind], r->http.status ? "" : "no answer ", r->http.status,
		    r->http.got, r->faults[0] ? ", fault " : "", r->faults);
	pr_fakectl_log(&ctl, e);
	free(path);
}

/* ---- every request ---- */

void
route(struct pr_httpd_req *hr)
{
	struct req *r = (struct req *)hr;
	struct target t = { 0 };
	double t0 = pr_monotonic() - S.t0;
	bool body_method;

	r->kind = K_OTHER;
	if (strcmp(r->http.path, "/fake") == 0 || strncmp(r->http.path, "/fake/", 6) == 0) {
		control(r);
		return;
	}
	r->kind = classify(r, &t);
	r->upload = r->kind == K_MEDIA || r->kind == K_MULTIPART || r->kind == K_CHUNK;
	pthread_mutex_lock(&S.lock);
	S.n.requests[r->kind]++;
	pthread_mutex_unlock(&S.lock);

	body_method = strcmp(r->http.method, "POST") == 0 || strcmp(r->http.method, "PUT") == 0;
	if (r->http.chunked || (body_method && r->http.clen < 0)) {
		/* Chunked bodies are not taken: GCS clients always know the size. */
		r->http.close = r->http.close || r->http.chunked;
		http_error(r, 411, "lengthRequired", "Length Required: a Content-Length is needed "
		    "(chunked transfer encoding is not accepted).");
		goto out;
	}
	if (head_fault(r))
		goto out;
	if (t.bad) {
		http_error(r, 400, "invalid", "Invalid percent-encoding in the request URL.");
		goto out;
	}
	if (t.wrong_method) {
		http_error(r, 405, "methodNotAllowed", "Method %s is not allowed here.",
		    r->http.method);
		goto out;
	}
	if (!authorized(r))
		goto out;
	switch (r->kind) {
	case K_MEDIA: route_media(r, t.bucket); break;
	case K_MULTIPART: route_multipart(r, t.bucket); break;
	case K_INITIATE: route_initiate(r, t.bucket); break;
	case K_CHUNK:
	case K_QUERY:
	case K_CANCEL: route_session(r, r->kind, t.upload_id); break;
	case K_METADATA:
	case K_DOWNLOAD: get_object(r, &t); break;
	case K_DELETE: delete_object(r, &t); break;
	case K_TOKEN: route_token(r); break;
	case K_METADATA_TOKEN: route_metadata_token(r); break;
	default:
		if (strncmp(r->http.path, "/upload/storage/v1/b/", 21) == 0 &&
		    strcmp(r->http.method, "POST") == 0)
			http_error(r, 400, "invalid", "Upload requests need uploadType=media, "
			    "multipart or resumable.");
		else
			http_error(r, 404, "notFound", "Not Found");
		break;
	}
out:
	log_request(r, t0);
	free(t.bucket);
	free(t.name);
	free(t.upload_id);
}
