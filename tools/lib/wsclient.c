/*
 * WebSocket clients on libwebsockets 4.1.6 (see wsclient.h and
 * LIBS-NOTES.md §1, §3 for the library behaviours worked around here).
 *
 * Ownership of lws objects: each pr_ws has at most one wsi whose user
 * pointer is the pr_ws. A wsi we give up on (pr_ws_free, or a close while
 * the handshake is still running) first gets its user pointer cleared and
 * is then closed synchronously, so no callback can ever reach a freed or
 * reused pr_ws: callbacks with user == NULL are ignored. Everything runs
 * on the caller's thread, inside pr_ws_run, except the synchronous kills,
 * which happen in the caller's calls outside any lws callback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include "clock.h"
#include "buf.h"
#include "err.h"
#include "json.h"
#include "wsclient.h"
#include "wsmsg.h"

/* Bigger text messages are dropped and the connection closed. */
#define MAX_MESSAGE ((size_t)64 << 20)
/* A receive buffer left bigger than this by a large message is freed
 * after it, so one big message does not pin memory for the session. */
#define KEEP_RX ((size_t)1 << 20)

struct msg {
	struct msg *next;
	cJSON *v;
};

struct pr_wsctx {
	struct lws_context *lws;
	/* Per-connection ping policy; connections point at it, so it lives
	 * as long as the context. */
	lws_retry_bo_t retry;
	struct pr_ws *conns;          /* every pr_ws of this context */
	lws_sorted_usec_list_t deadline;
	bool deadline_hit;
	bool news;                    /* a message or state change */
};

struct pr_ws {
	struct pr_wsctx *ctx;
	struct pr_ws *next;
	struct lws *wsi;              /* NULL when there is no socket */
	enum pr_ws_state state;
	char error[160];
	unsigned connections;

	/* Where to connect. */
	char *address, *host, *path;
	int port;
	bool tls;

	/* The message being received; rx.too_big: one went over MAX_MESSAGE. */
	struct pr_wsmsg rx;

	/* Closing: our close frame to send from CLIENT_WRITEABLE. */
	bool want_close;
	enum lws_close_status close_status;
	bool by_us;                   /* the close was ours */
	bool peer_closed;             /* the peer sent a close frame */
	int peer_code;
	bool reconnect;               /* connect again once the old socket is gone */
	bool in_connect;              /* inside lws_client_connect_via_info */
	double last_valid;            /* when lws last counted it alive */

	struct msg *head, *tail;
};

static void
set_state(struct pr_ws *w, enum pr_ws_state s)
{
	if (w->state != s) {
		w->state = s;
		w->ctx->news = true;
	}
}

static void
go_down(struct pr_ws *w, const char *why)
{
	snprintf(w->error, sizeof w->error, "%s", why);
	w->wsi = NULL;
	w->want_close = false;
	pr_buf_free(&w->rx.buf);
	set_state(w, PR_WS_DOWN);
	/* The wake-up matters when this runs from an lws timer (the
	 * validity hang-up): those run before poll(), which would otherwise
	 * block until the next event (LIBS-NOTES.md §1). */
	lws_cancel_service(w->ctx->lws);
}

/* Why a connection ended, when lws did not say (no CONNECTION_ERROR). */
static void
lost(struct pr_ws *w)
{
	char why[64];

	if (w->state == PR_WS_CONNECTING) {
		go_down(w, "cannot connect: closed during the handshake");
	} else if (w->rx.too_big) {
		go_down(w, "message over 64 MiB");
	} else if (w->by_us) {
		go_down(w, "closed by us");
	} else if (w->peer_closed) {
		if (w->peer_code)
			snprintf(why, sizeof why, "closed by peer (code %d)", w->peer_code);
		else
			snprintf(why, sizeof why, "closed by peer");
		go_down(w, why);
	} else if (pr_monotonic() - w->last_valid >=
	    (double)w->ctx->retry.secs_since_valid_hangup - 0.2) {
		/* lws hangs up by itself secs_since_valid_hangup after the last
		 * PONG and tells us nothing but CLIENT_CLOSED; a socket quiet
		 * that long with pings going out had a dead peer. */
		go_down(w, "no pong");
	} else {
		go_down(w, "connection lost");
	}
}

static void
connect_failed(struct pr_ws *w, struct lws *wsi, const char *in)
{
	unsigned status = lws_http_client_http_response(wsi);
	char why[160];

	if (status && status != 101)
		snprintf(why, sizeof why, "handshake refused: HTTP %u", status);
	else if (in && strcmp(in, "Unable to connect") == 0)
		/* lws's word for a TCP connect that failed; errno and SO_ERROR
		 * are gone by now. Refused is what a server that is not up
		 * gives, by far the usual case. */
		snprintf(why, sizeof why, "connection refused");
	else
		snprintf(why, sizeof why, "cannot connect: %s", in && *in ? in : "unknown error");
	go_down(w, why);
}

static void
queue(struct pr_ws *w, cJSON *v)
{
	struct msg *m = pr_xmalloc(sizeof *m);

	m->next = NULL;
	m->v = v;
	if (w->tail)
		w->tail->next = m;
	else
		w->head = m;
	w->tail = m;
	w->ctx->news = true;
}

/* Asks lws for CLIENT_WRITEABLE, where the close frame goes out: closing
 * from CLIENT_RECEIVE with a reason crashes 4.1.6 once a message spilled
 * over one rx buffer (LIBS-NOTES.md §1, warmcat/libwebsockets#3412). */
static void
start_close(struct pr_ws *w, enum lws_close_status status)
{
	w->want_close = true;
	w->close_status = status;
	w->by_us = true;
	set_state(w, PR_WS_CLOSING);
	lws_callback_on_writable(w->wsi);
}

int
pr_wsmsg_add(struct pr_wsmsg *m, bool first, bool final, bool binary,
    const void *in, size_t len, cJSON **out)
{
	struct pr_json_error e;

	*out = NULL;
	if (m->too_big)
		return 0;                    /* closing: nothing more is wanted */
	if (first) {
		pr_buf_reset(&m->buf);
		m->binary = binary;
	}
	/* Binary frames (previews) are not wanted: never buffered. */
	if (!m->binary) {
		if (len > m->max - m->buf.len) {
			m->too_big = true;
			pr_buf_free(&m->buf);
			return -1;
		}
		pr_buf_add(&m->buf, in, len);
	}
	if (!final)
		return 0;
	/* Text that is not JSON is no ComfyUI message: dropped. */
	if (!m->binary)
		*out = pr_json_parse(m->buf.data ? m->buf.data : "", m->buf.len, &e, NULL);
	if (m->buf.cap > m->keep)
		pr_buf_free(&m->buf);
	else
		pr_buf_reset(&m->buf);
	return *out ? 1 : 0;
}

static void
receive(struct pr_ws *w, struct lws *wsi, const void *in, size_t len)
{
	cJSON *v;

	switch (pr_wsmsg_add(&w->rx, lws_is_first_fragment(wsi) != 0,
	    lws_is_final_fragment(wsi) != 0, lws_frame_is_binary(wsi) != 0, in, len, &v)) {
	case 1:
		queue(w, v);
		break;
	case -1:
		start_close(w, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE);
		break;
	}
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
    size_t len)
{
	struct pr_ws *w = user;
	const unsigned char *p = in;

	/* NULL: EVENT_WAIT_CANCELLED (a fake wsi), context-wide events, and
	 * sockets whose pr_ws gave them up. */
	if (!w)
		return 0;
	/* Only one wsi at a time points at w (connect waits for the old one
	 * to go); should a stale one ever speak up, it is not our socket. */
	if (w->wsi && w->wsi != wsi)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		/* Never established; no CLIENT_CLOSED follows. */
		connect_failed(w, wsi, in);
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		w->wsi = wsi;
		w->connections++;
		w->last_valid = pr_monotonic();
		set_state(w, PR_WS_UP);
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		receive(w, wsi, in, len);
		/* pr_ws_run checks for news after each lws_service. */
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
		/* The only thing lws counts as proof of life. */
		w->last_valid = pr_monotonic();
		return 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (!w->want_close)
			return 0;
		/* Once: lws sends the close frame and calls WRITEABLE again in
		 * the same pass; -1 then would drop the socket at once instead
		 * of awaiting the peer's close frame (up to 5 s). */
		w->want_close = false;
		lws_close_reason(wsi, w->close_status, NULL, 0);
		return -1;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		w->peer_closed = true;
		w->peer_code = len >= 2 ? p[0] << 8 | p[1] : 0;
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
		lost(w);
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		/* Always the last word on a wsi: if neither CLIENT_CLOSED nor
		 * CONNECTION_ERROR came, the connection still ended. */
		if (w->state != PR_WS_DOWN && !w->in_connect)
			lost(w);
		w->wsi = NULL;
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
	/* 64 KiB receive chunks: fewer callbacks for big messages. */
	{ "pr-ws", callback, 0, 65536, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

struct pr_wsctx *
pr_wsctx_new(int ping_secs)
{
	struct lws_context_creation_info info;
	struct pr_wsctx *c = pr_xcalloc(1, sizeof *c);

	/* lws asserts hangup > ping; the fields are 16-bit. */
	if (ping_secs < 1)
		ping_secs = 1;
	if (ping_secs > 30000)
		ping_secs = 30000;
	c->retry.secs_since_valid_ping = (uint16_t)ping_secs;
	c->retry.secs_since_valid_hangup = (uint16_t)(2 * ping_secs);
	/* Process-wide; without it every context prints notices. */
	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof info);
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	/* The default sizes the fd table from ulimit -n. */
	info.fd_limit_per_thread = 32;
	/* wss:// with the system's CA certificates; checks stay on. */
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	if (!(c->lws = lws_create_context(&info))) {
		free(c);
		return NULL;
	}
	return c;
}

/* Lets go of the socket at once: no callback will reach w again. Only
 * outside lws callbacks (our API calls), where a synchronous kill is
 * allowed. */
static void
abandon(struct pr_ws *w)
{
	struct lws *wsi = w->wsi;

	if (!wsi)
		return;
	w->wsi = NULL;
	lws_set_wsi_user(wsi, NULL);
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}

static void
ws_destroy(struct pr_ws *w)
{
	struct msg *m;

	abandon(w);
	while ((m = w->head)) {
		w->head = m->next;
		cJSON_Delete(m->v);
		free(m);
	}
	pr_buf_free(&w->rx.buf);
	free(w->address);
	free(w->host);
	free(w->path);
	free(w);
}

void
pr_wsctx_free(struct pr_wsctx *c)
{
	struct pr_ws *w;

	if (!c)
		return;
	/* Connections left over go with their context; detached first, as
	 * lws_context_destroy runs CLIENT_CLOSED for open sockets. */
	while ((w = c->conns)) {
		c->conns = w->next;
		ws_destroy(w);
	}
	lws_sul_cancel(&c->deadline);
	lws_context_destroy(c->lws);
	free(c);
}

/* Percent-escapes all but RFC 3986 unreserved characters. */
static void
escape(struct pr_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
			pr_buf_addc(b, (char)*p);
		} else {
			pr_buf_addc(b, '%');
			pr_buf_addc(b, hex[*p >> 4]);
			pr_buf_addc(b, hex[*p & 15]);
		}
	}
}

/* http://host[:port][/prefix] or https://…, with [v6] hosts. 0 or -1. */
static int
parse_base(struct pr_ws *w, const char *base, const char *client_id)
{
	const char *p, *hs, *he, *ps;
	struct pr_buf path = PR_BUF_INIT;
	size_t plen;
	long port;
	char *end;

	if (strncmp(base, "http://", 7) == 0) {
		p = base + 7;
		w->tls = false;
		port = 80;
	} else if (strncmp(base, "https://", 8) == 0) {
		p = base + 8;
		w->tls = true;
		port = 443;
	} else {
		return -1;
	}
	if (*p == '[') {
		hs = p + 1;
		if (!(he = strchr(hs, ']')))
			return -1;
		p = he + 1;
	} else {
		hs = p;
		p += strcspn(p, ":/?#");
		he = p;
	}
	if (he == hs)
		return -1;
	if (*p == ':') {
		port = strtol(p + 1, &end, 10);
		if (end == p + 1 || port < 1 || port > 65535)
			return -1;
		p = end;
	}
	if (*p && *p != '/')
		return -1;
	ps = p;
	plen = strcspn(ps, "?#");
	if (ps[plen])
		return -1;
	while (plen && ps[plen - 1] == '/')
		plen--;
	w->address = pr_xstrndup(hs, (size_t)(he - hs));
	w->port = (int)port;
	/* Host with the port, as the server's Origin check compares it. */
	w->host = strchr(w->address, ':') ?
	    pr_xasprintf("[%s]:%ld", w->address, port) :
	    pr_xasprintf("%s:%ld", w->address, port);
	pr_buf_add(&path, ps, plen);
	pr_buf_adds(&path, "/ws?clientId=");
	escape(&path, client_id);
	w->path = pr_buf_steal(&path);
	return 0;
}

struct pr_ws *
pr_ws_new(struct pr_wsctx *c, const char *base, const char *client_id)
{
	struct pr_ws *w = pr_xcalloc(1, sizeof *w);

	w->ctx = c;
	w->state = PR_WS_DOWN;
	w->rx.max = MAX_MESSAGE;
	w->rx.keep = KEEP_RX;
	snprintf(w->error, sizeof w->error, "not connected");
	if (parse_base(w, base, client_id) < 0) {
		free(w->address);
		free(w->host);
		free(w);
		return NULL;
	}
	w->next = c->conns;
	c->conns = w;
	return w;
}

static int
start_connect(struct pr_ws *w)
{
	struct lws_client_connect_info i;
	struct lws *wsi;

	w->reconnect = false;
	w->rx.too_big = w->by_us = w->peer_closed = w->want_close = false;
	w->peer_code = 0;
	memset(&i, 0, sizeof i);
	i.context = w->ctx->lws;
	i.address = w->address;
	i.port = w->port;
	i.path = w->path;
	i.host = w->host;             /* NULL would send "Host: (null)" */
	i.origin = NULL;              /* no Origin: nothing to mismatch */
	i.protocol = NULL;            /* no subprotocol, as ComfyUI */
	i.local_protocol_name = "pr-ws";
	i.ssl_connection = w->tls ? LCCSCF_USE_SSL : 0;
	i.retry_and_idle_policy = &w->ctx->retry;
	i.userdata = w;
	/* No pwsi: lws would keep writing through it, and w->wsi is kept
	 * from the callbacks and the return value instead. */
	set_state(w, PR_WS_CONNECTING);
	w->in_connect = true;
	wsi = lws_client_connect_via_info(&i);
	w->in_connect = false;
	if (w->state != PR_WS_CONNECTING)
		return w->state == PR_WS_DOWN ? -1 : 0;
	if (!wsi) {
		/* Failed inside the call (such as a name that does not
		 * resolve): lws gives no CONNECTION_ERROR then. */
		char why[sizeof w->error];

		snprintf(why, sizeof why, "cannot connect to %s", w->host);
		go_down(w, why);
		return -1;
	}
	w->wsi = wsi;
	return 0;
}

int
pr_ws_connect(struct pr_ws *w)
{
	switch (w->state) {
	case PR_WS_UP:
	case PR_WS_CONNECTING:
		return 0;
	case PR_WS_CLOSING:
		/* The server unregisters a client id when its old socket goes,
		 * even if a new one took the id meanwhile (COMFYUI-PROTOCOL.md
		 * §11): connect only once the old socket is gone. */
		w->reconnect = true;
		return 0;
	case PR_WS_DOWN:
		break;
	}
	return start_connect(w);
}

void
pr_ws_close(struct pr_ws *w)
{
	w->reconnect = false;
	switch (w->state) {
	case PR_WS_DOWN:
	case PR_WS_CLOSING:
		return;
	case PR_WS_CONNECTING:
		/* No WebSocket yet to send a close frame on. */
		abandon(w);
		w->by_us = true;
		go_down(w, "closed by us");
		return;
	case PR_WS_UP:
		start_close(w, LWS_CLOSE_STATUS_NORMAL);
		return;
	}
}

enum pr_ws_state
pr_ws_state(const struct pr_ws *w)
{
	return w->state;
}

const char *
pr_ws_error(const struct pr_ws *w)
{
	return w->error;
}

unsigned
pr_ws_connections(const struct pr_ws *w)
{
	return w->connections;
}

static void
on_deadline(lws_sorted_usec_list_t *sul)
{
	struct pr_wsctx *c = lws_container_of(sul, struct pr_wsctx, deadline);

	c->deadline_hit = true;
	/* Timers run before poll(): without this poll would sleep on. */
	lws_cancel_service(c->lws);
}

/* Connections that waited for their old socket to go. Outside callbacks,
 * so connecting cannot re-enter lws from inside itself. */
static void
reconnects(struct pr_wsctx *c)
{
	struct pr_ws *w;

	for (w = c->conns; w; w = w->next)
		if (w->reconnect && w->state == PR_WS_DOWN)
			start_connect(w);
}

void
pr_ws_run(struct pr_wsctx *c, int ms)
{
	struct pr_ws *w;

	c->news = false;
	reconnects(c);
	/* With a message already waiting there is no reason to wait, but
	 * one pass still keeps the sockets serviced. */
	for (w = c->conns; w; w = w->next)
		if (w->head)
			ms = 0;
	if (ms < 0)
		ms = 0;
	/* lws_service ignores its timeout (LIBS-NOTES.md §1): our own
	 * deadline, as an lws timer, bounds the wait. */
	c->deadline_hit = false;
	lws_sul_schedule(c->lws, 0, &c->deadline, on_deadline, (lws_usec_t)ms * 1000);
	do {
		if (lws_service(c->lws, 0) < 0)
			break;
		reconnects(c);
	} while (!c->deadline_hit && !c->news);
	lws_sul_cancel(&c->deadline);
}

cJSON *
pr_ws_next(struct pr_ws *w)
{
	struct msg *m = w->head;
	cJSON *v;

	if (!m)
		return NULL;
	w->head = m->next;
	if (!w->head)
		w->tail = NULL;
	v = m->v;
	free(m);
	return v;
}

void
pr_ws_free(struct pr_ws *w)
{
	struct pr_ws **pp;

	if (!w)
		return;
	for (pp = &w->ctx->conns; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	ws_destroy(w);
}
