/*
 * Resumable upload sessions: the PUTs (chunks and status queries) and the
 * DELETE on a session URI. A session's bytes so far are the file
 * ROOT/.sessions/ID; "committed" is how many of them count. A chunk writes
 * its new bytes past the committed offset as they arrive and moves the
 * offset only once the whole chunk is in, so a chunk cut short leaves the
 * session as it was. Every chunk takes a new epoch: an older request still
 * running on the session (a stalled one whose client gave up) may no
 * longer write or commit.
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
#include "http.h"

struct session {
	struct session *next;
	char id[64];
	char *path;             /* ROOT/.sessions/ID until finalized */
	double born;            /* monotonic */
	int refs;               /* requests using it; under S.lock */
	bool gone;              /* out of the list; freed by the last user */
	bool finished;          /* finalized (a copy of done under S.lock) */

	pthread_mutex_t io;     /* guards everything below and the file */
	struct objspec o;
	int fd;
	long long total;        /* -1: not known yet */
	long long committed;
	unsigned long long epoch;
	bool done;
	cJSON *object;          /* the resource, once finalized */
};

static void
session_free(struct session *s)
{
	if (s->fd >= 0)
		close(s->fd);
	if (!s->done)
		unlink(s->path);
	free(s->path);
	objspec_free(&s->o);
	cJSON_Delete(s->object);
	pthread_mutex_destroy(&s->io);
	free(s);
}

int
session_create(struct objspec *o, long long total, char id[64], struct fail *f)
{
	struct session *s = pr_xcalloc(1, sizeof *s);

	random_id(s->id, 32);
	s->path = pr_xasprintf("%s/.sessions/%s", S.set.root, s->id);
	if ((s->fd = open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		fail_set(f, 500, "backendError", "Cannot create the session: %s", strerror(errno));
		free(s->path);
		free(s);
		return -1;
	}
	pthread_mutex_init(&s->io, NULL);
	s->o = *o;
	memset(o, 0, sizeof *o);
	s->total = total;
	s->born = pr_monotonic();
	memcpy(id, s->id, sizeof s->id);
	pthread_mutex_lock(&S.lock);
	s->next = S.sessions;
	S.sessions = s;
	pthread_mutex_unlock(&S.lock);
	return 0;
}

/* Drops sessions past --session-ttl (S.lock held). Those in use are freed
 * by their last user. */
static void
purge(void)
{
	struct session **pp, *s;
	double now = pr_monotonic();

	for (pp = &S.sessions; (s = *pp);) {
		if (now - s->born < (double)S.set.session_ttl) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		s->gone = true;
		if (s->refs == 0)
			session_free(s);
	}
}

static struct session *
session_get(const char *id)
{
	struct session *s;

	pthread_mutex_lock(&S.lock);
	purge();
	for (s = S.sessions; s; s = s->next)
		if (strcmp(s->id, id) == 0)
			break;
	if (s)
		s->refs++;
	pthread_mutex_unlock(&S.lock);
	return s;
}

static void
session_put(struct session *s)
{
	bool last;

	pthread_mutex_lock(&S.lock);
	last = --s->refs == 0 && s->gone;
	pthread_mutex_unlock(&S.lock);
	if (last)
		session_free(s);
}

/* Out of the list: later requests get 404. */
static void
session_kill(struct session *s)
{
	struct session **pp;

	pthread_mutex_lock(&S.lock);
	for (pp = &S.sessions; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			s->gone = true;
			break;
		}
	}
	pthread_mutex_unlock(&S.lock);
}

long long
session_count(void)
{
	struct session *s;
	long long n = 0;

	pthread_mutex_lock(&S.lock);
	purge();
	for (s = S.sessions; s; s = s->next)
		if (!s->finished)
			n++;
	pthread_mutex_unlock(&S.lock);
	return n;
}

void
sessions_free(void)
{
	struct session *s;

	while ((s = S.sessions)) {
		S.sessions = s->next;
		session_free(s);
	}
}

static int
number(const char **p, long long *out)
{
	long long v = 0;
	const char *s = *p;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > ((long long)1 << 50))
			return -1;
		v = v * 10 + (*s - '0');
	}
	*p = s;
	*out = v;
	return 0;
}

int
content_range(const struct req *r, struct range *rg)
{
	const char *v = pr_httpd_header(&r->http, "Content-Range"), *p;

	rg->first = rg->last = rg->total = -1;
	if (!v) {
		if (r->http.clen > 0) {
			rg->first = 0;
			rg->last = r->http.clen - 1;
			rg->total = r->http.clen;
		}
		return 1;
	}
	if (strncasecmp(v, "bytes ", 6) != 0)
		return -1;
	for (p = v + 6; *p == ' '; p++)
		;
	if (*p == '*') {
		p++;
	} else if (number(&p, &rg->first) < 0 || *p++ != '-' || number(&p, &rg->last) < 0 ||
	    rg->last < rg->first) {
		return -1;
	}
	if (*p++ != '/')
		return -1;
	if (*p == '*')
		p++;
	else if (number(&p, &rg->total) < 0)
		return -1;
	return *p ? -1 : 0;
}

/* 308 with what is persisted. */
static void
resume_incomplete(struct req *r, long long committed)
{
	char range[64];

	snprintf(range, sizeof range, "Range: bytes=0-%lld\r\n", committed - 1);
	pr_httpd_send(&r->http, 308, committed > 0 ? range : NULL, NULL, NULL, 0);
}

static void
add_persisted(long long n)
{
	pthread_mutex_lock(&S.lock);
	S.n.persisted_bytes += n;
	pthread_mutex_unlock(&S.lock);
}

/* The session's data is all there (s->io held): the object, or why not.
 * A checksum mismatch drops the session (later requests get 404); a
 * failed precondition keeps it, so asking again answers 412 again. */
static int
finish(struct req *r, struct session *s, cJSON **res, struct fail *f)
{
	unsigned char md5[16];
	long long size;
	uint32_t crc;

	if (ftruncate(s->fd, s->total) < 0 ||
	    digest_file(s->path, &crc, md5, &size) < 0) {
		fail_set(f, 500, "backendError", "Cannot read the session data: %s", strerror(errno));
		return -1;
	}
	if (finalize(r, s->path, &s->o, crc, md5, size, res, f) < 0) {
		if (f->code == 400)
			session_kill(s);
		return -1;
	}
	s->done = true;
	s->object = pr_json_copy(*res);
	pthread_mutex_lock(&S.lock);
	s->finished = true;
	pthread_mutex_unlock(&S.lock);
	close(s->fd);
	s->fd = -1;
	return 0;
}

static int
write_at(int fd, const char *p, size_t n, long long at)
{
	ssize_t k;

	while (n > 0) {
		k = pwrite(fd, p, n, (off_t)at);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		p += k;
		n -= (size_t)k;
		at += k;
	}
	return 0;
}

/* What a chunk request will do once its body is read. */
struct plan {
	long long first, last;  /* the body's place in the object */
	long long base;         /* committed when it started */
	long long stop;         /* read no further than this offset (cut) */
	long long keep_end;     /* write and commit no further (partial) */
	unsigned long long epoch;
	bool cut, persist, partial;
};

/* Reads the body, writing what is new. 0 read as planned, -1 the client
 * went away, -2 superseded by a later chunk, -3 disk error. */
static int
take_body(struct req *r, struct session *s, struct plan *p)
{
	char buf[65536];
	long long pos = p->first, lo, hi, want;
	long k;
	int rc = 0;

	while (pos < p->stop) {
		want = p->stop - pos < (long long)sizeof buf ? p->stop - pos : (long long)sizeof buf;
		if ((k = pr_httpd_body_read(&r->http, buf, (size_t)want)) <= 0)
			return -1;
		lo = pos > p->base ? pos : p->base;
		hi = pos + k < p->keep_end ? pos + k : p->keep_end;
		if (rc == 0 && hi > lo) {
			pthread_mutex_lock(&s->io);
			if (s->epoch != p->epoch || s->done)
				rc = -2;
			else if (write_at(s->fd, buf + (lo - pos), (size_t)(hi - lo), lo) < 0)
				rc = -3;
			pthread_mutex_unlock(&s->io);
		}
		pos += k;
	}
	return rc;
}

static void
chunk(struct req *r, struct session *s, const struct range *rg)
{
	long long newc, old;
	cJSON *res = NULL;
	struct plan p = { 0 };
	struct fault fl;
	struct fail f = { 0 };
	bool query = rg->first < 0, complete = false;
	int rc;

	pthread_mutex_lock(&s->io);
	if (s->done) {
		pthread_mutex_unlock(&s->io);
		pr_httpd_json(&r->http, 200, NULL, s->object);
		return;
	}
	if (rg->total >= 0 && s->total >= 0 && rg->total != s->total) {
		fail_set(&f, 400, "invalid", "Invalid request. The total object size in "
		    "Content-Range (%lld) does not match the one given before (%lld).",
		    rg->total, s->total);
		goto refuse;
	}
	if (query && r->http.clen != 0) {
		fail_set(&f, 400, "invalid", "Invalid request. A Content-Range of bytes */TOTAL "
		    "goes with an empty body.");
		goto refuse;
	}
	if (!query && rg->last - rg->first + 1 != r->http.clen) {
		fail_set(&f, 400, "invalid", "Invalid request. The Content-Range (%lld bytes) and "
		    "the Content-Length (%lld) do not agree.", rg->last - rg->first + 1, r->http.clen);
		goto refuse;
	}
	if (rg->total >= 0 && ((!query && rg->last + 1 > rg->total) ||
	    s->committed > rg->total)) {
		fail_set(&f, 400, "invalid", "Invalid request. The Content-Range goes past the "
		    "total object size %lld.", rg->total);
		goto refuse;
	}
	if (!query && rg->first > s->committed) {
		fail_set(&f, 400, "invalid", "Invalid request. According to the Content-Range "
		    "header, the upload offset is %lld byte(s), which exceeds already uploaded "
		    "size of %lld byte(s).", rg->first, s->committed);
		goto refuse;
	}
	if (rg->total >= 0)
		s->total = rg->total;
	if (!query && rg->last + 1 > s->committed &&
	    !(s->total >= 0 && rg->last + 1 == s->total) && (rg->last + 1) % GRANULE != 0) {
		fail_set(&f, 400, "invalid", "Invalid request. The number of bytes uploaded is "
		    "required to be equal or greater than 262144, except for the final request "
		    "(it's recommended to be the exact multiple of 262144). The received request "
		    "contained %lld bytes, which does not meet this requirement.", r->http.clen);
		goto refuse;
	}
	if (query || rg->last + 1 <= s->committed) {
		/* Nothing new: a status query, or bytes already persisted. */
		if (s->total >= 0 && s->committed == s->total)
			goto complete;
		old = s->committed;
		pthread_mutex_unlock(&s->io);
		resume_incomplete(r, old);
		return;
	}
	p.first = rg->first;
	p.last = rg->last;
	p.base = s->committed;
	p.epoch = ++s->epoch;
	p.stop = p.keep_end = rg->last + 1;
	pthread_mutex_unlock(&s->io);

	/* Faults that act on the chunk's data. */
	if (fault_take(r, F_CUT | F_PARTIAL, K_CHUNK, rg->last + 1, &fl)) {
		if (fl.kind == F_CUT) {
			p.cut = true;
			p.persist = fl.persist;
			if (fl.bytes >= 0)
				p.stop = p.first + (fl.bytes < r->http.clen ? fl.bytes : r->http.clen);
			else if (fl.after_bytes >= 0)
				p.stop = fl.after_bytes > p.first ? fl.after_bytes : p.first;
			else
				p.stop = p.first + r->http.clen / 2;
			/* A server keeps whole granules of what it got. */
			p.keep_end = p.persist ? p.stop / GRANULE * GRANULE : p.first;
		} else {
			p.partial = true;
			p.keep_end = p.first + (fl.keep < r->http.clen ? fl.keep : r->http.clen);
			p.keep_end = p.keep_end / GRANULE * GRANULE;
		}
	}

	rc = take_body(r, s, &p);
	if (rc == -1)
		return;         /* gone: nothing committed, nothing to answer */
	if (rc == -3) {
		http_error(r, 500, "backendError", "Cannot store the chunk.");
		return;
	}
	pthread_mutex_lock(&s->io);
	if (rc == -2 || s->epoch != p.epoch || s->done) {
		pthread_mutex_unlock(&s->io);
		if (p.cut)
			pr_httpd_hang_up(&r->http);
		else
			http_error(r, 503, "backendError", "A later request on this upload session "
			    "superseded this one; ask for the upload status.");
		return;
	}
	newc = p.cut || p.partial ? p.keep_end : p.last + 1;
	if (newc > s->committed) {
		add_persisted(newc - s->committed);
		s->committed = newc;
	}
	if (p.cut) {
		pthread_mutex_unlock(&s->io);
		pr_httpd_hang_up(&r->http);
		return;
	}
	if (p.partial || !(s->total >= 0 && s->committed == s->total)) {
		old = s->committed;
		pthread_mutex_unlock(&s->io);
		resume_incomplete(r, old);
		return;
	}
complete:
	complete = finish(r, s, &res, &f) == 0;
	pthread_mutex_unlock(&s->io);
	if (complete)
		pr_httpd_json(&r->http, 200, NULL, res);
	else
		http_fail(r, &f);
	cJSON_Delete(res);
	return;
refuse:
	pthread_mutex_unlock(&s->io);
	http_fail(r, &f);
}

void
route_session(struct req *r, enum kind k, const char *upload_id)
{
	struct session *s;
	struct range rg;
	struct fault fl;
	long long end = -1;

	if (k != K_CANCEL) {
		if (content_range(r, &rg) < 0) {
			http_error(r, 400, "invalid", "Invalid request. Bad Content-Range header "
			    "(expected bytes FIRST-LAST/TOTAL, bytes */TOTAL or a * total).");
			return;
		}
		end = rg.last >= 0 ? rg.last + 1 : -1;
	}
	if (!(s = session_get(upload_id))) {
		http_error(r, 404, "notFound", "No such upload session (it expired, was "
		    "cancelled or never existed).");
		return;
	}
	if (fault_take(r, F_EXPIRE, k, end, &fl)) {
		session_kill(s);
		http_error(r, fl.code, fl.code == 410 ? "gone" : "notFound",
		    "The upload session has expired.");
	} else if (k == K_CANCEL) {
		session_kill(s);
		pr_httpd_send(&r->http, 499, NULL, NULL, NULL, 0);
	} else {
		chunk(r, s, &rg);
	}
	session_put(s);
}
