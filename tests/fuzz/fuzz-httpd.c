/*
 * The stand-ins' HTTP/1.1 server (lib/httpd.c), one connection served
 * from a socketpair whose other end wrote the input and shut its side:
 * request heads, framing, pipelining, bodies (Content-Length, refused
 * chunked), queries, every kind of answer. What must hold: a route only
 * sees a head that obeys the rules the stand-in asked for; bodies never
 * run past their Content-Length or a caller's max and are bytes of the
 * input; nothing is served after a request that ends the connection; the
 * peer gets HTTP answers; no hang (the input is finite and its end
 * closed).
 *
 * Input: two bytes choosing the server's settings (see configure()),
 * then the bytes the client sends. The route does what the path's first
 * letter says (see route()).
 */
#define _GNU_SOURCE     /* memmem */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pr.h"
#include "httpd.h"
#include "fuzz.h"

struct freq {
	struct pr_httpd_req http;
	int dummy;              /* a stand-in's own fields follow its pr_httpd_req */
};

static struct {
	struct pr_httpd srv;
	size_t body_max;        /* for pr_httpd_body_all */
	const uint8_t *wire;    /* what the client sent */
	size_t wire_len;
	int peer;               /* the client's end */
	size_t heads;           /* requests routed, heads refused */
	size_t refused;
	long long body_bytes;   /* reported by body_read */
	bool ended;             /* a request ended the connection */
	size_t answered;        /* bytes the client got */
	char first[10];         /* their start */
} F;

/* What the client received so far, taken off its socket so answers
 * never block. */
static void
drain_peer(void)
{
	char tmp[65536];
	ssize_t k;

	while ((k = recv(F.peer, tmp, sizeof tmp, MSG_DONTWAIT)) > 0) {
		if (F.answered < sizeof F.first - 1)
			memcpy(F.first + F.answered, tmp,
			    (size_t)k < sizeof F.first - 1 - F.answered ?
			    (size_t)k : sizeof F.first - 1 - F.answered);
		F.answered += (size_t)k;
	}
}

static bool
token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s <= 32 || *s >= 127 || strchr("()<>@,;:\\\"/[]?={}", *s))
			return false;
	return true;
}

/* The head the route sees obeys the rules this server checks. */
static void
check_head(const struct pr_httpd_req *r)
{
	const char *q;
	size_t i;

	check(r->method && token(r->method));
	check(r->target && r->target[0] == '/' && r->path && r->query);
	q = strchr(r->target, '?');
	check(q ? strlen(r->path) == (size_t)(q - r->target) &&
	    strncmp(r->path, r->target, strlen(r->path)) == 0 && r->query == q + 1 :
	    strcmp(r->path, r->target) == 0 && *r->query == '\0');
	if (F.srv.bad[PR_HTTPD_BAD_TARGET])
		for (q = r->target; *q; q++)
			check(*q >= 0x21 && *q <= 0x7e);
	check(r->nh <= F.srv.max_headers);
	for (i = 0; i < r->nh; i++) {
		const char *v = r->h[i].value;
		size_t n = strlen(v);

		check(token(r->h[i].name));
		check(n == 0 || (v[0] != ' ' && v[0] != '\t' && v[n - 1] != ' ' && v[n - 1] != '\t'));
		if (F.srv.bad[PR_HTTPD_BAD_VALUE])
			check(!strchr(v, '\r') && !strchr(v, '\n'));
	}
	check(r->clen >= -1 && (r->clen < 0 || (unsigned long long)r->clen <= F.srv.max_length));
	check(r->got == 0 && r->status == 0);
}

/* A body handed to us is bytes the client sent, after the head. */
static void
check_from_wire(const char *p, size_t n)
{
	if (n > 0)
		check(memmem(F.wire, F.wire_len, p, n) != NULL);
}

static void
body_all(struct pr_httpd_req *r)
{
	struct pr_buf b = PR_BUF_INIT;
	int rc = pr_httpd_body_all(r, F.body_max, &b);

	check(rc == 0 || rc == -1 || rc == -2);
	check((rc == -2) == (r->clen > (long long)F.body_max));
	check(b.len <= F.body_max);
	if (rc == 0)
		check((long long)b.len == (r->clen < 0 ? 0 : r->clen));
	if (rc == -1)
		check(r->close);
	check_from_wire(b.data, b.len);
	pr_httpd_send(r, rc == -2 ? 413 : 200, NULL, "application/octet-stream", b.data, b.len);
	pr_buf_free(&b);
}

/* Reads the body in small pieces. */
static void
body_pieces(struct pr_httpd_req *r)
{
	char piece[7];
	long long sum = 0;
	long k;
	cJSON *v = pr_json_object();

	while ((k = pr_httpd_body_read(r, piece, 1 + (size_t)sum % sizeof piece)) > 0) {
		check(k <= (long)sizeof piece);
		check_from_wire(piece, (size_t)k);
		sum += k;
		check(sum <= r->clen && sum == r->got);
	}
	check(k == 0 || (k == -1 && r->close));
	pr_json_set_int(v, "got", sum);
	pr_httpd_json(r, 200, "X-Got: yes\r\n", v);
	cJSON_Delete(v);
}

static void
queries(struct pr_httpd_req *r)
{
	static const char *const keys[] = { "name", "a", "", "uploadType", NULL };
	struct pr_buf b = PR_BUF_INIT;
	char *v;
	int rc;

	for (const char *const *k = keys; *k; k++) {
		rc = pr_httpd_query(r, *k, &v);
		check(rc == 1 ? v != NULL : v == NULL);
		if (rc == 1)
			pr_buf_printf(&b, "%s=%s\n", *k, v);
		free(v);
	}
	(void)pr_httpd_header(r, "Content-Type");
	pr_httpd_send(r, 200, NULL, "text/plain", b.data, b.len);
	pr_buf_free(&b);
}

/* The path's first letter says what to do with the request: a body read
 * whole, in pieces or drained, a query, a streamed answer, a cut, no
 * answer at all, or an answer with the body left for the server. */
static void
route(struct pr_httpd_req *r)
{
	check(!F.ended);
	check_head(r);
	F.heads++;
	drain_peer();
	switch (r->path[1]) {
	case 'a':
		body_all(r);
		break;
	case 'r':
		body_pieces(r);
		break;
	case 'd':
		check(pr_httpd_drain(r) == 0 || r->close);
		pr_httpd_send(r, 204, NULL, NULL, NULL, 0);
		break;
	case 'q':
		queries(r);
		break;
	case 's':
		if (pr_httpd_send_head(r, 200, NULL, "text/plain", 5) == 0)
			pr_httpd_write(r, "hello", 5);
		break;
	case 'h':
		pr_httpd_hang_up(r);
		break;
	case 'n':
		break;
	default:
		pr_httpd_send(r, 404, NULL, "text/plain", "no\n", 3);
		break;
	}
	check(r->got <= (r->clen < 0 ? 0 : r->clen));
	if (r->close || r->status == 0)
		F.ended = true;
}

static void
bad_head(struct pr_httpd_req *r, int code, const char *msg)
{
	check(!F.ended);
	check(code == 400 || code == 431);
	check(msg != NULL && r->close);
	F.refused++;
	F.ended = true;
	drain_peer();
	pr_httpd_send(r, code, NULL, "text/plain", msg, strlen(msg));
}

static void
answering(struct pr_httpd_req *r)
{
	(void)r;
	drain_peer();
}

static void
body_read(struct pr_httpd_req *r, long n)
{
	(void)r;
	check(n > 0);
	F.body_bytes += n;
}

/*
 * Byte 0: 1 loose Connection/Expect, 2 few phrases, 4 the optional checks
 * (target bytes, folding, lone CR/LF) off, 8|16 the head size, 32|64 the
 * header count, 128 a small drain limit. Byte 1: 1|2 the largest
 * Content-Length, 4|8 the body_all max.
 */
static void
configure(uint8_t a, uint8_t b)
{
	static const size_t head_max[] = { 64, 256, 1024, 16384 };
	static const size_t max_headers[] = { 0, 2, 8, 100 };
	static const unsigned long long max_length[] = { 0, 10, 1000, 1ULL << 40 };
	static const size_t body_max[] = { 0, 8, 100, 65536 };
	static const char *const words[PR_HTTPD_BAD_COUNT] = {
		"line", "method", "form", "target", "version", "field", "folding",
		"name", "fields", "value", "length", "lengths", "nul", "size",
	};
	struct pr_httpd *s = &F.srv;

	memset(s, 0, sizeof *s);
	s->head_max = head_max[a >> 3 & 3];
	s->max_headers = max_headers[a >> 5 & 3];
	s->max_length = max_length[b & 3];
	s->drain_max = a & 128 ? 16 : LLONG_MAX;
	s->max_conns = 1;
	/* Never waited for: the client's end is shut and drained. */
	s->idle_seconds = 2;
	memcpy(s->bad, words, sizeof s->bad);
	if (a & 4)
		s->bad[PR_HTTPD_BAD_TARGET] = s->bad[PR_HTTPD_BAD_FOLDING] =
		    s->bad[PR_HTTPD_BAD_VALUE] = NULL;
	s->loose_connection = a & 1;
	s->few_phrases = a & 2;
	s->headers = "Server: fuzz\r\n";
	s->json_type = "application/json";
	s->json_indent = a & 1 ? 0 : 2;
	s->req_size = sizeof(struct freq);
	s->route = route;
	s->bad_head = bad_head;
	s->answering = answering;
	s->body_read = body_read;
	F.body_max = body_max[b >> 2 & 3];
}

static size_t
count(const uint8_t *p, size_t n, const char *s)
{
	size_t c = 0, k = strlen(s);
	const uint8_t *q;

	while ((q = memmem(p, n, s, k))) {
		c++;
		n -= (size_t)(q - p) + k;
		p = q + k;
	}
	return c;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	ssize_t k;

	if (size < 2)
		return 0;
	memset(&F, 0, sizeof F);
	configure(data[0], data[1]);
	F.wire = data + 2;
	F.wire_len = size - 2;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	F.peer = sv[0];
	/* The whole input fits in the socket's buffer (-max_len=65536). */
	k = F.wire_len ? send(sv[0], F.wire, F.wire_len, MSG_DONTWAIT) : 0;
	check(k == (ssize_t)F.wire_len);
	shutdown(sv[0], SHUT_WR);
	pr_httpd_handle_fd(sv[1], &F.srv);
	drain_peer();
	close(sv[0]);

	/* Every head routed ended in its own empty line; a refused one
	 * ends the connection. */
	check(F.refused <= 1);
	check(F.heads <= count(F.wire, F.wire_len, "\r\n\r\n"));
	check(F.body_bytes <= (long long)F.wire_len);
	if (F.answered)
		check(strncmp(F.first, "HTTP/1.1 ", F.answered < 9 ? F.answered : 9) == 0);
	return 0;
}
