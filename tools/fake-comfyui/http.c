/*
 * The libwebsockets side: one protocol whose callback serves HTTP requests
 * (bodies, multipart uploads, responses, files) and WebSocket sessions on
 * the same port, as ComfyUI's aiohttp server does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "fake.h"
#include "http.h"
#include "ws.h"

#define CHUNK 65536

/*
 * A body an http fault shapes (fake-comfyui(1): bytes, endless, length,
 * rate): pre (the answer, from memory or its file, or the start of a
 * padded JSON object), then pad_n pad bytes (or pad bytes for ever), then
 * post. Made as it is sent, a chunk at a time: a 300 MB or endless body
 * costs no memory, and ends when the client hangs up.
 */
struct shape {
	bool on;
	struct pr_buf pre;       /* unless pre_file */
	bool pre_file;           /* pre is the first pre_len bytes of the file */
	uint64_t pre_len;
	char pad;
	uint64_t pad_n;
	bool endless;
	struct pr_buf post;
	uint64_t total;          /* when not endless */
	uint64_t sent;
	bool done;               /* all sent: close at the next writeable */
};

/* Per connection. lws hands a zeroed one to every new HTTP transaction,
 * and may drop a protocol for one that never saw LWS_CALLBACK_HTTP: all
 * zero must mean "nothing to free". */
struct pss {
	bool active;
	char method[8];
	char path[1024];
	struct pr_buf body;
	bool body_too_large;
	struct lws_spa *spa;
	bool upload_open;
	int upload_fd;
	char *upload_tmp;
	char upload_name[256];
	long upload_size;
	struct response resp;
	bool close_after;
	bool head_only;          /* HEAD: the GET's headers, no body */
	bool headers_sent;
	size_t sent;
	bool file_open;
	int file_fd;
	size_t file_size;
	struct session *sess;
	struct shape sh;
};

static const char *const form_names[] = {
	"overwrite", "type", "subfolder", "original_ref", "image",
};

static void
release(struct pss *p)
{
	if (p->spa) {
		lws_spa_destroy(p->spa);
		p->spa = NULL;
	}
	if (p->upload_open) {
		close(p->upload_fd);
		p->upload_open = false;
	}
	if (p->upload_tmp) {
		unlink(p->upload_tmp);
		free(p->upload_tmp);
		p->upload_tmp = NULL;
	}
	if (p->file_open) {
		close(p->file_fd);
		p->file_open = false;
	}
	pr_buf_free(&p->body);
	pr_buf_free(&p->sh.pre);
	pr_buf_free(&p->sh.post);
	memset(&p->sh, 0, sizeof p->sh);
	pr_buf_free(&p->resp.body);
	free(p->resp.file);
	free(p->resp.disposition);
	memset(&p->resp, 0, sizeof p->resp);
	p->active = false;
}

const char *
query_arg(struct lws *wsi, const char *name, char *buf, size_t len)
{
	char key[64];
	int i, n;

	/* Walk the fragments ourselves: lws_get_urlarg_by_name gives up when
	 * an earlier argument does not fit the buffer (LIBS-NOTES §2). */
	snprintf(key, sizeof key, "%s=", name);
	for (i = 0; (n = lws_hdr_copy_fragment(wsi, buf, (int)len, WSI_TOKEN_HTTP_URI_ARGS, i)) >= 0; i++) {
		if (strncmp(buf, key, strlen(key)) == 0) {
			memmove(buf, buf + strlen(key), (size_t)n - strlen(key) + 1);
			return buf;
		}
	}
	return NULL;
}

/* ComfyUI's origin check: with both Host and Origin present and a
 * loopback Host, they must agree (host:port, or host when the Origin has
 * no port), else 403 with an empty body. */
static bool
origin_refused(struct lws *wsi)
{
	char host[256], origin[256];
	const char *o;
	size_t hl;

	if (lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) <= 0 ||
	    lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) <= 0)
		return false;
	if (strncmp(host, "127.", 4) != 0 && strncmp(host, "localhost", 9) != 0 &&
	    strncmp(host, "[::1]", 5) != 0)
		return false;
	o = strstr(origin, "://");
	o = o ? o + 3 : origin;
	if (strcmp(o, host) == 0)
		return false;
	/* An Origin without a port is compared on the host name only. */
	hl = strcspn(host, ":");
	if (!strchr(o, ':') && strlen(o) == hl && strncmp(o, host, hl) == 0)
		return false;
	return true;
}

static bool
server_down(void)
{
	bool down;

	pthread_mutex_lock(&S.lock);
	down = pr_monotonic() < S.down_until;
	pthread_mutex_unlock(&S.lock);
	return down;
}

/* The path as routed: /api/X is X, as in ComfyUI's route table. */
static const char *
route_path(const char *path)
{
	if (strncmp(path, "/api/", 5) == 0)
		return path + 4;
	return path;
}

static void
log_post(struct pss *p)
{
	cJSON *rec = pr_json_object();
	struct pr_json_error e;
	cJSON *body;

	pr_json_set(rec, "t", cJSON_CreateNumber(pr_monotonic() - S.t0));
	pr_json_set_string(rec, "path", p->path);
	body = p->body.len ? pr_json_parse(p->body.data, p->body.len, &e, NULL) : NULL;
	if (body)
		pr_json_set(rec, "body", body);
	else if (p->upload_name[0])
		pr_json_set_string(rec, "upload", p->upload_name);
	else if (p->body.len)
		pr_json_set_string(rec, "text", p->body.data);
	pthread_mutex_lock(&S.lock);
	cJSON_AddItemToArray(S.posts, rec);
	pthread_mutex_unlock(&S.lock);
}

/* Decides the answer; returns -1 when the connection is to be dropped. */
static int
answer(struct lws *wsi, struct pss *p)
{
	struct request q = { 0 };
	const char *v;
	size_t i;

	q.method = p->method;
	q.path = route_path(p->path);
	q.wsi = wsi;
	q.body = p->body.data ? p->body.data : "";
	q.body_len = p->body.len;
	if (p->upload_tmp) {
		q.upload_name = p->upload_name;
		q.upload_path = p->upload_tmp;
		q.upload_size = p->upload_size;
	}
	for (i = 0; p->spa && i < 4; i++) {
		v = lws_spa_get_string(p->spa, (int)i);
		q.form[i] = v;
	}
	if (strcmp(p->method, "POST") == 0)
		log_post(p);
	route(&q, &p->resp);
	if (p->resp.close)
		return -1;
	if (p->resp.delay > 0)
		lws_set_timer_usecs(wsi, (lws_usec_t)(p->resp.delay * 1e6));
	else
		lws_callback_on_writable(wsi);
	return 0;
}

static int
upload_cb(void *data, const char *name, const char *filename, char *buf, int len,
    enum lws_spa_fileupload_states state)
{
	struct pss *p = data;
	char tmpl[4096];

	if (strcmp(name, "image") != 0)
		return 0;
	switch (state) {
	case LWS_UFS_OPEN:
		if (p->upload_open)
			return 0;
		snprintf(p->upload_name, sizeof p->upload_name, "%s", filename ? filename : "");
		snprintf(tmpl, sizeof tmpl, "%s/temp/.upload.XXXXXX", S.set.root);
		if ((p->upload_fd = mkstemp(tmpl)) < 0)
			return -1;
		p->upload_open = true;
		p->upload_tmp = pr_xstrdup(tmpl);
		return 0;
	case LWS_UFS_CONTENT:
	case LWS_UFS_FINAL_CONTENT:
		if (!p->upload_open || len <= 0)
			return 0;
		if (pr_write_full(p->upload_fd, buf, (size_t)len) < 0)
			return -1;
		p->upload_size += len;
		return 0;
	case LWS_UFS_CLOSE:
		break;
	}
	return 0;
}

static void
start(struct lws *wsi, struct pss *p, const char *path)
{
	release(p);
	p->active = true;
	snprintf(p->path, sizeof p->path, "%s", path);
	if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0)
		strcpy(p->method, "POST");
	else if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0)
		strcpy(p->method, "GET");
	else if (lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0) {
		/* aiohttp answers HEAD for every GET route. */
		strcpy(p->method, "GET");
		p->head_only = true;
	}
	else
		strcpy(p->method, "OTHER");
}

static long
content_length(struct lws *wsi)
{
	char b[32];

	if (lws_hdr_copy(wsi, b, sizeof b, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
		return -1;
	return atol(b);
}

static bool
is_multipart(struct lws *wsi)
{
	char b[256];

	return lws_hdr_copy(wsi, b, sizeof b, WSI_TOKEN_HTTP_CONTENT_TYPE) > 0 &&
	    strncmp(b, "multipart/form-data", 19) == 0;
}

static int
on_http(struct lws *wsi, struct pss *p, const char *path)
{
	long clen;

	start(wsi, p, path);
	if (origin_refused(wsi)) {
		p->resp.status = 403;
		p->resp.content_type = "application/octet-stream";
		lws_callback_on_writable(wsi);
		return 0;
	}
	if (strcmp(p->method, "POST") != 0)
		return answer(wsi, p);
	/* aiohttp's client_max_size: ComfyUI sets it to the upload limit. */
	clen = content_length(wsi);
	if (clen > S.set.max_upload) {
		respond_text(&p->resp, 413, "");
		pr_buf_reset(&p->resp.body);
		pr_buf_printf(&p->resp.body, "Maximum request body size %ld exceeded, "
		    "actual body size %ld", S.set.max_upload, clen);
		p->close_after = true;
		lws_callback_on_writable(wsi);
		return 0;
	}
	if (is_multipart(wsi)) {
		lws_spa_create_info_t si = { 0 };

		si.param_names = form_names;
		si.count_params = 5;
		si.max_storage = 65536;
		si.opt_cb = upload_cb;
		si.opt_data = p;
		if (!(p->spa = lws_spa_create_via_info(wsi, &si)))
			return -1;
	}
	/* No length and not chunked: HTTP/1.1 says there is no body
	 * (curl -X POST without data sends such requests). */
	if (clen == 0 || (clen < 0 && lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) <= 0))
		return answer(wsi, p);
	return 0;
}

static int
on_body(struct pss *p, const void *in, size_t len)
{
	if (p->spa)
		return lws_spa_process(p->spa, in, (int)len) ? -1 : 0;
	if (p->body.len + len > (size_t)S.set.max_upload) {
		p->body_too_large = true;
		return 0;
	}
	pr_buf_add(&p->body, in, len);
	return 0;
}

static int
on_body_done(struct lws *wsi, struct pss *p)
{
	if (p->spa)
		lws_spa_finalize(p->spa);
	if (p->upload_open) {
		close(p->upload_fd);
		p->upload_open = false;
	}
	if (p->body_too_large) {
		respond_text(&p->resp, 413, "Request body too large");
		p->close_after = true;
		lws_callback_on_writable(wsi);
		return 0;
	}
	return answer(wsi, p);
}

/* Lays out a shaped body (see struct shape); the Content-Length to send,
 * or -1 for none. */
static int64_t
shape_setup(struct pss *p)
{
	static const char head[] = "{\"padding\": \"";
	struct shape *sh = &p->sh;
	const struct response *r = &p->resp;
	uint64_t answer = p->file_open ? p->file_size : r->body.len, base;
	bool object = !p->file_open && r->body.len >= 2 && r->body.data[0] == '{' &&
	    r->content_type && strncmp(r->content_type, "application/json", 16) == 0;

	sh->on = true;
	sh->endless = r->endless;
	/* head, then "\"}" or "\", " and the answer after its "{". */
	base = strlen(head) + (r->body.len == 2 ? 2 : 3 + r->body.len - 1);
	if (!r->endless && r->pad_to >= 0 && (uint64_t)r->pad_to < answer) {
		/* Fewer bytes than the answer: the answer cut short. */
		sh->pre_file = p->file_open;
		sh->pre_len = (uint64_t)r->pad_to;
		if (!p->file_open)
			pr_buf_add(&sh->pre, r->body.data, sh->pre_len);
	} else if (object && (r->endless || (r->pad_to >= 0 && (uint64_t)r->pad_to >= base))) {
		/* JSON that looks valid all along: the padding is a string, the
		 * answer's members follow it, so a body under the client's
		 * limit still says what the route says. */
		pr_buf_adds(&sh->pre, head);
		if (r->body.len == 2) {
			pr_buf_adds(&sh->post, "\"}");
		} else {
			pr_buf_adds(&sh->post, "\", ");
			pr_buf_add(&sh->post, r->body.data + 1, r->body.len - 1);
		}
		sh->pre_len = sh->pre.len;
		sh->pad = 'x';
		sh->pad_n = r->endless ? 0 : (uint64_t)r->pad_to - base;
	} else {
		/* The answer, then spaces (JSON allows them at the end) or,
		 * after a file, zero bytes. */
		sh->pre_file = p->file_open;
		sh->pre_len = answer;
		if (!p->file_open)
			pr_buf_add(&sh->pre, r->body.data ? r->body.data : "", r->body.len);
		sh->pad = p->file_open ? '\0' : ' ';
		sh->pad_n = !r->endless && r->pad_to >= 0 ? (uint64_t)r->pad_to - answer : 0;
	}
	sh->total = sh->pre_len + sh->pad_n + sh->post.len;
	if (r->length == LENGTH_NONE || (r->length == LENGTH_TRUE && r->endless))
		return -1;
	if (r->length == LENGTH_TRUE)
		return (int64_t)sh->total;
	if (r->length == LENGTH_ANSWER)
		return (int64_t)answer;
	return r->length;
}

/* The headers every answer ends with, then out they go. */
static int
finish_headers(struct lws *wsi, struct pss *p, unsigned char *start,
    unsigned char **h, unsigned char *end)
{
	if (p->resp.disposition &&
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"content-disposition:",
	    (const unsigned char *)p->resp.disposition, (int)strlen(p->resp.disposition), h, end))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, h, end))
		return -1;
	p->headers_sent = true;
	return 0;
}

/*
 * The headers of a shaped body. Content-Length is written by name, so lws
 * neither checks the body against it nor keeps the connection for another
 * request: lws adds "connection: close", and the connection is closed
 * once the body is out (or the client gave up).
 */
static int
send_shaped_headers(struct lws *wsi, struct pss *p)
{
	unsigned char hb[LWS_PRE + 2048], *start = hb + LWS_PRE, *h = start;
	unsigned char *end = hb + sizeof hb - 1;
	int64_t length = shape_setup(p);
	char num[32];

	if (lws_add_http_common_headers(wsi, (unsigned int)p->resp.status,
	    p->resp.content_type ? p->resp.content_type : "application/octet-stream",
	    LWS_ILLEGAL_HTTP_CONTENT_LEN, &h, end))
		return -1;
	if (length >= 0) {
		snprintf(num, sizeof num, "%lld", (long long)length);
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)"content-length:",
		    (const unsigned char *)num, (int)strlen(num), &h, end))
			return -1;
	}
	if (finish_headers(wsi, p, start, &h, end))
		return -1;
	if (p->head_only || (!p->sh.endless && p->sh.total == 0))
		p->sh.done = true;
	lws_callback_on_writable(wsi);
	return 0;
}

/* The next piece of a shaped body: a chunk, or with a rate a tenth of a
 * second's worth, the next one after that tenth. */
static int
send_shaped(struct lws *wsi, struct pss *p)
{
	static unsigned char buf[LWS_PRE + CHUNK];
	struct shape *sh = &p->sh;
	unsigned char *b = buf + LWS_PRE;
	double rate = p->resp.rate;
	size_t want = CHUNK, n = 0, k;
	uint64_t at, left;

	/* lws asks again only once what it holds went out: all of it did. */
	if (sh->done)
		return -1;
	if (rate > 0)
		want = rate / 10 < 1 ? 1 : rate / 10 > CHUNK ? CHUNK : (size_t)(rate / 10);
	while (n < want) {
		at = sh->sent + n;
		if (at < sh->pre_len) {
			left = sh->pre_len - at;
			k = left < want - n ? (size_t)left : want - n;
			if (sh->pre_file) {
				if (pr_read_full(p->file_fd, b + n, k) != (ssize_t)k)
					return -1;
			} else {
				memcpy(b + n, sh->pre.data + at, k);
			}
		} else if (sh->endless || at < sh->pre_len + sh->pad_n) {
			left = sh->endless ? want - n : sh->pre_len + sh->pad_n - at;
			k = left < want - n ? (size_t)left : want - n;
			memset(b + n, sh->pad, k);
		} else if (at < sh->total) {
			left = sh->total - at;
			k = left < want - n ? (size_t)left : want - n;
			memcpy(b + n, sh->post.data + (at - sh->pre_len - sh->pad_n), k);
		} else {
			break;
		}
		n += k;
	}
	if (n && lws_write(wsi, b, n, LWS_WRITE_HTTP) != (int)n)
		return -1;
	sh->sent += n;
	if (!sh->endless && sh->sent >= sh->total)
		sh->done = true;
	if (rate > 0 && !sh->done)
		lws_set_timer_usecs(wsi, (lws_usec_t)((double)n / rate * 1e6));
	else
		lws_callback_on_writable(wsi);
	return 0;
}

static int
send_headers(struct lws *wsi, struct pss *p)
{
	unsigned char hb[LWS_PRE + 2048], *start = hb + LWS_PRE, *h = start;
	unsigned char *end = hb + sizeof hb - 1;
	struct stat st;
	size_t length = p->resp.body.len;

	if (p->resp.file) {
		if ((p->file_fd = open(p->resp.file, O_RDONLY | O_CLOEXEC)) < 0 ||
		    fstat(p->file_fd, &st) < 0) {
			/* Gone between routing and sending: as ComfyUI, a 404. */
			if (p->file_fd >= 0)
				close(p->file_fd);
			free(p->resp.file);
			p->resp.file = NULL;
			p->resp.status = 404;
			p->resp.content_type = "application/octet-stream";
			pr_buf_reset(&p->resp.body);
			length = 0;
		} else {
			p->file_open = true;
			p->file_size = (size_t)st.st_size;
			length = p->file_size;
		}
	}
	if (!p->resp.status)
		p->resp.status = 200;
	if (p->resp.shaped)
		return send_shaped_headers(wsi, p);
	if (lws_add_http_common_headers(wsi, (unsigned int)p->resp.status,
	    p->resp.content_type ? p->resp.content_type : "application/octet-stream",
	    (lws_filepos_t)length, &h, end))
		return -1;
	if (finish_headers(wsi, p, start, &h, end))
		return -1;
	if (length == 0 || p->head_only)
		return p->close_after ? -1 : (lws_http_transaction_completed(wsi) ? -1 : 0);
	lws_callback_on_writable(wsi);
	return 0;
}

static int
send_body(struct lws *wsi, struct pss *p)
{
	static unsigned char buf[LWS_PRE + CHUNK];
	size_t total = p->file_open ? p->file_size : p->resp.body.len, n;
	ssize_t got;
	bool final;

	n = total - p->sent < CHUNK ? total - p->sent : CHUNK;
	if (p->file_open) {
		got = pr_read_full(p->file_fd, buf + LWS_PRE, n);
		if (got < 0)
			return -1;
		/* A file that shrank under us: the client sees a short body. */
		if ((size_t)got < n)
			return -1;
	} else {
		memcpy(buf + LWS_PRE, p->resp.body.data + p->sent, n);
	}
	final = p->sent + n == total;
	if (lws_write(wsi, buf + LWS_PRE, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
		return -1;
	p->sent += n;
	if (!final) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	if (p->close_after)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
    size_t len)
{
	struct pss *p = user;

	switch (reason) {
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		/* A "restarting" server refuses connections. */
		return server_down() ? -1 : 0;
	case LWS_CALLBACK_HTTP:
		return on_http(wsi, p, in);
	case LWS_CALLBACK_HTTP_BODY:
		return on_body(p, in, len);
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return on_body_done(wsi, p);
	case LWS_CALLBACK_TIMER:
		if (p && p->active)
			lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (!p || !p->active)
			return 0;
		if (!p->headers_sent)
			return send_headers(wsi, p);
		return p->sh.on ? send_shaped(wsi, p) : send_body(wsi, p);
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (p)
			release(p);
		return 0;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
		char uri[256];

		if (server_down() || origin_refused(wsi))
			return -1;
		if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0)
			return -1;
		return strcmp(uri, "/ws") == 0 || strcmp(uri, "/api/ws") == 0 ? 0 : -1;
	}
	case LWS_CALLBACK_ESTABLISHED:
		p->sess = ws_open(wsi);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		if (p->sess)
			ws_receive(p->sess, in, len, lws_is_final_fragment(wsi));
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return p->sess ? ws_writeable(p->sess) : 0;
	case LWS_CALLBACK_CLOSED:
		ws_close(p->sess);
		p->sess = NULL;
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		ws_deliver();
		faults_tick();
		return 0;
	default:
		return 0;
	}
}

const struct lws_protocols http_protocols[] = {
	{ "comfy", callback, sizeof(struct pss), 65536, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};
