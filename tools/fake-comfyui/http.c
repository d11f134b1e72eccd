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
	if (lws_add_http_common_headers(wsi, (unsigned int)p->resp.status,
	    p->resp.content_type ? p->resp.content_type : "application/octet-stream",
	    (lws_filepos_t)length, &h, end))
		return -1;
	if (p->resp.disposition &&
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"content-disposition:",
	    (const unsigned char *)p->resp.disposition, (int)strlen(p->resp.disposition), &h, end))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &h, end))
		return -1;
	p->headers_sent = true;
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
		return p->headers_sent ? send_body(wsi, p) : send_headers(wsi, p);
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
