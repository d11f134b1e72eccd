/*
 * The stand-ins' HTTP/1.1 server (see httpd.h). The head is parsed in
 * place in the connection's buffer; whatever followed it there is the
 * start of the body (or of the next request), handed out before reading
 * the socket again, so pipelined requests work and nothing is read twice.
 *
 * Threads: the caller's thread accepts; every connection has its own
 * thread doing blocking I/O. The connection list and the stop flag live
 * under one lock, which also carries the condition naps sleep on.
 */
#define _GNU_SOURCE   /* memmem, strcasestr */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "httpd.h"
#include "standin.h"
#include "urlcode.h"

struct pr_httpd_conn {
	int fd;                 /* -1 once closed; stopping may shutdown() it */
	pthread_t thread;
	bool finished;          /* the thread is done: the accepter joins it */
	struct pr_httpd_conn *next;
	size_t len;             /* bytes in buf */
	size_t off;             /* of them, consumed by the current request */
	char buf[];             /* head_max + 1 */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;    /* naps sleep on it; stopping wakes them */
	bool stop;
	const struct pr_httpd *srv;
	struct pr_httpd_conn *conns;
	size_t nconns;
} H = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
};

static volatile sig_atomic_t got_signal;

static const char *
reason_phrase(int code)
{
	switch (code) {
	case 100: return "Continue";
	case 200: return "OK";
	case 204: return "No Content";
	/* What GCS says; curl and libcurl take any phrase. */
	case 308: return H.srv->few_phrases ? "Status" : "Resume Incomplete";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return H.srv->few_phrases ? "Status" : "Conflict";
	case 410: return H.srv->few_phrases ? "Status" : "Gone";
	case 411: return "Length Required";
	case 412: return H.srv->few_phrases ? "Status" : "Precondition Failed";
	case 413: return "Payload Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 499: return H.srv->few_phrases ? "Status" : "Client Closed Request";
	case 500: return "Internal Server Error";
	case 501: return H.srv->few_phrases ? "Status" : "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

static int
send_all(struct pr_httpd_conn *c, const void *p, size_t n)
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
bad_head(struct pr_httpd_req *r, int code, enum pr_httpd_bad why)
{
	r->close = true;
	r->clen = -1;
	H.srv->bad_head(r, code, H.srv->bad[why]);
	return -1;
}

/* Whether the stand-in makes this check (it words each one it makes). */
static bool
checks(enum pr_httpd_bad why)
{
	return H.srv->bad[why] != NULL;
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
framing(struct pr_httpd_req *r)
{
	bool loose = H.srv->loose_connection;
	const char *v;
	uint64_t n;
	size_t i;

	r->clen = -1;
	for (i = 0; i < r->nh; i++) {
		if (strcasecmp(r->h[i].name, "Content-Length") == 0) {
			if (pr_parse_u64(r->h[i].value, &n) < 0 || n > H.srv->max_length)
				return bad_head(r, 400, PR_HTTPD_BAD_LENGTH);
			if (r->clen >= 0 && (uint64_t)r->clen != n)
				return bad_head(r, 400, PR_HTTPD_BAD_LENGTHS);
			r->clen = (long long)n;
		} else if (strcasecmp(r->h[i].name, "Transfer-Encoding") == 0) {
			r->chunked = true;
		} else if (loose && strcasecmp(r->h[i].name, "Connection") == 0 &&
		    strcasestr(r->h[i].value, "close")) {
			r->close = true;
		} else if (loose && strcasecmp(r->h[i].name, "Expect") == 0 &&
		    strcasecmp(r->h[i].value, "100-continue") == 0) {
			r->expect = true;
		}
	}
	if (!loose && (v = pr_httpd_header(r, "Connection")) && has_token(v, "close"))
		r->close = true;
	if (!loose && (v = pr_httpd_header(r, "Expect")) && strcasecmp(v, "100-continue") == 0)
		r->expect = true;
	return 1;
}

static int
parse_head(struct pr_httpd_req *r, char *head)
{
	char *line, *next, *sp, *colon, *v, *e;
	const char *q;

	/* The request line. */
	next = strstr(head, "\r\n");
	*next = '\0';
	line = head;
	next += 2;
	/* A leading blank would make an empty method. */
	if (!(sp = strchr(line, ' ')) || sp == line)
		return bad_head(r, 400, PR_HTTPD_BAD_LINE);
	*sp = '\0';
	r->method = line;
	for (v = line; *v; v++)
		if (!token_char(*v))
			return bad_head(r, 400, PR_HTTPD_BAD_METHOD);
	r->target = sp + 1;
	if (!(sp = strchr(r->target, ' ')))
		return bad_head(r, 400, PR_HTTPD_BAD_LINE);
	*sp = '\0';
	if (r->target[0] != '/')
		return bad_head(r, 400, PR_HTTPD_BAD_FORM);
	if (checks(PR_HTTPD_BAD_TARGET))
		for (q = r->target; *q; q++)
			if (*q < 0x21 || *q > 0x7e)
				return bad_head(r, 400, PR_HTTPD_BAD_TARGET);
	if (strcmp(sp + 1, "HTTP/1.1") != 0) {
		if (strcmp(sp + 1, "HTTP/1.0") != 0)
			return bad_head(r, 400, PR_HTTPD_BAD_VERSION);
		r->close = true;
	}
	q = strchr(r->target, '?');
	r->path = q ? pr_xstrndup(r->target, (size_t)(q - r->target)) : pr_xstrdup(r->target);
	r->query = q ? q + 1 : "";

	/* Header fields, up to the empty line. */
	for (line = next; *line != '\r'; line = next) {
		if (!(next = strstr(line, "\r\n")))
			return bad_head(r, 400, PR_HTTPD_BAD_FIELD);
		*next = '\0';
		next += 2;
		if ((*line == ' ' || *line == '\t') && checks(PR_HTTPD_BAD_FOLDING))
			return bad_head(r, 400, PR_HTTPD_BAD_FOLDING);
		if (!(colon = strchr(line, ':')) || colon == line)
			return bad_head(r, 400, PR_HTTPD_BAD_FIELD);
		for (v = line; v < colon; v++)
			if (!token_char(*v))
				return bad_head(r, 400, PR_HTTPD_BAD_NAME);
		if (r->nh == H.srv->max_headers)
			return bad_head(r, 431, PR_HTTPD_BAD_FIELDS);
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		*e = '\0';
		if ((strchr(v, '\n') || strchr(v, '\r')) && checks(PR_HTTPD_BAD_VALUE))
			return bad_head(r, 400, PR_HTTPD_BAD_VALUE);
		r->h[r->nh].name = line;
		r->h[r->nh].value = v;
		r->nh++;
	}
	return framing(r);
}

/* 1: a request; 0: the peer closed or went idle; -1: a bad head, already
 * answered (400, 431) or not answerable. r is the stand-in's whole
 * request struct, cleared here but for the header array. */
static int
read_head(struct pr_httpd_conn *c, struct pr_httpd_req *r)
{
	struct pr_httpd_header *h = r->h;
	size_t skip;
	char *end;
	ssize_t k;

	memset(r, 0, H.srv->req_size);
	r->c = c;
	r->h = h;
	r->clen = -1;
	for (;;) {
		/* Empty lines before a request line are ignored (RFC 9112 2.2),
		 * all in one move: one per line is quadratic in a head of them. */
		for (skip = 0; c->len - skip >= 2 && c->buf[skip] == '\r' &&
		    c->buf[skip + 1] == '\n'; skip += 2)
			;
		if (skip) {
			memmove(c->buf, c->buf + skip, c->len - skip);
			c->len -= skip;
		}
		c->buf[c->len] = '\0';
		/* A NUL inside the head would hide the rest of it from strstr. */
		if ((end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
			if (memchr(c->buf, '\0', (size_t)(end - c->buf)))
				return bad_head(r, 400, PR_HTTPD_BAD_NUL);
			end[2] = '\r';
			end[3] = '\0';
			c->off = (size_t)(end - c->buf) + 4;
			return parse_head(r, c->buf);
		}
		if (c->len == H.srv->head_max)
			return bad_head(r, 431, PR_HTTPD_BAD_SIZE);
		k = recv(c->fd, c->buf + c->len, H.srv->head_max - c->len, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return c->len == 0 ? 0 : -1;
		c->len += (size_t)k;
	}
}

/* Prepares the buffer for the next request on the connection. */
static void
next_request(struct pr_httpd_req *r)
{
	struct pr_httpd_conn *c = r->c;

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
pr_httpd_header(const struct pr_httpd_req *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nh; i++)
		if (strcasecmp(r->h[i].name, name) == 0)
			return r->h[i].value;
	return NULL;
}

int
pr_httpd_query(const struct pr_httpd_req *r, const char *key, char **out)
{
	const char *p = r->query, *amp, *eq;
	size_t klen = strlen(key), n;

	while (*p) {
		amp = strchr(p, '&');
		n = amp ? (size_t)(amp - p) : strlen(p);
		eq = memchr(p, '=', n);
		if (eq && (size_t)(eq - p) == klen && strncmp(p, key, klen) == 0) {
			*out = pr_pct_decode(eq + 1, n - klen - 1, true);
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
pr_httpd_body_read(struct pr_httpd_req *r, void *dst, size_t n)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	struct pr_httpd_conn *c = r->c;
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
	if (H.srv->body_read)
		H.srv->body_read(r, (long)k);
	return (long)k;
}

int
pr_httpd_drain(struct pr_httpd_req *r)
{
	char tmp[65536];
	long k;

	while ((k = pr_httpd_body_read(r, tmp, sizeof tmp)) > 0)
		;
	return k < 0 ? -1 : 0;
}

int
pr_httpd_body_all(struct pr_httpd_req *r, size_t max, struct pr_buf *b)
{
	char tmp[65536];
	long k;

	pr_buf_reset(b);
	pr_buf_add(b, "", 0);
	if (r->clen > (long long)max)
		return -2;
	while ((k = pr_httpd_body_read(r, tmp, sizeof tmp)) > 0)
		pr_buf_add(b, tmp, (size_t)k);
	return k < 0 ? -1 : 0;
}

/* Before an answer: the client must not be left sending a body nobody
 * reads (the answer could be lost in a reset). */
static void
settle_body(struct pr_httpd_req *r)
{
	if (r->chunked)
		r->close = true;
	if (r->clen <= 0 || r->got >= r->clen)
		return;
	if ((r->expect && !r->sent_continue) || r->clen - r->got > H.srv->drain_max)
		r->close = true;    /* no body comes, or too much to wait for */
	else if (pr_httpd_drain(r) < 0)
		r->close = true;
}

/* The answer's head into h, the body settled first. */
static void
answer_head(struct pr_httpd_req *r, struct pr_buf *h, int code, const char *headers,
    const char *ctype, long long len)
{
	settle_body(r);
	pr_buf_printf(h, "HTTP/1.1 %d %s\r\n", code, reason_phrase(code));
	if (code != 204)
		pr_buf_printf(h, "Content-Length: %lld\r\n", len);
	if (ctype)
		pr_buf_printf(h, "Content-Type: %s\r\n", ctype);
	if (headers)
		pr_buf_adds(h, headers);
	pr_buf_adds(h, H.srv->headers);
	if (r->close)
		pr_buf_adds(h, "Connection: close\r\n");
	pr_buf_adds(h, "\r\n");
	r->status = code;
}

/* Sends what is in h: the stand-in hears of the answer first, so that a
 * client that has its answer finds it in the stand-in's log. */
static int
answer(struct pr_httpd_req *r, struct pr_buf *h)
{
	int rc;

	if (H.srv->answering)
		H.srv->answering(r);
	rc = send_all(r->c, h->data, h->len);
	pr_buf_free(h);
	if (rc < 0)
		r->close = true;
	return rc;
}

int
pr_httpd_send_head(struct pr_httpd_req *r, int code, const char *headers,
    const char *ctype, long long len)
{
	struct pr_buf h = PR_BUF_INIT;

	answer_head(r, &h, code, headers, ctype, len);
	return answer(r, &h);
}

int
pr_httpd_write(struct pr_httpd_req *r, const void *p, size_t n)
{
	if (send_all(r->c, p, n) < 0) {
		r->close = true;
		return -1;
	}
	return 0;
}

void
pr_httpd_send(struct pr_httpd_req *r, int code, const char *headers, const char *ctype,
    const void *body, size_t len)
{
	struct pr_buf h = PR_BUF_INIT;

	answer_head(r, &h, code, headers, ctype, (long long)len);
	/* One send for head and body: a small answer goes out whole. */
	if (code != 204 && len > 0)
		pr_buf_add(&h, body, len);
	answer(r, &h);
}

void
pr_httpd_json(struct pr_httpd_req *r, int code, const char *headers, const cJSON *v)
{
	struct pr_buf b = PR_BUF_INIT;

	pr_json_write(&b, v, H.srv->json_indent);
	pr_buf_addc(&b, '\n');
	pr_httpd_send(r, code, headers, H.srv->json_type, b.data, b.len);
	pr_buf_free(&b);
}

void
pr_httpd_hang_up(struct pr_httpd_req *r)
{
	r->close = true;
	r->status = 0;
	if (H.srv->answering)
		H.srv->answering(r);
	/* Both ways at once, so the client sees the cut now. */
	shutdown(r->c->fd, SHUT_RDWR);
}

/* ---- serving ---- */

static void
on_signal(int sig)
{
	(void)sig;
	got_signal = 1;
}

int
pr_httpd_listen(const char *addr, int port, int *bound)
{
	struct sockaddr_in sa;
	struct sigaction act;
	socklen_t len = sizeof sa;
	sigset_t block;
	int fd, one = 1, e;

	if (!pr_loopback(addr)) {
		errno = EADDRNOTAVAIL;
		return -1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, addr, &sa.sin_addr);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	*bound = ntohs(sa.sin_port);

	/* Signals only arrive inside pselect, in the serving thread:
	 * connection threads inherit the blocked mask. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	memset(&act, 0, sizeof act);
	act.sa_handler = on_signal;
	sigemptyset(&act.sa_mask);
	sigaction(SIGINT, &act, NULL);
	sigaction(SIGTERM, &act, NULL);
	return fd;
}

static void *
serve_conn(void *arg)
{
	struct timeval tv = { H.srv->idle_seconds, 0 };
	struct pr_httpd_conn *c = arg;
	struct pr_httpd_req *r = pr_xcalloc(1, H.srv->req_size);
	bool done;
	int one = 1, rc;

	r->h = pr_xcalloc(H.srv->max_headers, sizeof *r->h);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	for (;;) {
		rc = read_head(c, r);
		if (rc > 0)
			H.srv->route(r);
		/* No answer (a cut, a drop) ends the connection too. */
		done = rc <= 0 || r->close || r->status == 0;
		next_request(r);
		pthread_mutex_lock(&H.lock);
		done = done || H.stop;
		pthread_mutex_unlock(&H.lock);
		if (done)
			break;
	}
	free(r->h);
	free(r);
	pthread_mutex_lock(&H.lock);
	close(c->fd);
	c->fd = -1;
	c->finished = true;
	pthread_mutex_unlock(&H.lock);
	return NULL;
}

/* Joins the connection threads that are done, or all of them. */
static void
reap(bool all)
{
	struct pr_httpd_conn **pp, *c, *done = NULL;

	pthread_mutex_lock(&H.lock);
	for (pp = &H.conns; (c = *pp);) {
		if (all || c->finished) {
			*pp = c->next;
			c->next = done;
			done = c;
			H.nconns--;
		} else {
			pp = &c->next;
		}
	}
	pthread_mutex_unlock(&H.lock);
	while ((c = done)) {
		done = c->next;
		pthread_join(c->thread, NULL);
		free(c);
	}
}

static struct pr_httpd_conn *
conn_new(int fd)
{
	struct pr_httpd_conn *c = pr_xcalloc(1, sizeof *c + H.srv->head_max + 1);

	c->fd = fd;
	return c;
}

static void
accept_one(int lfd)
{
	struct pr_httpd_conn *c;
	int fd;

	if ((fd = accept(lfd, NULL, NULL)) < 0)
		return;
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	pthread_mutex_lock(&H.lock);
	if (H.nconns >= (size_t)H.srv->max_conns) {
		pthread_mutex_unlock(&H.lock);
		close(fd);
		return;
	}
	c = conn_new(fd);
	if (pthread_create(&c->thread, NULL, serve_conn, c) != 0) {
		pthread_mutex_unlock(&H.lock);
		close(fd);
		free(c);
		return;
	}
	c->next = H.conns;
	H.conns = c;
	H.nconns++;
	pthread_mutex_unlock(&H.lock);
}

static void
stop_all(void)
{
	struct pr_httpd_conn *c;

	pthread_mutex_lock(&H.lock);
	H.stop = true;
	pthread_cond_broadcast(&H.wake);
	/* Wakes threads blocked in recv or send; they close their own fds. */
	for (c = H.conns; c; c = c->next)
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&H.lock);
	reap(true);
}

void
pr_httpd_serve(int lfd, const struct pr_httpd *srv)
{
	struct timespec tick = { 1, 0 };
	sigset_t none;
	fd_set rd;
	int n;

	H.srv = srv;
	sigemptyset(&none);
	while (!got_signal) {
		FD_ZERO(&rd);
		FD_SET(lfd, &rd);
		n = pselect(lfd + 1, &rd, NULL, NULL, &tick, &none);
		if (n < 0 && errno != EINTR)
			pr_die(PR_EXIT_INFRA, "select: %s", strerror(errno));
		if (n > 0)
			accept_one(lfd);
		reap(false);
	}
	close(lfd);
	stop_all();
}

void
pr_httpd_handle_fd(int fd, const struct pr_httpd *srv)
{
	struct pr_httpd_conn *c;

	H.srv = srv;
	c = conn_new(fd);
	serve_conn(c);
	free(c);
}

void
pr_httpd_nap(double seconds)
{
	struct timespec until;
	double whole;

	pthread_mutex_lock(&H.lock);
	if (seconds < 0) {
		while (!H.stop)
			pthread_cond_wait(&H.wake, &H.lock);
	} else {
		clock_gettime(CLOCK_REALTIME, &until);
		whole = (double)until.tv_sec + until.tv_nsec / 1e9 + seconds;
		until.tv_sec = (time_t)whole;
		until.tv_nsec = (long)((whole - (double)until.tv_sec) * 1e9);
		while (!H.stop && pthread_cond_timedwait(&H.wake, &H.lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&H.lock);
}

bool
pr_httpd_stopping(void)
{
	bool stop;

	pthread_mutex_lock(&H.lock);
	stop = H.stop;
	pthread_mutex_unlock(&H.lock);
	return stop;
}
