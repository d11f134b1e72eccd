/*
 * The Cloud Storage JSON API calls pr-upload makes (PEERS §4):
 *   GET  /storage/v1/b/B/o/NAME                       object metadata
 *   POST /upload/storage/v1/b/B/o?uploadType=multipart  small files
 *   POST /upload/storage/v1/b/B/o?uploadType=resumable  start a session
 *   PUT  SESSION  Content-Range: bytes A-B/TOTAL        one chunk
 *   PUT  SESSION  Content-Range: bytes *\/TOTAL          what is committed
 * Every write carries ifGenerationMatch, so a write retried after its
 * answer was lost can never replace someone else's object, and the
 * object's crc32c in its metadata, so the server refuses bytes that do
 * not add up to the file.
 */
/* explicit_bzero(3) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crash.h"
#include "upload.h"

#define ANSWER_MAX (1024 * 1024)
/* Sessions that expire under us again and again: give up. */
#define MAX_RESTARTS 3

static bool
ok(long status)
{
	return status == 200 || status == 201;
}

/* One attempt, with the bearer token; a 401 fetches a new token and tries
 * once more (it expired, or was revoked). -1 with err when no token. */
static int
send_call(struct gcs *g, struct pr_http_call *c, struct pr_http_response *r,
    bool *auth_failed, char *err, size_t len)
{
	const char *hdrs[16];
	char line[8192];
	size_t n = 0, i;
	bool renew = false;
	int rc;

	*auth_failed = false;
	for (;;) {
		if (auth_header(g->auth, renew, line, sizeof line, err, len) < 0) {
			*auth_failed = g->auth_failed = true;
			return -1;
		}
		n = 0;
		for (i = 0; c->headers && c->headers[i] && n < 14; i++)
			hdrs[n++] = c->headers[i];
		if (line[0])
			hdrs[n++] = line;
		hdrs[n] = NULL;
		{
			const char *const *saved = c->headers;
			c->headers = hdrs;
			rc = pr_http_call(g->http, c, r);
			c->headers = saved;
		}
		if (rc < 0 || r->status != 401 || renew || !line[0])
			break;
		renew = true;
	}
	explicit_bzero(line, sizeof line);
	if (rc < 0)
		snprintf(err, len, "%s", r->err);
	return rc;
}

/* GCS's own words from an error answer: {"error":{"message": ...}}. */
static void
refused(const struct pr_http_response *r, const char *what, char *err, size_t len)
{
	struct pr_json_error e;
	cJSON *j = pr_json_parse(r->body.data, r->body.len, &e, NULL);
	const char *msg = pr_json_get_string(pr_json_get(j, "error"), "message");

	if (msg)
		snprintf(err, len, "%s: HTTP %ld: %.200s", what, r->status, msg);
	else
		snprintf(err, len, "%s: HTTP %ld", what, r->status);
	cJSON_Delete(j);
}

static int
parse_object(const struct pr_http_response *r, struct object *obj, char *err,
    size_t len)
{
	struct pr_json_error e;
	cJSON *j = pr_json_parse(r->body.data, r->body.len, &e, NULL);
	const char *size = pr_json_get_string(j, "size");
	const char *crc = pr_json_get_string(j, "crc32c");
	const char *gen = pr_json_get_string(j, "generation");
	uint64_t n;

	memset(obj, 0, sizeof *obj);
	if (!size || pr_parse_u64(size, &n) < 0 || n > INT64_MAX || !gen ||
	    strlen(gen) >= sizeof obj->generation) {
		snprintf(err, len, "the server's object record has no usable size or generation");
		cJSON_Delete(j);
		return -1;
	}
	obj->exists = true;
	obj->size = (int64_t)n;
	snprintf(obj->crc32c, sizeof obj->crc32c, "%s", crc && strlen(crc) < sizeof obj->crc32c ? crc : "");
	snprintf(obj->generation, sizeof obj->generation, "%s", gen);
	cJSON_Delete(j);
	return 0;
}

/*
 * Sends c again after no answer, 408, 429 or 5xx, until another answer or
 * the time allowed runs out: 0 with the last answer in r, or -1 with err
 * (no answer at all, or no token). body: bytes each try sends, counted.
 */
static int
send_retrying(struct gcs *g, struct pr_http_call *c, int64_t body,
    struct pr_http_response *r, char *err, size_t len)
{
	struct retry t;
	bool auth_failed;
	int got;

	retry_start(&t);
	for (;;) {
		g->sent += body;
		got = send_call(g, c, r, &auth_failed, err, len);
		if (auth_failed)
			return -1;
		if (!retry_worth(got, r->status) || !retry_wait(&t, r))
			return got;
	}
}

int
gcs_stat(struct gcs *g, const char *bucket, const char *object, struct object *obj,
    char *err, size_t len)
{
	struct pr_http_response r = { 0 };
	char *eb = pr_http_escape(bucket), *eo = pr_http_escape(object);
	char *path = pr_xasprintf("/storage/v1/b/%s/o/%s", eb, eo);
	struct pr_http_call c = { .method = "GET", .path = path, .max = ANSWER_MAX,
	    .idempotent = true };
	int rc = -1;

	memset(obj, 0, sizeof *obj);
	if (send_retrying(g, &c, 0, &r, err, len) < 0)
		;
	else if (r.status == 200)
		rc = parse_object(&r, obj, err, len);
	else if (r.status == 404)
		rc = 0;
	else
		refused(&r, "object metadata", err, len);
	pr_http_response_free(&r);
	free(path);
	free(eo);
	free(eb);
	return rc;
}

static cJSON *
metadata(const struct upload *u)
{
	cJSON *m = pr_json_object();

	pr_json_set_string(m, "name", u->object);
	pr_json_set_string(m, "contentType", u->content_type);
	pr_json_set_string(m, "crc32c", u->crc32c);
	return m;
}

/* A file under the resumable threshold goes in one multipart request,
 * read into memory: the threshold bounds what that costs. */
static int
upload_multipart(struct gcs *g, const struct upload *u, struct object *obj,
    bool *moved, char *err, size_t len)
{
	static const char boundary[] = "prompt-runner-f4c3b00c";
	struct pr_http_response r = { 0 };
	struct pr_buf data = PR_BUF_INIT, body = PR_BUF_INIT;
	char *eb = pr_http_escape(u->bucket), *eo = pr_http_escape(u->object);
	char *path = pr_xasprintf("/upload/storage/v1/b/%s/o?uploadType=multipart&name=%s"
	    "&ifGenerationMatch=%s", eb, eo, u->if_generation);
	char type[128];
	const char *hdrs[] = { type, NULL };
	struct pr_http_call c = { .method = "POST", .path = path, .headers = hdrs,
	    .max = ANSWER_MAX };
	cJSON *m = metadata(u);
	int rc = -1;

	snprintf(type, sizeof type, "Content-Type: multipart/related; boundary=%s", boundary);
	if (pr_file_read(u->local, (size_t)o.threshold + 1, &data) < 0) {
		snprintf(err, len, "%s: %s", u->local, strerror(errno));
		goto out;
	}
	if ((int64_t)data.len != u->id.size) {
		snprintf(err, len, "%s: changed while uploading", u->local);
		goto out;
	}
	pr_buf_printf(&body, "--%s\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n",
	    boundary);
	pr_json_write(&body, m, 0);
	pr_buf_printf(&body, "\r\n--%s\r\nContent-Type: %s\r\n\r\n", boundary, u->content_type);
	pr_buf_add(&body, data.data, data.len);
	pr_buf_printf(&body, "\r\n--%s--\r\n", boundary);
	c.data = body.data;
	c.data_len = body.len;
	/* A retry after a lost answer cannot write twice: ifGenerationMatch. */
	if (send_retrying(g, &c, u->id.size, &r, err, len) < 0)
		goto out;
	if (ok(r.status)) {
		rc = parse_object(&r, obj, err, len);
	} else {
		*moved = r.status == 412;
		refused(&r, "upload", err, len);
	}
out:
	cJSON_Delete(m);
	pr_http_response_free(&r);
	pr_buf_free(&body);
	pr_buf_free(&data);
	free(path);
	free(eo);
	free(eb);
	return rc;
}

/* A new resumable session: its URI in *uri, or -1. */
static int
initiate(struct gcs *g, const struct upload *u, char **uri, bool *moved, char *err,
    size_t len)
{
	struct pr_http_response r = { 0 };
	char *eb = pr_http_escape(u->bucket), *eo = pr_http_escape(u->object);
	char *path = pr_xasprintf("/upload/storage/v1/b/%s/o?uploadType=resumable&name=%s"
	    "&ifGenerationMatch=%s", eb, eo, u->if_generation);
	char xtype[160], xlen[64], where[4096];
	const char *hdrs[] = { "Content-Type: application/json; charset=UTF-8", xtype,
	    xlen, NULL };
	struct pr_http_call c = { .method = "POST", .path = path, .headers = hdrs,
	    .max = ANSWER_MAX };
	struct pr_buf body = PR_BUF_INIT;
	cJSON *m = metadata(u);
	int rc = -1;

	snprintf(xtype, sizeof xtype, "X-Upload-Content-Type: %s", u->content_type);
	snprintf(xlen, sizeof xlen, "X-Upload-Content-Length: %lld", (long long)u->id.size);
	pr_json_write(&body, m, 0);
	c.data = body.data;
	c.data_len = body.len;
	if (send_retrying(g, &c, 0, &r, err, len) < 0)
		goto out;
	if (r.status != 200) {
		*moved = r.status == 412;
		refused(&r, "starting the upload", err, len);
	} else if (!pr_http_header(&r, "Location", where, sizeof where)) {
		snprintf(err, len, "starting the upload: the server gave no session (no Location)");
	} else {
		*uri = pr_xstrdup(where);
		explicit_bzero(where, sizeof where);
		rc = 0;
	}
out:
	cJSON_Delete(m);
	pr_buf_free(&body);
	pr_http_response_free(&r);
	free(path);
	free(eo);
	free(eb);
	return rc;
}

/* "Range: bytes=0-N" -> N + 1; no Range -> 0 (nothing kept). */
static int
committed_offset(const struct pr_http_response *r, int64_t *off)
{
	char v[96];
	long long a, b;
	char tail;

	if (!pr_http_header(r, "Range", v, sizeof v)) {
		*off = 0;
		return 0;
	}
	if (sscanf(v, "bytes=%lld-%lld%c", &a, &b, &tail) != 2 || a != 0 || b < -1)
		return -1;
	*off = b + 1;
	return 0;
}

enum step { STEP_DONE, STEP_MORE, STEP_RETRY, STEP_EXPIRED, STEP_FAILED };

/* What a session answer means: the object (done), how far the server got
 * (more), come back later (retry), start over (expired), or give up. */
static enum step
judge(const struct upload *u, int got, bool auth_failed,
    const struct pr_http_response *r, int64_t *committed, struct object *obj,
    bool *moved, char *err, size_t len)
{
	if (auth_failed)
		return STEP_FAILED;
	if (got == 0 && ok(r->status))
		return parse_object(r, obj, err, len) == 0 ? STEP_DONE : STEP_FAILED;
	if (got == 0 && r->status == 308) {
		if (committed_offset(r, committed) < 0 || *committed > u->id.size) {
			snprintf(err, len, "the server's Range answer makes no sense");
			return STEP_FAILED;
		}
		return STEP_MORE;
	}
	if (got == 0 && (r->status == 404 || r->status == 410))
		return STEP_EXPIRED;
	if (got == 0 && r->status == 412) {
		*moved = true;
		refused(r, "upload", err, len);
		return STEP_FAILED;
	}
	if (retry_worth(got, r->status))
		return STEP_RETRY;
	refused(r, "upload", err, len);
	return STEP_FAILED;
}

static int
upload_resumable(struct gcs *g, const struct upload *u, struct object *obj,
    bool *moved, char *err, size_t len)
{
	struct pr_http_response r = { 0 };
	struct pr_http_file part = { .fd = -1 };
	struct pr_http_call c = { .method = "PUT", .url = true, .max = ANSWER_MAX,
	    .idempotent = true, .file = &part };
	char range[96], shown[160];
	const char *hdrs[] = { range, NULL };
	char *uri;
	int64_t committed = 0, before;
	struct retry t;
	enum step s;
	bool auth_failed, query, resume_later = false;
	int restarts = 0, rc = -1, got;

	/* Messages name the object: the URI is a credential. */
	snprintf(shown, sizeof shown, "the upload session of gs://%.60s/%.60s", u->bucket, u->object);
	c.shown = shown;
	c.headers = hdrs;
	if ((part.fd = open(u->local, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, len, "%s: %s", u->local, strerror(errno));
		return -1;
	}
	/* A session left by a killed run: ask how far it got. */
	uri = session_load(u->bucket, u->object, &u->id);
	query = uri != NULL;
	retry_start(&t);
	for (;;) {
		if (!uri) {
			if (restarts++ > MAX_RESTARTS) {
				snprintf(err, len, "the upload session expired %d times", MAX_RESTARTS);
				break;
			}
			if (initiate(g, u, &uri, moved, err, len) < 0)
				break;
			if (session_save(u->bucket, u->object, &u->id, uri) < 0)
				pr_warn("%s/upload-sessions: %s (a kill now would start %s over)",
				    o.state, strerror(errno), u->local);
			committed = 0;
			query = false;
		}
		c.path = uri;
		if (query) {
			snprintf(range, sizeof range, "Content-Range: bytes */%lld", (long long)u->id.size);
			part.offset = part.len = 0;
			c.file = NULL;
		} else {
			part.offset = committed;
			part.len = u->id.size - committed < o.chunk ? u->id.size - committed : o.chunk;
			snprintf(range, sizeof range, "Content-Range: bytes %lld-%lld/%lld",
			    (long long)committed, (long long)(committed + part.len - 1),
			    (long long)u->id.size);
			c.file = &part;
			g->sent += part.len;
		}
		before = committed;
		got = send_call(g, &c, &r, &auth_failed, err, len);
		pr_crash_point("sent");
		s = judge(u, got, auth_failed, &r, &committed, obj, moved, err, len);
		if (s == STEP_DONE) {
			rc = 0;
			break;
		}
		if (s == STEP_FAILED) {
			resume_later = auth_failed;
			break;
		}
		if (s == STEP_EXPIRED) {
			session_forget(u->bucket, u->object);
			free(uri);
			uri = NULL;
			continue;
		}
		if (s == STEP_MORE) {
			/* Progress starts the backoff afresh. A chunk the server
			 * took nothing of is retried like a failure; after a
			 * query (already waited for) the chunk goes at once. */
			bool was_query = query;
			query = false;
			if (committed > before)
				retry_start(&t);
			else if (!was_query && !retry_wait(&t, &r)) {
				snprintf(err, len, "the server keeps no data (stuck at byte %lld)",
				    (long long)committed);
				resume_later = true;
				break;
			}
			continue;
		}
		/* No answer, or one to come back for: wait, then ask the
		 * server what it kept before sending more. */
		if (!retry_wait(&t, &r)) {
			resume_later = true;
			if (got < 0)
				snprintf(err, len, "%s (gave up after %d tries)", r.err, t.attempts);
			else
				refused(&r, "upload", err, len);
			break;
		}
		query = true;
	}
	/* A session is kept for a rerun only when the network was what
	 * stopped us; after a refusal it has nothing to offer. */
	if (!resume_later)
		session_forget(u->bucket, u->object);
	if (uri)
		explicit_bzero(uri, strlen(uri));
	free(uri);
	close(part.fd);
	pr_http_response_free(&r);
	return rc;
}

int
gcs_upload(struct gcs *g, const struct upload *u, struct object *obj, bool *moved,
    char *err, size_t len)
{
	*moved = false;
	memset(obj, 0, sizeof *obj);
	if (u->id.size < o.threshold)
		return upload_multipart(g, u, obj, moved, err, len);
	return upload_resumable(g, u, obj, moved, err, len);
}

int
gcs_delete(struct gcs *g, const char *bucket, const char *object,
    const char *generation, char *err, size_t len)
{
	struct pr_http_response r = { 0 };
	char *eb = pr_http_escape(bucket), *eo = pr_http_escape(object);
	char *path = pr_xasprintf("/storage/v1/b/%s/o/%s?ifGenerationMatch=%s", eb, eo,
	    generation);
	struct pr_http_call c = { .method = "DELETE", .path = path, .max = ANSWER_MAX,
	    .idempotent = true };
	int rc = -1;

	if (send_retrying(g, &c, 0, &r, err, len) < 0)
		;
	else if (r.status == 200 || r.status == 204 || r.status == 404)
		rc = 0;
	else
		refused(&r, "deleting the object", err, len);
	pr_http_response_free(&r);
	free(path);
	free(eo);
	free(eb);
	return rc;
}
