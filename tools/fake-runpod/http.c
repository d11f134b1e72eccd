/*
 * Requests and answers on one blocking socket, adapted from fake-gcs's
 * http.c (same framing rules; no streaming bodies). The head is parsed in
 * place in the connection's buffer; what followed it there is the start
 * of the body or of the next request, so pipelining works.
 */
#define _GNU_SOURCE   /* memmem */

#include <errno.h>
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
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
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

/* After a bad head we do not know where the next request would start. */
static int
bad_head(struct req *r, int code, const char *msg)
{
	r->close = true;
	r->clen = -1;
	rest_error(r, code, "%s", msg);
	return -1;
}

static bool
token_char(char ch)
{
	return ch > 32 && ch < 127 && !strchr("()<>@,;:\\\"/[]?={}", ch);
}

static int
parse_head(struct req *r, char *head)
{
	char *line, *next, *sp, *colon, *v, *e;
	const char *q;
	uint64_t n;
	size_t i;

	next = strstr(head, "\r\n");
	*next = '\0';
	line = head;
	next += 2;
	if (!(sp = strchr(line, ' ')))
		return bad_head(r, 400, "bad request line");
	*sp = '\0';
	r->method = line;
	for (v = line; *v; v++)
		if (!token_char(*v))
			return bad_head(r, 400, "bad method");
	r->target = sp + 1;
	if (!(sp = strchr(r->target, ' ')) || r->target[0] != '/')
		return bad_head(r, 400, "bad request line");
	*sp = '\0';
	for (v = (char *)r->target; *v; v++)
		if (*v < 0x21 || *v > 0x7e)
			return bad_head(r, 400, "bad request target");
	if (strcmp(sp + 1, "HTTP/1.1") != 0) {
		if (strcmp(sp + 1, "HTTP/1.0") != 0)
			return bad_head(r, 400, "unsupported HTTP version");
		r->close = true;
	}
	q = strchr(r->target, '?');
	r->path = q ? pr_xstrndup(r->target, (size_t)(q - r->target)) : pr_xstrdup(r->target);
	r->query = q ? q + 1 : "";

	for (line = next; *line != '\r'; line = next) {
		if (!(next = strstr(line, "\r\n")))
			return bad_head(r, 400, "bad header line");
		*next = '\0';
		next += 2;
		if (!(colon = strchr(line, ':')) || colon == line)
			return bad_head(r, 400, "bad header line");
		for (v = line; v < colon; v++)
			if (!token_char(*v))
				return bad_head(r, 400, "bad header name");
		if (r->nh == MAX_HEADERS)
			return bad_head(r, 431, "too many header fields");
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		*e = '\0';
		r->h[r->nh].name = line;
		r->h[r->nh].value = v;
		r->nh++;
	}

	for (i = 0; i < r->nh; i++) {
		if (strcasecmp(r->h[i].name, "Content-Length") == 0) {
			if (pr_parse_u64(r->h[i].value, &n) < 0 || n > ((uint64_t)1 << 40) ||
			    (r->clen >= 0 && (uint64_t)r->clen != n))
				return bad_head(r, 400, "bad Content-Length");
			r->clen = (long long)n;
		} else if (strcasecmp(r->h[i].name, "Transfer-Encoding") == 0) {
			r->chunked = true;
		} else if (strcasecmp(r->h[i].name, "Connection") == 0 &&
		    strcasestr(r->h[i].value, "close")) {
			r->close = true;
		} else if (strcasecmp(r->h[i].name, "Expect") == 0 &&
		    strcasecmp(r->h[i].value, "100-continue") == 0) {
			r->expect = true;
		}
	}
	return 1;
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
		while (c->len >= 2 && c->buf[0] == '\r' && c->buf[1] == '\n') {
			memmove(c->buf, c->buf + 2, c->len - 2);
			c->len -= 2;
		}
		c->buf[c->len] = '\0';
		if ((end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
			if (memchr(c->buf, '\0', (size_t)(end - c->buf)))
				return bad_head(r, 400, "NUL in request head");
			end[2] = '\r';
			end[3] = '\0';
			c->off = (size_t)(end - c->buf) + 4;
			return parse_head(r, c->buf);
		}
		if (c->len == HEAD_MAX)
			return bad_head(r, 431, "request head over 16 KiB");
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

/* %XX and '+' decoding; NULL if malformed or a NUL. */
static char *
pct_decode(const char *s, size_t n)
{
	char *out = pr_xmalloc(n + 1), *o = out;
	size_t i;
	int hi, lo;

	for (i = 0; i < n; i++) {
		if (s[i] == '%') {
			if (i + 2 >= n || (hi = hexval(s[i + 1])) < 0 ||
			    (lo = hexval(s[i + 2])) < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else {
			*o++ = s[i] == '+' ? ' ' : s[i];
		}
	}
	*o = '\0';
	return out;
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
			*out = pct_decode(eq + 1, n - klen - 1);
			return *out ? 1 : -1;
		}
		p += n;
		if (*p == '&')
			p++;
	}
	*out = NULL;
	return 0;
}

/* Up to n body bytes: the count, 0 at the end, -1 when the peer went away. */
static long
body_read(struct req *r, void *dst, size_t n)
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
	if (r->expect) {
		r->expect = false;
		if (send_all(c, cont, sizeof cont - 1) < 0)
			goto gone;
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
		if (k <= 0)
			goto gone;
	}
	r->got += k;
	return (long)k;
gone:
	r->close = true;
	return -1;
}

int
http_body_all(struct req *r, struct pr_buf *b)
{
	char tmp[16384];
	long k;

	pr_buf_reset(b);
	pr_buf_add(b, "", 0);
	if (r->clen > BODY_MAX)
		return -2;
	while ((k = body_read(r, tmp, sizeof tmp)) > 0)
		pr_buf_add(b, tmp, (size_t)k);
	return k < 0 ? -1 : 0;
}

void
http_send(struct req *r, int code, const char *ctype, const void *body, size_t len)
{
	struct pr_buf h = PR_BUF_INIT;
	char tmp[16384];

	/* The client must not be left sending a body nobody reads. */
	if (r->chunked)
		r->close = true;
	if (r->clen > 0 && r->got < r->clen) {
		if (r->expect || r->clen - r->got > BODY_MAX)
			r->close = true;
		else
			while (body_read(r, tmp, sizeof tmp) > 0)
				;
	}
	pr_buf_printf(&h, "HTTP/1.1 %d %s\r\n", code, reason_phrase(code));
	if (code != 204)
		pr_buf_printf(&h, "Content-Length: %zu\r\n", len);
	if (ctype)
		pr_buf_printf(&h, "Content-Type: %s\r\n", ctype);
	pr_buf_adds(&h, "Server: fake-runpod\r\n");
	if (r->close)
		pr_buf_adds(&h, "Connection: close\r\n");
	pr_buf_adds(&h, "\r\n");
	if (code != 204 && len > 0)
		pr_buf_add(&h, body, len);
	r->status = code;
	/* Logged first: a client that has its answer finds it in the log. */
	log_request(r);
	if (send_all(r->c, h.data, h.len) < 0)
		r->close = true;
	pr_buf_free(&h);
}

void
http_json(struct req *r, int code, const cJSON *v)
{
	struct pr_buf b = PR_BUF_INIT;

	pr_json_write(&b, v, 0);
	pr_buf_addc(&b, '\n');
	http_send(r, code, "application/json", b.data, b.len);
	pr_buf_free(&b);
}

void
http_hang_up(struct req *r)
{
	r->close = true;
	r->status = 0;
	log_request(r);
	shutdown(r->c->fd, SHUT_RDWR);
}
