/*
 * The three upload kinds of POST /upload/storage/v1/b/BUCKET/o: media (the
 * body is the object), multipart (JSON metadata, then the bytes, streamed
 * to disk through the boundary scanner), resumable initiation (a session;
 * session.c takes its PUTs), and finalize(), where every kind ends.
 */
#define _GNU_SOURCE   /* memmem */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fake.h"
#include "http.h"
#include "urlcode.h"

/* ---- what every upload checks first ---- */

static int
check_bucket(const char *bucket, struct fail *f)
{
	const char *why;

	if ((why = bucket_problem(bucket))) {
		fail_set(f, 400, "invalid", "Invalid bucket name: '%s' (%s).", bucket, why);
		return -1;
	}
	if (!bucket_exists(bucket)) {
		fail_set(f, 404, "notFound", "The specified bucket does not exist.");
		return -1;
	}
	return 0;
}

static int
check_name(const char *name, struct fail *f)
{
	const char *why;

	if (!name) {
		fail_set(f, 400, "required", "Required");
		return -1;
	}
	if ((why = name_problem(name))) {
		fail_set(f, 400, "invalid", "%s", why);
		return -1;
	}
	return 0;
}

/* ifGenerationMatch from the query into o. */
static int
precondition(struct req *r, struct objspec *o, struct fail *f)
{
	char *v = NULL;
	uint64_t g;
	int rc;

	if ((rc = pr_httpd_query(&r->http, "ifGenerationMatch", &v)) == 0)
		return 0;
	if (rc < 0 || pr_parse_u64(v, &g) < 0 || g > INT64_MAX) {
		fail_set(f, 400, "invalid", "Invalid argument for ifGenerationMatch.");
		free(v);
		return -1;
	}
	o->has_cond = true;
	o->if_gen = (int64_t)g;
	free(v);
	return 0;
}

/* The query's name= into o->name (it wins over the metadata's). */
static int
query_name(struct req *r, struct objspec *o, struct fail *f)
{
	char *v = NULL;
	int rc = pr_httpd_query(&r->http, "name", &v);

	if (rc < 0) {
		fail_set(f, 400, "invalid", "Invalid percent-encoding in the name parameter.");
		return -1;
	}
	if (rc > 0) {
		free(o->name);
		o->name = v;
	}
	return 0;
}

int
parse_objmeta(const char *text, size_t len, struct objspec *o, struct fail *f)
{
	struct pr_json_error e;
	const cJSON *v, *m;
	cJSON *j;
	size_t i;
	static const char *const strings[] = { "name", "contentType", "crc32c", "md5Hash" };
	char **dst[] = { &o->name, &o->content_type, &o->want_crc32c, &o->want_md5 };

	if (!(j = pr_json_parse(text, len, &e, NULL))) {
		fail_set(f, 400, "parseError", "Parse Error: %s at line %zu column %zu.",
		    e.msg, e.line, e.col);
		return -1;
	}
	if (!cJSON_IsObject(j)) {
		fail_set(f, 400, "invalid", "The object metadata must be a JSON object.");
		goto bad;
	}
	for (i = 0; i < sizeof strings / sizeof strings[0]; i++) {
		if (!(v = pr_json_get(j, strings[i])))
			continue;
		if (!cJSON_IsString(v)) {
			fail_set(f, 400, "invalid", "Invalid value for %s: a string is expected.",
			    strings[i]);
			goto bad;
		}
		free(*dst[i]);
		*dst[i] = pr_xstrdup(v->valuestring);
	}
	if ((m = pr_json_get(j, "metadata")) && !cJSON_IsNull(m)) {
		if (!cJSON_IsObject(m)) {
			fail_set(f, 400, "invalid", "Invalid value for metadata: an object is expected.");
			goto bad;
		}
		cJSON_ArrayForEach(v, m) {
			if (!cJSON_IsString(v)) {
				fail_set(f, 400, "invalid", "Invalid value for metadata.%s: a string is expected.",
				    v->string);
				goto bad;
			}
		}
		cJSON_Delete(o->metadata);
		o->metadata = pr_json_copy(m);
	}
	cJSON_Delete(j);
	return 0;
bad:
	cJSON_Delete(j);
	return -1;
}

/* X-Goog-Hash: crc32c=...,md5=... on the request that completes the data. */
static void
goog_hash(struct req *r, char **crc, char **md5)
{
	const char *h = pr_httpd_header(&r->http, "X-Goog-Hash"), *p, *end;
	size_t n;

	*crc = *md5 = NULL;
	for (p = h; p && *p; p = *end ? end + 1 : end) {
		while (*p == ' ')
			p++;
		end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		n = (size_t)(end - p);
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n > 7 && strncasecmp(p, "crc32c=", 7) == 0 && !*crc)
			*crc = pr_xstrndup(p + 7, n - 7);
		else if (n > 4 && strncasecmp(p, "md5=", 4) == 0 && !*md5)
			*md5 = pr_xstrndup(p + 4, n - 4);
	}
}

int
finalize(struct req *r, const char *tmp, const struct objspec *o, uint32_t crc,
    const unsigned char md5_in[16], long long size, cJSON **res, struct fail *f)
{
	unsigned char md5[16];
	char *hcrc, *hmd5;
	struct fault fl;
	int bad;

	memcpy(md5, md5_in, 16);
	/* The corrupt fault: the bytes change after they arrived, and the
	 * object's checksums are those of the changed bytes, so only a client
	 * that compares them with its own sees it. */
	if (size > 0 && fault_take(r, F_CORRUPT, r->kind, size, &fl)) {
		if (corrupt_file(tmp, size) < 0 || digest_file(tmp, &crc, md5, NULL) < 0) {
			fail_set(f, 500, "backendError", "The corrupt fault could not alter the data.");
			return -1;
		}
	} else {
		goog_hash(r, &hcrc, &hmd5);
		bad = check_hashes(o->want_crc32c, o->want_md5, crc, md5, f) < 0 ||
		    check_hashes(hcrc, hmd5, crc, md5, f) < 0;
		free(hcrc);
		free(hmd5);
		if (bad)
			return -1;
	}
	return store_commit(o, tmp, crc, md5, size, res, f);
}

static void
count_persisted(long long n)
{
	pthread_mutex_lock(&S.lock);
	S.n.persisted_bytes += n;
	pthread_mutex_unlock(&S.lock);
}

/* ---- media ---- */

void
route_media(struct req *r, const char *bucket)
{
	struct objspec o = { 0 };
	unsigned char md5[16];
	struct sink s = { .fd = -1 };
	char buf[65536];
	cJSON *res = NULL;
	struct fail f;
	uint32_t crc;
	const char *ct;
	long k;

	o.bucket = pr_xstrdup(bucket);
	if (check_bucket(bucket, &f) < 0 || query_name(r, &o, &f) < 0 ||
	    check_name(o.name, &f) < 0 || precondition(r, &o, &f) < 0)
		goto fail;
	if ((ct = pr_httpd_header(&r->http, "Content-Type")) && *ct)
		o.content_type = pr_xstrdup(ct);
	if (sink_open(&s) < 0) {
		fail_set(&f, 500, "backendError", "Cannot store the upload.");
		goto fail;
	}
	while ((k = pr_httpd_body_read(&r->http, buf, sizeof buf)) > 0) {
		if (sink_write(&s, buf, (size_t)k) < 0) {
			fail_set(&f, 500, "backendError", "Cannot store the upload.");
			goto fail;
		}
	}
	if (k < 0)
		goto out;       /* the client went away: nothing to answer */
	sink_close(&s, &crc, md5);
	if (finalize(r, s.path, &o, crc, md5, s.size, &res, &f) < 0)
		goto fail;
	/* Moved into the bucket: no longer ours to remove. */
	free(s.path);
	s.path = NULL;
	count_persisted(s.size);
	pr_httpd_json(&r->http, 200, NULL, res);
	goto out;
fail:
	http_fail(r, &f);
out:
	sink_drop(&s);
	cJSON_Delete(res);
	objspec_free(&o);
}

/* ---- multipart ---- */

/* The body through a window, for finding boundaries without holding more
 * than the window in memory. */
struct mp {
	struct req *r;
	size_t off, len;
	char buf[65536 + 256];
};

/* 1 more bytes came, 0 the body is over, -1 the client went away. */
static int
mp_fill(struct mp *m)
{
	long k;

	memmove(m->buf, m->buf + m->off, m->len - m->off);
	m->len -= m->off;
	m->off = 0;
	if ((k = pr_httpd_body_read(&m->r->http, m->buf + m->len, sizeof m->buf - m->len)) < 0)
		return -1;
	m->len += (size_t)k;
	return k > 0;
}

/* At least n bytes in the window: 0, or -1 (gone or too short). */
static int
mp_need(struct mp *m, size_t n)
{
	int rc;

	while (m->len - m->off < n)
		if ((rc = mp_fill(m)) <= 0)
			return -1;
	return 0;
}

typedef int (*mp_out)(void *arg, const char *p, size_t n);

/* Hands the bytes before the next delim to out and steps over the delim.
 * 0; -1 gone; -2 no delimiter before the body ended; -3 out refused. */
static int
mp_until(struct mp *m, const char *d, size_t dlen, mp_out out, void *arg)
{
	size_t avail, n;
	char *p;
	int rc;

	for (;;) {
		avail = m->len - m->off;
		if ((p = memmem(m->buf + m->off, avail, d, dlen))) {
			n = (size_t)(p - (m->buf + m->off));
			if (out(arg, m->buf + m->off, n) < 0)
				return -3;
			m->off += n + dlen;
			return 0;
		}
		/* Keep what could be the start of the delimiter. */
		if (avail >= dlen) {
			n = avail - (dlen - 1);
			if (out(arg, m->buf + m->off, n) < 0)
				return -3;
			m->off += n;
		}
		if ((rc = mp_fill(m)) <= 0)
			return rc < 0 ? -1 : -2;
	}
}

static int
out_discard(void *arg, const char *p, size_t n)
{
	(void)arg;
	(void)p;
	(void)n;
	return 0;
}

static int
out_collect(void *arg, const char *p, size_t n)
{
	struct pr_buf *b = arg;

	if (b->len + n > SMALL_BODY)
		return -1;
	pr_buf_add(b, p, n);
	return 0;
}

static int
out_sink(void *arg, const char *p, size_t n)
{
	return sink_write(arg, p, n);
}

/* The boundary parameter of a multipart/related Content-Type, or NULL. */
static char *
boundary_of(const char *ct)
{
	const char *p, *q;
	size_t n;

	if (!ct || strncasecmp(ct, "multipart/related", 17) != 0)
		return NULL;
	for (p = ct + 17; (p = strchr(p, ';')); ) {
		for (p++; *p == ' ' || *p == '\t'; p++)
			;
		if (strncasecmp(p, "boundary=", 9) != 0)
			continue;
		p += 9;
		if (*p == '"') {
			if (!(q = strchr(++p, '"')))
				return NULL;
			n = (size_t)(q - p);
		} else {
			n = strcspn(p, "; \t");
		}
		return n >= 1 && n <= 70 ? pr_xstrndup(p, n) : NULL;
	}
	return NULL;
}

/* After a delimiter: 1 another part follows (CRLF), 0 the close
 * delimiter ("--"), -1 neither. */
static int
mp_after_delim(struct mp *m)
{
	if (mp_need(m, 2) < 0)
		return -1;
	if (memcmp(m->buf + m->off, "--", 2) == 0) {
		m->off += 2;
		return 0;
	}
	/* Transport padding is allowed before the line break. */
	while (mp_need(m, 1) == 0 && (m->buf[m->off] == ' ' || m->buf[m->off] == '\t'))
		m->off++;
	return 1;
}

/* A part's header block (it starts with the CRLF ending the delimiter
 * line); the part's Content-Type into *ct. 0 or -1. */
static int
mp_headers(struct mp *m, char **ct)
{
	struct pr_buf h = PR_BUF_INIT;
	char *line, *next, *v;
	int rc;

	*ct = NULL;
	if ((rc = mp_until(m, "\r\n\r\n", 4, out_collect, &h)) < 0 ||
	    (h.len > 0 && strncmp(h.data, "\r\n", 2) != 0)) {
		pr_buf_free(&h);
		return -1;
	}
	pr_buf_add(&h, "\r\n", 2);
	for (line = h.data + 2; (next = strstr(line, "\r\n")); line = next + 2) {
		*next = '\0';
		if (strncasecmp(line, "Content-Type:", 13) == 0) {
			for (v = line + 13; *v == ' ' || *v == '\t'; v++)
				;
			free(*ct);
			*ct = pr_xstrdup(v);
		}
	}
	pr_buf_free(&h);
	return 0;
}

void
route_multipart(struct req *r, const char *bucket)
{
	struct objspec o = { 0 };
	struct pr_buf meta = PR_BUF_INIT;
	struct sink s = { .fd = -1 };
	char *boundary = NULL, *delim = NULL, *ct = NULL;
	struct mp *m = NULL;
	unsigned char md5[16];
	cJSON *res = NULL;
	struct fail f;
	uint32_t crc;
	int rc;

	o.bucket = pr_xstrdup(bucket);
	if (check_bucket(bucket, &f) < 0 || precondition(r, &o, &f) < 0)
		goto fail;
	if (!(boundary = boundary_of(pr_httpd_header(&r->http, "Content-Type")))) {
		fail_set(&f, 400, "invalid", "Content-Type must be multipart/related with a boundary.");
		goto fail;
	}
	delim = pr_xasprintf("\r\n--%s", boundary);
	m = pr_xcalloc(1, sizeof *m);
	m->r = r;

	/* Preamble, then part 1: the JSON metadata. */
	if ((rc = mp_until(m, delim + 2, strlen(delim) - 2, out_discard, NULL)) < 0 ||
	    (rc = mp_after_delim(m)) <= 0 || (rc = mp_headers(m, &ct)) < 0 ||
	    (rc = mp_until(m, delim, strlen(delim), out_collect, &meta)) < 0)
		goto malformed;
	free(ct);
	ct = NULL;
	if (parse_objmeta(meta.data ? meta.data : "", meta.len, &o, &f) < 0 ||
	    query_name(r, &o, &f) < 0 || check_name(o.name, &f) < 0 ||
	    hash_format(o.want_crc32c, o.want_md5, &f) < 0)
		goto fail;

	/* Part 2: the bytes, to disk. */
	if ((rc = mp_after_delim(m)) <= 0 || (rc = mp_headers(m, &ct)) < 0)
		goto malformed;
	if (!o.content_type && ct && *ct)
		o.content_type = pr_xstrdup(ct);
	if (sink_open(&s) < 0) {
		fail_set(&f, 500, "backendError", "Cannot store the upload.");
		goto fail;
	}
	if ((rc = mp_until(m, delim, strlen(delim), out_sink, &s)) < 0) {
		if (rc == -3) {
			fail_set(&f, 500, "backendError", "Cannot store the upload.");
			goto fail;
		}
		goto malformed;
	}
	if ((rc = mp_after_delim(m)) != 0) {
		rc = 1;
		goto malformed;
	}
	if (pr_httpd_drain(&r->http) < 0)
		goto out;
	sink_close(&s, &crc, md5);
	if (finalize(r, s.path, &o, crc, md5, s.size, &res, &f) < 0)
		goto fail;
	free(s.path);
	s.path = NULL;
	count_persisted(s.size);
	pr_httpd_json(&r->http, 200, NULL, res);
	goto out;
malformed:
	if (rc == -1 && r->http.close)
		goto out;       /* the client went away */
	fail_set(&f, 400, "invalid", rc == 1 ?
	    "Multipart upload: exactly two parts (metadata, media) are expected." :
	    rc == -3 ? "Multipart upload: the metadata part is over 1 MiB." :
	    "Multipart upload: malformed body (boundary, part headers or parts missing).");
fail:
	http_fail(r, &f);
out:
	sink_drop(&s);
	free(m);
	free(ct);
	free(delim);
	free(boundary);
	pr_buf_free(&meta);
	cJSON_Delete(res);
	objspec_free(&o);
}

/* ---- resumable initiation ---- */

void
route_initiate(struct req *r, const char *bucket)
{
	struct objspec o = { 0 };
	struct pr_buf body = PR_BUF_INIT, loc = PR_BUF_INIT;
	const char *xct, *xlen;
	long long total = -1;
	char id[64], *headers;
	struct fail f;
	uint64_t u;
	int rc;

	o.bucket = pr_xstrdup(bucket);
	if (check_bucket(bucket, &f) < 0 || precondition(r, &o, &f) < 0)
		goto fail;
	if ((rc = pr_httpd_body_all(&r->http, SMALL_BODY, &body)) == -1)
		goto out;
	if (rc == -2) {
		fail_set(&f, 413, "uploadTooLarge", "The metadata is over 1 MiB.");
		goto fail;
	}
	if (body.len > 0 && parse_objmeta(body.data, body.len, &o, &f) < 0)
		goto fail;
	if (query_name(r, &o, &f) < 0 || check_name(o.name, &f) < 0 ||
	    hash_format(o.want_crc32c, o.want_md5, &f) < 0)
		goto fail;
	if (!o.content_type && (xct = pr_httpd_header(&r->http, "X-Upload-Content-Type")) && *xct)
		o.content_type = pr_xstrdup(xct);
	if ((xlen = pr_httpd_header(&r->http, "X-Upload-Content-Length"))) {
		if (pr_parse_u64(xlen, &u) < 0 || u > ((uint64_t)1 << 50)) {
			fail_set(&f, 400, "invalid", "Invalid X-Upload-Content-Length.");
			goto fail;
		}
		total = (long long)u;
	}
	pr_buf_printf(&loc, "%s/upload/storage/v1/b/%s/o?uploadType=resumable&name=",
	    S.set.base, o.bucket);
	pr_pct_encode(&loc, o.name);
	if (session_create(&o, total, id, &f) < 0)
		goto fail;
	pr_buf_printf(&loc, "&upload_id=%s", id);
	headers = pr_xasprintf("Location: %s\r\nX-GUploader-UploadID: %s\r\n", loc.data, id);
	pr_httpd_send(&r->http, 200, headers, "text/plain; charset=utf-8", NULL, 0);
	free(headers);
	goto out;
fail:
	http_fail(r, &f);
out:
	pr_buf_free(&body);
	pr_buf_free(&loc);
	objspec_free(&o);
}
