/*
 * The HTTP client (httpc.h) on libcurl's easy interface: one CURL handle
 * per server, reset before each call (which keeps its connection cache,
 * so keep-alive works) and set up from scratch, so no option of one call
 * leaks into the next.
 *
 * Threads: the first pr_http_new() runs curl_global_init(), which is only
 * safe before other threads exist (it is thread-safe in libcurl 7.84+ when
 * built so, but OpenSSL's setup under it is not guaranteed to be on every
 * system). Call it from main() before starting any. A handle belongs to
 * one thread at a time.
 *
 * Signals: CURLOPT_NOSIGNAL is set, so libcurl neither uses SIGALRM for
 * timeouts (the threaded resolver needs none) nor ignores SIGPIPE for us;
 * it sends with MSG_NOSIGNAL on Linux, and pr_init() ignores SIGPIPE in
 * every tool anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "clock.h"
#include "err.h"
#include "file.h"
#include "httpc.h"
#include "proc.h"

#ifndef PR_VERSION
#define PR_VERSION "0"
#endif

/* What an upload's answer may be: a small JSON object. */
#define UPLOAD_MAX (1024 * 1024)
/* What a failed download keeps of the error body, for messages. */
#define ERRBODY_MAX 4096

struct pr_http {
	CURL *curl;
	char *base;               /* without a trailing slash */
	long connect_timeout;
	long stall_timeout;
	int64_t max_download;     /* pr_http_set_bounds; 0: none */
	long transfer_secs, call_secs;
	long limit_secs;          /* the total bound of the call in progress */
	char errbuf[CURL_ERROR_SIZE];
	/* The stall watchdog of the call in progress (see watchdog()). */
	bool connected;
	bool stalled;
	curl_off_t last_dl, last_ul;
	double moved_at;
};

/* ---- one-time global setup ---- */

/* pthread_once, not a plain flag, so that two handles made at once still
 * initialise once; the rule above (before any thread) is about what
 * curl_global_init itself does. */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void
global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- handles ---- */

static bool
is_http_url(const char *s)
{
	size_t n;

	if (strncasecmp(s, "http://", 7) == 0)
		n = 7;
	else if (strncasecmp(s, "https://", 8) == 0)
		n = 8;
	else
		return false;
	/* A host must follow, and no whitespace or control bytes anywhere:
	 * they could never be sent and would make messages span lines. */
	if (!s[n] || s[n] == '/')
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

struct pr_http *
pr_http_new(const char *base)
{
	struct pr_http *h;
	size_t n;

	if (!base || !is_http_url(base))
		return NULL;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		pr_die(PR_EXIT_INFRA, "libcurl: %s", curl_easy_strerror(global_rc));
	h = pr_xcalloc(1, sizeof *h);
	/* Fails only when out of memory: as pr_x* allocators do, die. */
	if (!(h->curl = curl_easy_init()))
		pr_die(PR_EXIT_INFRA, "libcurl: cannot create a handle");
	n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	h->base = pr_xstrndup(base, n);
	h->connect_timeout = 10;
	h->stall_timeout = 60;
	return h;
}

void
pr_http_free(struct pr_http *h)
{
	if (!h)
		return;
	curl_easy_cleanup(h->curl);
	free(h->base);
	free(h);
}

const char *
pr_http_base(const struct pr_http *h)
{
	return h->base;
}

void
pr_http_set_timeouts(struct pr_http *h, long connect, long stall)
{
	/* Zero would mean "no limit" to libcurl (or 300 s for connecting):
	 * never what a caller passing 0 by mistake wants. Keep the old value. */
	if (connect > 0)
		h->connect_timeout = connect;
	if (stall > 0)
		h->stall_timeout = stall;
}

void
pr_http_set_bounds(struct pr_http *h, int64_t max_download, long transfer_secs,
    long call_secs)
{
	h->max_download = max_download > 0 ? max_download : 0;
	h->transfer_secs = transfer_secs > 0 ? transfer_secs : 0;
	h->call_secs = call_secs > 0 ? call_secs : 0;
}

void
pr_http_response_free(struct pr_http_response *r)
{
	pr_buf_free(&r->body);
	pr_buf_free(&r->headers);
	r->status = 0;
	r->err[0] = '\0';
}

char *
pr_http_escape(const char *s)
{
	size_t len = strlen(s);
	char *e, *copy;

	if (len > INT_MAX)
		pr_die(PR_EXIT_INFRA, "string too long to escape (%zu bytes)", len);
	/* The handle argument is ignored since libcurl 7.82. */
	if (!(e = curl_easy_escape(NULL, s, (int)len)))
		pr_die(PR_EXIT_INFRA, "out of memory (escaping %zu bytes)", len);
	copy = pr_xstrdup(e);
	curl_free(e);
	return copy;
}

/* ---- one call ---- */

/* Where a call's body goes, and why the write callback stopped it. */
struct sink {
	CURL *curl;
	struct pr_buf *body;      /* collected body (calls and error bodies) */
	size_t max;
	bool too_large;           /* over max: -1 */
	int fd;                   /* download: the temporary file, else -1 */
	int64_t written;          /* download: bytes in the file */
	int write_errno;          /* download: writing the file failed */
	int64_t max_file;         /* download: the bound (0: none) */
	int64_t skipped;          /* download: error body bytes read */
	int status_checked;       /* download: 1 streaming to fd, 2 error body */
};

static size_t
collect(char *p, size_t size, size_t n, void *data)
{
	struct sink *s = data;

	(void)size;   /* always 1 */
	if (n > s->max - s->body->len) {
		s->too_large = true;
		return 0;   /* anything but n aborts with CURLE_WRITE_ERROR */
	}
	pr_buf_add(s->body, p, n);
	return n;
}

static size_t
stream(char *p, size_t size, size_t n, void *data)
{
	struct sink *s = data;
	long status = 0;

	(void)size;
	if (!s->status_checked) {
		/* The headers are in when the first body byte is: only a 200 goes
		 * to the file, anything else is an error body for messages. */
		curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
		s->status_checked = status == 200 ? 1 : 2;
	}
	if (s->status_checked == 2) {
		/* Keep reading to the end, which keeps the connection usable,
		 * but remember only the start; an endless one still ends. */
		if (s->max_file && (int64_t)n > s->max_file - s->skipped) {
			s->too_large = true;
			return 0;
		}
		s->skipped += (int64_t)n;
		if (s->body->len < ERRBODY_MAX)
			pr_buf_add(s->body, p, n < ERRBODY_MAX - s->body->len ?
			    n : ERRBODY_MAX - s->body->len);
		return n;
	}
	if (s->max_file && (int64_t)n > s->max_file - s->written) {
		/* An endless body must not fill the disk. */
		s->too_large = true;
		return 0;
	}
	if (pr_write_full(s->fd, p, n) < 0) {
		s->write_errno = errno;
		return 0;
	}
	s->written += (int64_t)n;
	return n;
}

static void
begin(struct pr_http_response *r)
{
	r->status = 0;
	r->err[0] = '\0';
	r->over_bound = false;
	pr_buf_reset(&r->body);
	pr_buf_reset(&r->headers);
	/* Callers may read body.data as a string after any call. */
	pr_buf_add(&r->body, "", 0);
}

/* "METHOD URL: what" into r->err, on one line. The reason matters more
 * than the end of a long URL, so the URL gives way first. */
static void __attribute__((format(printf, 4, 5)))
fail(struct pr_http_response *r, const char *method, const char *url,
    const char *fmt, ...)
{
	char what[sizeof r->err];
	struct pr_buf b = PR_BUF_INIT;
	size_t room, ulen = strlen(url), n;
	va_list ap;
	char *p;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	room = sizeof r->err - 1 - strlen(method) - strlen(": ") - 1 - strlen(what);
	if (room > sizeof r->err || room < 64)   /* wrapped, or too little */
		room = 64;
	if (ulen > room)
		pr_buf_printf(&b, "%s %.*s...: %s", method, (int)(room - 3), url, what);
	else
		pr_buf_printf(&b, "%s %s: %s", method, url, what);
	n = b.len < sizeof r->err ? b.len : sizeof r->err - 1;
	memcpy(r->err, b.data, n);
	r->err[n] = '\0';
	pr_buf_free(&b);
	for (p = r->err; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
}

/* The message for a failed perform: libcurl's detailed text, and the
 * system's reason when it has one ("Couldn't connect to server" alone
 * does not tell refused from unreachable). */
static void
fail_curl(struct pr_http *h, struct pr_http_response *r, const char *method,
    const char *url, CURLcode rc)
{
	long os_errno = 0;
	curl_off_t total = 0;
	size_t n = strlen(h->errbuf);
	const char *what = n ? h->errbuf : curl_easy_strerror(rc);

	if (rc == CURLE_ABORTED_BY_CALLBACK && h->stalled) {
		fail(r, method, url, "stalled: no data for %ld s", h->stall_timeout);
		return;
	}
	if (rc == CURLE_OPERATION_TIMEDOUT && h->connected && h->limit_secs &&
	    curl_easy_getinfo(h->curl, CURLINFO_TOTAL_TIME_T, &total) == CURLE_OK &&
	    total + 100000 >= (curl_off_t)h->limit_secs * 1000000) {
		/* The whole call's bound, not a stall (libcurl's low speed
		 * limit times out too): data may still flow. libcurl fires
		 * its timeout by its own clock, and the total it reports can
		 * fall a few milliseconds short of the bound: without the
		 * slack, a caller retried the download about one time in two
		 * (five 2 s tries and 15 s of backoff for a 2 s bound). */
		r->over_bound = true;
		fail(r, method, url, "still going after %ld s", h->limit_secs);
		return;
	}
	while (n > 0 && (h->errbuf[n - 1] == '\n' || h->errbuf[n - 1] == ' '))
		h->errbuf[--n] = '\0';
	curl_easy_getinfo(h->curl, CURLINFO_OS_ERRNO, &os_errno);
	if (os_errno > 0 && os_errno <= INT_MAX && !strstr(what, strerror((int)os_errno)))
		fail(r, method, url, "%s (%s)", what, strerror((int)os_errno));
	else
		fail(r, method, url, "%s", what);
}

/* Resets the handle and sets what every call has. The caller adds its own
 * options, performs, and frees *url. */
static void
setup_url(struct pr_http *h, const char *url)
{
	CURL *c = h->curl;

	curl_easy_reset(c);
	h->errbuf[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "prompt-runner/" PR_VERSION);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, h->connect_timeout);
	/* No total timeout: a long download is legitimate. A call that moves
	 * less than a byte a second for stall seconds is dead instead. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->stall_timeout);
	/* Probes keep an idle kept-alive connection open through NAT and
	 * firewalls, and find a peer that vanished; a call in progress has
	 * the stall timeout for that. */
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 15L);
	/* A body that keeps coming is no stall: only a bound on the whole
	 * call ends it. Downloads set their own. */
	h->limit_secs = h->call_secs;
	curl_easy_setopt(c, CURLOPT_TIMEOUT, h->call_secs);
}

static void
setup(struct pr_http *h, const char *path, char **url)
{
	*url = pr_xasprintf("%s%s%s", h->base, path[0] == '/' ? "" : "/", path);
	setup_url(h, *url);
}

/* Called when a connection is ready (new or reused), before the request
 * goes out: from here on, silence counts as a stall. */
static int
on_connected(void *data, char *ip, char *local_ip, int port, int local_port)
{
	struct pr_http *h = data;

	(void)ip, (void)local_ip, (void)port, (void)local_port;
	h->connected = true;
	h->moved_at = pr_monotonic();
	return CURL_PREREQFUNC_OK;
}

/*
 * libcurl's LOW_SPEED check looks at the average speed of the last five
 * seconds or so, so after a fast transfer a dead server is noticed only
 * 5-6 s after stall (measured: 7.2 s with stall 1). This notices "no byte
 * moved for stall seconds" itself; LOW_SPEED stays set for the other
 * case, a trickle below a byte a second. libcurl calls this about once a
 * second when idle and often while data flows.
 */
static int
watchdog(void *data, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
    curl_off_t ulnow)
{
	struct pr_http *h = data;
	double t;

	(void)dltotal, (void)ultotal;
	if (!h->connected)
		return 0;
	t = pr_monotonic();
	if (dlnow != h->last_dl || ulnow != h->last_ul) {
		h->last_dl = dlnow;
		h->last_ul = ulnow;
		h->moved_at = t;
		return 0;
	}
	if (t - h->moved_at >= (double)h->stall_timeout) {
		h->stalled = true;
		return 1;   /* CURLE_ABORTED_BY_CALLBACK */
	}
	return 0;
}

/* Keeps the header lines of the last answer (a 100 Continue or a
 * redirect starts a new one), up to a bound a sane server never nears. */
static size_t
header_line(char *p, size_t size, size_t n, void *data)
{
	struct pr_buf *b = data;

	(void)size;
	if (n >= 5 && memcmp(p, "HTTP/", 5) == 0)
		pr_buf_reset(b);
	if (b->len + n <= 65536)
		pr_buf_add(b, p, n);
	return n;
}

static CURLcode
run(struct pr_http *h, struct pr_http_response *r)
{
	curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, header_line);
	curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, &r->headers);
	h->connected = false;
	h->stalled = false;
	h->last_dl = h->last_ul = 0;
	h->moved_at = pr_monotonic();
	curl_easy_setopt(h->curl, CURLOPT_PREREQFUNCTION, on_connected);
	curl_easy_setopt(h->curl, CURLOPT_PREREQDATA, h);
	curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION, watchdog);
	curl_easy_setopt(h->curl, CURLOPT_XFERINFODATA, h);
	curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 0L);
	return curl_easy_perform(h->curl);
}

/* Performs a call whose body is collected into r->body (at most max). */
static int
perform_collect(struct pr_http *h, const char *method, const char *url,
    size_t max, struct pr_http_response *r)
{
	struct sink s = { .curl = h->curl, .body = &r->body, .max = max, .fd = -1 };
	CURLcode rc;

	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &s);
	rc = run(h, r);
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &r->status);
	if (s.too_large) {
		pr_buf_reset(&r->body);
		r->over_bound = true;
		fail(r, method, url, "response larger than %zu bytes", max);
		return -1;
	}
	if (rc != CURLE_OK) {
		fail_curl(h, r, method, url, rc);
		return -1;
	}
	return 0;
}

int
pr_http_get(struct pr_http *h, const char *path, size_t max,
    struct pr_http_response *r)
{
	char *url;
	int rc;

	begin(r);
	setup(h, path, &url);
	curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
	rc = perform_collect(h, "GET", url, max, r);
	free(url);
	return rc;
}

/* HEAD: whether a file is there without fetching it. */
int
pr_http_head(struct pr_http *h, const char *path, struct pr_http_response *r)
{
	char *url;
	int rc;

	begin(r);
	setup(h, path, &url);
	curl_easy_setopt(h->curl, CURLOPT_NOBODY, 1L);
	rc = perform_collect(h, "HEAD", url, 0, r);
	free(url);
	return rc;
}

/*
 * libcurl silently sends a request again, on a new connection, when a
 * kept-alive connection it reused dies before any answer byte (measured:
 * a POST the server received and then dropped was sent twice). Harmless
 * for GET; for a POST the caller must decide (a prompt queued twice runs
 * twice). A POST on a new connection is never resent, and one connect per
 * POST costs nothing next to what it starts.
 */
static void
no_resend(struct pr_http *h)
{
	curl_easy_setopt(h->curl, CURLOPT_FRESH_CONNECT, 1L);
}

/* POSTs len bytes of data (not copied: alive until perform returns). */
static int
post(struct pr_http *h, const char *path, const char *data, size_t len,
    const char *type, size_t max, struct pr_http_response *r)
{
	struct curl_slist *hdrs = NULL, *t;
	char *url;
	int rc;

	begin(r);
	setup(h, path, &url);
	/* The stand-in (lws) does not answer "Expect: 100-continue", and
	 * libcurl sends it for bodies over 1 MiB: a second lost each time. */
	hdrs = curl_slist_append(hdrs, "Expect:");
	/* "Content-Type:" with no value drops libcurl's form-urlencoded one. */
	t = hdrs ? curl_slist_append(hdrs, type) : NULL;
	if (!t)
		pr_die(PR_EXIT_INFRA, "out of memory (request headers)");
	hdrs = t;
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
	no_resend(h);
	curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, data);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	rc = perform_collect(h, "POST", url, max, r);
	curl_slist_free_all(hdrs);
	free(url);
	return rc;
}

int
pr_http_post_json(struct pr_http *h, const char *path, const cJSON *body,
    size_t max, struct pr_http_response *r)
{
	struct pr_buf b = PR_BUF_INIT;
	int rc;

	/* Exact JSON: numbers go out as the text they came in as. */
	pr_json_write(&b, body, 0);
	rc = post(h, path, b.data, b.len, "Content-Type: application/json", max, r);
	pr_buf_free(&b);
	return rc;
}

int
pr_http_post_empty(struct pr_http *h, const char *path, size_t max,
    struct pr_http_response *r)
{
	return post(h, path, "", 0, "Content-Type:", max, r);
}

int
pr_http_upload(struct pr_http *h, const char *local_path, const char *name,
    const char *subfolder, bool overwrite, struct pr_http_response *r)
{
	struct curl_slist *hdrs;
	curl_mime *mime;
	curl_mimepart *part;
	struct stat st;
	char *url;
	int rc = -1;

	begin(r);
	setup(h, "/upload/image", &url);
	/* libcurl would report a missing file as a read error halfway through
	 * the request; say what it is before sending anything. A regular file
	 * also guarantees the part's size, hence a Content-Length. */
	if (stat(local_path, &st) < 0) {
		fail(r, "POST", url, "%s: %s", local_path, strerror(errno));
		free(url);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		fail(r, "POST", url, "%s: not a regular file", local_path);
		free(url);
		return -1;
	}
	if (!(mime = curl_mime_init(h->curl)) ||
	    !(hdrs = curl_slist_append(NULL, "Expect:")))
		pr_die(PR_EXIT_INFRA, "out of memory (upload form)");
	/* The file is streamed from disk by libcurl, never read in whole. */
	if (!(part = curl_mime_addpart(mime)) ||
	    curl_mime_name(part, "image") != CURLE_OK ||
	    curl_mime_filedata(part, local_path) != CURLE_OK ||
	    curl_mime_filename(part, name) != CURLE_OK ||
	    !(part = curl_mime_addpart(mime)) ||
	    curl_mime_name(part, "subfolder") != CURLE_OK ||
	    curl_mime_data(part, subfolder ? subfolder : "", CURL_ZERO_TERMINATED) != CURLE_OK ||
	    !(part = curl_mime_addpart(mime)) ||
	    curl_mime_name(part, "overwrite") != CURLE_OK ||
	    curl_mime_data(part, overwrite ? "true" : "false", CURL_ZERO_TERMINATED) != CURLE_OK) {
		fail(r, "POST", url, "%s: cannot build the form", local_path);
		goto out;
	}
	no_resend(h);
	/* A file's upload may take long, as a download may: it has their
	 * bound, not the call's. */
	h->limit_secs = h->transfer_secs;
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, h->transfer_secs);
	curl_easy_setopt(h->curl, CURLOPT_MIMEPOST, mime);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
	rc = perform_collect(h, "POST", url, UPLOAD_MAX, r);
out:
	/* The form is freed only after perform, which reads it. */
	curl_mime_free(mime);
	curl_slist_free_all(hdrs);
	free(url);
	return rc;
}


/* ---- general calls ---- */

/* Where a call's body comes from: memory, or a range of a file read with
 * pread, so the file's own offset is left alone and memory stays flat. */
struct source {
	const char *data;
	int fd;
	int64_t offset, len, pos;
	int read_errno;
};

static size_t
feed(char *p, size_t size, size_t n, void *data)
{
	struct source *s = data;
	size_t want = size * n;
	ssize_t got;

	if ((int64_t)want > s->len - s->pos)
		want = (size_t)(s->len - s->pos);
	if (want == 0)
		return 0;
	if (s->data) {
		memcpy(p, s->data + s->pos, want);
		s->pos += (int64_t)want;
		return want;
	}
	do
		got = pread(s->fd, p, want, (off_t)(s->offset + s->pos));
	while (got < 0 && errno == EINTR);
	if (got <= 0) {
		/* A file that shrank under us must not look like a short body
		 * the server accepted. */
		s->read_errno = got < 0 ? errno : EIO;
		return CURL_READFUNC_ABORT;
	}
	s->pos += got;
	return (size_t)got;
}

int
pr_http_call(struct pr_http *h, const struct pr_http_call *c,
    struct pr_http_response *r)
{
	struct sink s = { .curl = h->curl, .body = &r->body, .max = c->max, .fd = -1 };
	struct source src = { .fd = -1 };
	struct curl_slist *hdrs = NULL, *t;
	const char *const *line;
	const char *shown;
	char *url;
	CURLcode rc;
	bool has_body = c->file || c->data || strcmp(c->method, "PUT") == 0 ||
	    strcmp(c->method, "POST") == 0;
	int ret = -1;

	begin(r);
	if (c->url) {
		if (!is_http_url(c->path)) {
			fail(r, c->method, c->shown ? c->shown : "(URL)", "not an http(s) URL");
			return -1;
		}
		url = pr_xstrdup(c->path);
		setup_url(h, url);
	} else {
		setup(h, c->path, &url);
	}
	shown = c->shown ? c->shown : url;
	/* The stand-ins do not answer "Expect: 100-continue": never wait. */
	if (!(hdrs = curl_slist_append(NULL, "Expect:")))
		pr_die(PR_EXIT_INFRA, "out of memory (request headers)");
	for (line = c->headers; line && *line; line++) {
		if (!(t = curl_slist_append(hdrs, *line)))
			pr_die(PR_EXIT_INFRA, "out of memory (request headers)");
		hdrs = t;
	}
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
	if (c->file) {
		src.fd = c->file->fd;
		src.offset = c->file->offset;
		src.len = c->file->len;
	} else if (c->data) {
		src.data = c->data;
		src.len = (int64_t)c->data_len;
	}
	if (strcmp(c->method, "GET") == 0) {
		curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(c->method, "PUT") == 0) {
		curl_easy_setopt(h->curl, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)src.len);
	} else if (strcmp(c->method, "POST") == 0) {
		curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)src.len);
	} else {
		curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, c->method);
		if (has_body || src.len) {
			curl_easy_setopt(h->curl, CURLOPT_UPLOAD, 1L);
			curl_easy_setopt(h->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)src.len);
		}
	}
	if (has_body || src.len) {
		curl_easy_setopt(h->curl, CURLOPT_READFUNCTION, feed);
		curl_easy_setopt(h->curl, CURLOPT_READDATA, &src);
	}
	if (!c->idempotent)
		no_resend(h);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &s);
	rc = run(h, r);
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &r->status);
	if (src.read_errno)
		fail(r, c->method, shown, "reading the body: %s", strerror(src.read_errno));
	else if (s.too_large) {
		pr_buf_reset(&r->body);
		r->over_bound = true;
		fail(r, c->method, shown, "response larger than %zu bytes", c->max);
	} else if (rc != CURLE_OK)
		fail_curl(h, r, c->method, shown, rc);
	else
		ret = 0;
	curl_slist_free_all(hdrs);
	free(url);
	return ret;
}

const char *
pr_http_header(const struct pr_http_response *r, const char *name, char *buf,
    size_t len)
{
	const char *p = r->headers.data, *end = p ? p + r->headers.len : NULL;
	const char *eol, *v, *ve;
	size_t nl = strlen(name);

	for (; p && p < end; p = eol + 1) {
		if (!(eol = memchr(p, '\n', (size_t)(end - p))))
			eol = end;
		if ((size_t)(eol - p) <= nl || p[nl] != ':' || strncasecmp(p, name, nl) != 0)
			continue;
		for (v = p + nl + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = eol; ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
		if ((size_t)(ve - v) >= len)
			return NULL;
		memcpy(buf, v, (size_t)(ve - v));
		buf[ve - v] = '\0';
		return buf;
	}
	return NULL;
}
/* ---- downloads ---- */

/* The process umask without changing it: umask() both reads and sets it,
 * so another thread creating a file between the two calls would get mode
 * 0666. Linux shows it in /proc/self/status; elsewhere, fall back. */
static mode_t
current_umask(void)
{
	char line[256];
	FILE *f;
	unsigned long m;
	mode_t old;

	if ((f = fopen("/proc/self/status", "re"))) {
		while (fgets(line, sizeof line, f))
			if (sscanf(line, "Umask: %lo", &m) == 1) {
				fclose(f);
				return (mode_t)m & 0777;
			}
		fclose(f);
	}
	old = umask(022);
	umask(old);
	return old;
}

static void
fsync_dir(const char *dir)
{
	int fd;

	/* Makes the rename itself durable; a failure here loses nothing the
	 * caller could act on. */
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);
		close(fd);
	}
}

int
pr_http_download(struct pr_http *h, const char *path, const char *dest,
    int64_t *size, struct pr_http_response *r)
{
	struct sink s = { .curl = h->curl, .body = &r->body, .fd = -1 };
	const char *slash = strrchr(dest, '/');
	curl_off_t clen = -1;
	char *url, *dir, *tmp;
	CURLcode rc;
	bool created = false;   /* tmp exists and is ours to remove */
	int ret = -1, closed;

	if (size)
		*size = 0;
	begin(r);
	setup(h, path, &url);
	dir = slash ? pr_xstrndup(dest, slash == dest ? 1 : (size_t)(slash - dest)) :
	    pr_xstrdup(".");
	tmp = pr_xasprintf("%s.part.XXXXXX", dest);
	if (slash && pr_mkdirs(dir) < 0) {
		fail(r, "GET", url, "%s: %s", dir, strerror(errno));
		goto out;
	}
	/* Beside dest, so the final rename stays within one file system. */
	if ((s.fd = mkstemp(tmp)) < 0) {
		fail(r, "GET", url, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	created = true;
	/* Children the caller starts later (ffmpeg) need not hold it. */
	fcntl(s.fd, F_SETFD, FD_CLOEXEC);
	curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, stream);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &s);
	h->limit_secs = h->transfer_secs;
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, h->transfer_secs);
	/* A Content-Length over the bound is refused before a byte is
	 * written; stream() cuts off a body that has none, or lies. */
	if ((s.max_file = h->max_download))
		curl_easy_setopt(h->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->max_download);
	rc = run(h, r);
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &r->status);
	if (s.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
		r->over_bound = true;
		fail(r, "GET", url, "body larger than %lld bytes", (long long)h->max_download);
		goto out;
	}
	if (s.write_errno) {
		fail(r, "GET", url, "writing %s: %s", tmp, strerror(s.write_errno));
		goto out;
	}
	if (rc != CURLE_OK) {
		fail_curl(h, r, "GET", url, rc);
		goto out;
	}
	if (r->status != 200) {
		ret = 0;      /* the server said no: nothing written */
		goto out;
	}
	/* libcurl itself notices a connection closed early (CURLE_PARTIAL_FILE);
	 * this also catches a length it did not enforce. */
	curl_easy_getinfo(h->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
	if (clen >= 0 && s.written != (int64_t)clen) {
		fail(r, "GET", url, "short body: got %lld of %lld bytes",
		    (long long)s.written, (long long)clen);
		goto out;
	}
	/* mkstemp made the file private; a download gets the usual mode. */
	if (fchmod(s.fd, 0666 & ~current_umask()) < 0 || fsync(s.fd) < 0) {
		fail(r, "GET", url, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	closed = close(s.fd);
	s.fd = -1;
	if (closed < 0) {
		fail(r, "GET", url, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, dest) < 0) {
		fail(r, "GET", url, "%s: %s", dest, strerror(errno));
		goto out;
	}
	created = false;
	fsync_dir(dir);
	if (size)
		*size = s.written;
	ret = 0;
out:
	if (s.fd >= 0)
		close(s.fd);
	if (created)
		unlink(tmp);
	free(tmp);
	free(dir);
	free(url);
	return ret;
}
