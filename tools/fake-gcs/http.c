/*
 * Requests and answers on one blocking socket. The head is parsed in place
 * in the connection's buffer; whatever followed it there is the start of
 * the body (or of the next request), handed out before reading the socket
 * again, so pipelined requests work and nothing is read twice.
 */
#define _GNU_SOURCE   /* memmem */

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "http.h"

static const char *
reason_phrase(int code)
{
	switch (code) {
	case 100: return "Continue";
	case 200: return "OK";
	case 204: return "No Content";
	/* What GCS says; curl and libcurl take any phrase. */
	case 308: return "Resume Incomplete";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Payload Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 499: return "Client Closed Request";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

static int
send_all(struct conn *c, const void *p, size_t n)
{
	const char *s = p;
	ssize_t k;

	while (n > 0) {
		k = send(c->fd, s, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		s += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Answers a head we cannot parse, then the connection ends: after a bad
 * head we do not know where the next request would start. */
static int
bad_head(struct req *r, int code, const char *msg)
{
	r->close = true;
	r->clen = -1;
	http_error(r, code, "invalid", "%s", msg);
	return -1;
}

static bool
token_char(char ch)
{
	return ch > 32 && ch < 127 && !strchr("()<>@,;:\\\"/[]?={}", ch);
}

static bool
has_token(const char *list, const char *tok)
{
	size_t n = strlen(tok);
	const char *p = list;

	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (strncasecmp(p, tok, n) == 0 && (p[n] == '\0' || p[n] == ',' ||
		    p[n] == ' ' || p[n] == '\t'))
			return true;
		while (*p && *p != ',')
			p++;
	}
	return false;
}

/* The head's fields that matter to the framing. */
static int
framing(struct req *r)
{
	const char *v;
	uint64_t n;
	size_t i;

	r->clen = -1;
	for (i = 0; i < r->nh; i++) {
		if (strcasecmp(r->h[i].name, "Content-Length") == 0) {
			if (pr_parse_u64(r->h[i].value, &n) < 0 || n > ((uint64_t)1 << 50))
				return bad_head(r, 400, "Bad Content-Length");
			if (r->clen >= 0 && (uint64_t)r->clen != n)
				return bad_head(r, 400, "Conflicting Content-Length headers");
			r->clen = (long long)n;
		} else if (strcasecmp(r->h[i].name, "Transfer-Encoding") == 0) {
			r->chunked = true;
		}
	}
	if ((v = http_header(r, "Connection")) && has_token(v, "close"))
		r->close = true;
	if ((v = http_header(r, "Expect")) && strcasecmp(v, "100-continue") == 0)
		r->expect = true;
	return 1;
}

static int
parse_head(struct req *r, char *head)
{
	char *line, *next, *sp, *colon, *v, *e;
	const char *q;

	/* The request line. */
	next = strstr(head, "\r\n");
	*next = '\0';
	line = head;
	next += 2;
	if (!(sp = strchr(line, ' ')))
		return bad_head(r, 400, "Bad request line");
	*sp = '\0';
	r->method = line;
	for (v = line; *v; v++)
		if (!token_char(*v))
			return bad_head(r, 400, "Bad method");
	r->target = sp + 1;
	if (!(sp = strchr(r->target, ' ')))
		return bad_head(r, 400, "Bad request line");
	*sp = '\0';
	if (r->target[0] != '/')
		return bad_head(r, 400, "Only origin-form request targets are served");
	if (strcmp(sp + 1, "HTTP/1.1") != 0) {
		if (strcmp(sp + 1, "HTTP/1.0") != 0)
			return bad_head(r, 400, "Unsupported HTTP version");
		r->close = true;
	}
	q = strchr(r->target, '?');
	r->path = q ? pr_xstrndup(r->target, (size_t)(q - r->target)) : pr_xstrdup(r->target);
	r->query = q ? q + 1 : "";

	/* Header fields, up to the empty line. */
	for (line = next; *line != '\r'; line = next) {
		if (!(next = strstr(line, "\r\n")))
			return bad_head(r, 400, "Bad header line");
		*next = '\0';
		next += 2;
		if (*line == ' ' || *line == '\t')
			return bad_head(r, 400, "Obsolete line folding is not accepted");
		if (!(colon = strchr(line, ':')) || colon == line)
			return bad_head(r, 400, "Bad header line");
		for (v = line; v < colon; v++)
			if (!token_char(*v))
				return bad_head(r, 400, "Bad header name");
		if (r->nh == MAX_HEADERS)
			return bad_head(r, 431, "Too many header fields");
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		*e = '\0';
		if (strchr(v, '\n') || strchr(v, '\r'))
			return bad_head(r, 400, "Bad header value");
		r->h[r->nh].name = line;
		r->h[r->nh].value = v;
		r->nh++;
	}
	return framing(r);
}

int
http_read_head(struct conn *c, struct req *r)
{
	char *end;
	ssize_t k;

	memset(r, 0, sizeof *r);
	r->c = c;
	r->clen = -1;
	r->kind = K_OTHER;
	for (;;) {
		/* Empty lines before a request line are ignored (RFC 9112 2.2). */
		while (c->len >= 2 && c->buf[0] == '\r' && c->buf[1] == '\n') {
			memmove(c->buf, c->buf + 2, c->len - 2);
			c->len -= 2;
		}
		c->buf[c->len] = '\0';
		/* A NUL inside the head would hide the rest of it from strstr. */
		if ((end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
			if (memchr(c->buf, '\0', (size_t)(end - c->buf)))
				return bad_head(r, 400, "NUL in request head");
			end[2] = '\r';
			end[3] = '\0';
			c->off = (size_t)(end - c->buf) + 4;
			return parse_head(r, c->buf);
		}
		if (c->len == HEAD_MAX)
			return bad_head(r, 431, "Request header section over 64 KiB");
		k = recv(c->fd, c->buf + c->len, HEAD_MAX - c->len, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return c->len == 0 ? 0 : -1;
		c->len += (size_t)k;
	}
}

void
http_next(struct req *r)
{
	struct conn *c = r->c;

	free(r->path);
	r->path = NULL;
	/* The request's unread body is gone by now (drained, or the
	 * connection is closing); keep only what follows it. */
	if (c->off > c->len)
		c->off = c->len;
	memmove(c->buf, c->buf + c->off, c->len - c->off);
	c->len -= c->off;
	c->off = 0;
}

const char *
http_header(const struct req *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nh; i++)
		if (strcasecmp(r->h[i].name, name) == 0)
			return r->h[i].value;
	return NULL;
}

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

char *
pct_decode(const char *s, size_t n, bool plus)
{
	char *out = pr_xmalloc(n + 1), *o = out;
	size_t i;
	int hi, lo;

	for (i = 0; i < n; i++) {
		if (s[i] == '%') {
			if (i + 2 >= n || (hi = hexval(s[i + 1])) < 0 ||
			    (lo = hexval(s[i + 2])) < 0 || (hi == 0 && lo == 0))
				goto bad;
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else if (s[i] == '+' && plus) {
			*o++ = ' ';
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

void
pct_encode(struct pr_buf *b, const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || strchr("-._~", *p))
			pr_buf_addc(b, (char)*p);
		else
			pr_buf_printf(b, "%%%02X", *p);
	}
}

int
http_query(const struct req *r, const char *key, char **out)
{
	const char *p = r->query, *amp, *eq;
	size_t klen = strlen(key), n;

	while (*p) {
		amp = strchr(p, '&');
		n = amp ? (size_t)(amp - p) : strlen(p);
		eq = memchr(p, '=', n);
		if (eq && (size_t)(eq - p) == klen && strncmp(p, key, klen) == 0) {
			*out = pct_decode(eq + 1, n - klen - 1, true);
			return *out ? 1 : -1;
		}
		p += n;
		if (*p == '&')
			p++;
	}
	*out = NULL;
	return 0;
}

long
http_body_read(struct req *r, void *dst, size_t n)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	struct conn *c = r->c;
	long long left = r->clen - r->got;
	size_t take;
	ssize_t k;

	if (r->clen < 0 || left <= 0 || n == 0)
		return 0;
	if ((long long)n > left)
		n = (size_t)left;
	if (r->expect && !r->sent_continue) {
		r->sent_continue = true;
		if (send_all(c, cont, sizeof cont - 1) < 0) {
			r->close = true;
			return -1;
		}
	}
	if (c->off < c->len) {
		take = c->len - c->off < n ? c->len - c->off : n;
		memcpy(dst, c->buf + c->off, take);
		c->off += take;
		k = (ssize_t)take;
	} else {
		do
			k = recv(c->fd, dst, n, 0);
		while (k < 0 && errno == EINTR);
		if (k <= 0) {
			/* Gone, reset or silent past the receive timeout. */
			r->close = true;
			return -1;
		}
	}
	r->got += k;
	if (r->upload) {
		pthread_mutex_lock(&S.lock);
		S.n.upload_bytes += k;
		pthread_mutex_unlock(&S.lock);
	}
	return (long)k;
}

int
http_drain(struct req *r)
{
	char tmp[65536];
	long k;

	while ((k = http_body_read(r, tmp, sizeof tmp)) > 0)
		;
	return k < 0 ? -1 : 0;
}

int
http_body_all(struct req *r, size_t max, struct pr_buf *b)
{
	char tmp[65536];
	long k;

	pr_buf_reset(b);
	pr_buf_add(b, "", 0);
	if (r->clen > (long long)max)
		return -2;
	while ((k = http_body_read(r, tmp, sizeof tmp)) > 0)
		pr_buf_add(b, tmp, (size_t)k);
	return k < 0 ? -1 : 0;
}

/* Before an answer: the client must not be left sending a body nobody
 * reads (the answer could be lost in a reset). */
static void
settle_body(struct req *r)
{
	if (r->chunked)
		r->close = true;
	if (r->clen <= 0 || r->got >= r->clen)
		return;
	if (r->expect && !r->sent_continue)
		r->close = true;    /* it waits for our word: no body comes */
	else if (http_drain(r) < 0)
		r->close = true;
}

int
http_send_head(struct req *r, int code, const char *headers, const char *ctype,
    long long len)
{
	struct pr_buf h = PR_BUF_INIT;
	int rc;

	settle_body(r);
	pr_buf_printf(&h, "HTTP/1.1 %d %s\r\n", code, reason_phrase(code));
	if (code != 204)
		pr_buf_printf(&h, "Content-Length: %lld\r\n", len);
	if (ctype)
		pr_buf_printf(&h, "Content-Type: %s\r\n", ctype);
	if (headers)
		pr_buf_adds(&h, headers);
	pr_buf_adds(&h, "Server: fake-gcs\r\nCache-Control: no-cache, no-store, max-age=0, must-revalidate\r\n");
	if (r->close)
		pr_buf_adds(&h, "Connection: close\r\n");
	pr_buf_adds(&h, "\r\n");
	r->status = code;
	rc = send_all(r->c, h.data, h.len);
	pr_buf_free(&h);
	if (rc < 0)
		r->close = true;
	return rc;
}

int
http_write(struct req *r, const void *p, size_t n)
{
	if (send_all(r->c, p, n) < 0) {
		r->close = true;
		return -1;
	}
	return 0;
}

void
http_send(struct req *r, int code, const char *headers, const char *ctype,
    const void *body, size_t len)
{
	if (http_send_head(r, code, headers, ctype, (long long)len) == 0 && len > 0)
		http_write(r, body, len);
}

void
http_json(struct req *r, int code, const char *headers, const cJSON *v)
{
	struct pr_buf b = PR_BUF_INIT;

	pr_json_write(&b, v, 2);
	pr_buf_addc(&b, '\n');
	http_send(r, code, headers, "application/json; charset=UTF-8", b.data, b.len);
	pr_buf_free(&b);
}

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
	http_json(r, code, headers, top);
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

void
http_hang_up(struct req *r)
{
	r->close = true;
	r->status = 0;
	/* Both ways at once, so the client sees the cut now. */
	shutdown(r->c->fd, SHUT_RDWR);
}
