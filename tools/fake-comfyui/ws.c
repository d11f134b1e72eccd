/*
 * WebSocket sessions and message delivery.
 *
 * ComfyUI keeps sockets in a dict keyed by client id: a second socket with
 * the same id replaces the first, and when the first one closes its
 * cleanup pops the id, unregistering the second (a server bug a client
 * must live with: COMFYUI-PROTOCOL.md §11). Messages go to the socket
 * registered at the moment of sending, or nowhere: nothing is buffered
 * for a client that is not connected. This file reproduces all of that.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <libwebsockets.h>

#include "fake.h"
#include "ws.h"

struct wsmsg {
	struct wsmsg *next;
	bool binary;
	size_t len;
	unsigned char *buf;      /* LWS_PRE bytes of headroom, then the payload */
};

struct session {
	struct lws *wsi;
	char *client_id;
	struct wsmsg *head, *tail;
	bool meta_previews;      /* negotiated supports_preview_metadata */
	bool first_seen;         /* ComfyUI reads only the first message */
	bool dropping;           /* to be cut off once what was sent is out */
	struct pr_buf rx;
	struct session *next;    /* all open sessions */
};

/* The registry: what ComfyUI's sockets dict holds. Main thread only. */
struct entry {
	char *client_id;
	struct session *s;
};

static struct entry *reg;
static size_t nreg, capreg;
static struct session *all;

/* The outbox: filled by any thread, emptied by the main thread. */
enum ob_kind { OB_MSG, OB_PREVIEW, OB_DROP };

struct outbox {
	struct outbox *next;
	enum ob_kind kind;
	enum msg_to to;
	char *client;
	bool binary;
	unsigned char *payload;
	size_t len;
	char *meta;              /* OB_PREVIEW: the metadata JSON of event 4 */
};

static pthread_mutex_t ob_lock = PTHREAD_MUTEX_INITIALIZER;
static struct outbox *ob_head, *ob_tail;

/* ComfyUI sends json.dumps(message). */
static char *
python_json(const cJSON *msg)
{
	struct pr_buf b = PR_BUF_INIT;

	pr_python_json(&b, msg);
	return pr_buf_steal(&b);
}

static void
ob_push(struct outbox *o)
{
	pthread_mutex_lock(&ob_lock);
	if (ob_tail)
		ob_tail->next = o;
	else
		ob_head = o;
	ob_tail = o;
	pthread_mutex_unlock(&ob_lock);
	if (CTX)
		lws_cancel_service(CTX);
}

static struct outbox *
ob_new(enum ob_kind kind, enum msg_to to, const char *client)
{
	struct outbox *o = pr_xcalloc(1, sizeof *o);

	o->kind = kind;
	o->to = to;
	o->client = client ? pr_xstrdup(client) : NULL;
	return o;
}

void
ws_send(const char *type, cJSON *data, enum msg_to to, const char *client)
{
	struct outbox *o = ob_new(OB_MSG, to, client);
	cJSON *msg = pr_json_object();

	pr_json_set_string(msg, "type", type);
	pr_json_set(msg, "data", data);
	o->payload = (unsigned char *)python_json(msg);
	o->len = strlen((char *)o->payload);
	cJSON_Delete(msg);
	ob_push(o);
}

void
ws_send_binary(const void *bytes, size_t len, enum msg_to to, const char *client)
{
	struct outbox *o = ob_new(OB_MSG, to, client);

	o->binary = true;
	o->payload = pr_xmalloc(len);
	memcpy(o->payload, bytes, len);
	o->len = len;
	ob_push(o);
}

void
ws_send_preview(const char *node, const char *prompt_id, const void *png, size_t len,
    enum msg_to to, const char *client)
{
	struct outbox *o = ob_new(OB_PREVIEW, to, client);
	cJSON *meta = pr_json_object();

	pr_json_set_string(meta, "node_id", node);
	pr_json_set_string(meta, "prompt_id", prompt_id);
	pr_json_set_string(meta, "display_node_id", node);
	pr_json_set(meta, "parent_node_id", cJSON_CreateNull());
	pr_json_set_string(meta, "real_node_id", node);
	pr_json_set_string(meta, "image_type", "image/png");
	o->meta = pr_json_print(meta, 0);
	cJSON_Delete(meta);
	o->payload = pr_xmalloc(len);
	memcpy(o->payload, png, len);
	o->len = len;
	ob_push(o);
}

void
ws_drop(const char *client)
{
	ob_push(ob_new(OB_DROP, TO_ALL, client));
}

static void
ob_free(struct outbox *o)
{
	free(o->client);
	free(o->payload);
	free(o->meta);
	free(o);
}

/* ---- main thread ---- */

static void
put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void
enqueue(struct session *s, const unsigned char *p, size_t len, bool binary)
{
	struct wsmsg *m = pr_xcalloc(1, sizeof *m);

	m->binary = binary;
	m->len = len;
	m->buf = pr_xmalloc(LWS_PRE + len);
	memcpy(m->buf + LWS_PRE, p, len);
	if (s->tail)
		s->tail->next = m;
	else
		s->head = m;
	s->tail = m;
	lws_callback_on_writable(s->wsi);
}

/* A preview as this socket asked for it: event 4 with metadata, or the
 * legacy event 1 (format 2 = PNG). */
static void
enqueue_preview(struct session *s, const struct outbox *o)
{
	size_t mlen = strlen(o->meta), len;
	unsigned char *p;

	if (s->meta_previews) {
		len = 8 + mlen + o->len;
		p = pr_xmalloc(len);
		put_be32(p, 4);
		put_be32(p + 4, (uint32_t)mlen);
		memcpy(p + 8, o->meta, mlen);
		memcpy(p + 8 + mlen, o->payload, o->len);
	} else {
		len = 8 + o->len;
		p = pr_xmalloc(len);
		put_be32(p, 1);
		put_be32(p + 4, 2);
		memcpy(p + 8, o->payload, o->len);
	}
	enqueue(s, p, len, true);
	free(p);
}

static struct entry *
lookup(const char *client_id)
{
	size_t i;

	for (i = 0; i < nreg; i++)
		if (strcmp(reg[i].client_id, client_id) == 0)
			return &reg[i];
	return NULL;
}

static void
deliver_one(struct session *s, const struct outbox *o)
{
	if (s->dropping)
		return;
	if (o->kind == OB_PREVIEW)
		enqueue_preview(s, o);
	else
		enqueue(s, o->payload, o->len, o->binary);
}

/* The TCP connection ends with no close frame, like a killed server's;
 * lws then closes the wsi and CLOSED runs. */
static void
cut(struct session *s)
{
	shutdown(lws_get_socket_fd(s->wsi), SHUT_RDWR);
	lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_ACK, LWS_TO_KILL_ASYNC);
}

/* What the server sent before it "died" still reaches the client. */
static void
drop_sessions(const char *client)
{
	struct session *s;

	for (s = all; s; s = s->next) {
		if (client && strcmp(client, s->client_id) != 0)
			continue;
		s->dropping = true;
		if (!s->head)
			cut(s);
	}
}

void
ws_deliver(void)
{
	struct outbox *o, *next;
	struct entry *e;
	size_t i;

	pthread_mutex_lock(&ob_lock);
	o = ob_head;
	ob_head = ob_tail = NULL;
	pthread_mutex_unlock(&ob_lock);
	for (; o; o = next) {
		next = o->next;
		if (o->kind == OB_DROP) {
			drop_sessions(o->client);
		} else if (o->to == TO_ALL) {
			for (i = 0; i < nreg; i++)
				deliver_one(reg[i].s, o);
		} else if (o->client && (e = lookup(o->client))) {
			deliver_one(e->s, o);
		}
		ob_free(o);
	}
}

/* 32 hex digits, like the session id aiohttp's ComfyUI makes up. */
static void
make_sid(char out[33])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[16];
	int i;

	if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
		for (i = 0; i < 16; i++)
			r[i] = (unsigned char)(rand() & 0xff);
	for (i = 0; i < 16; i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[32] = '\0';
}

struct session *
ws_open(struct lws *wsi)
{
	struct session *s = pr_xcalloc(1, sizeof *s);
	char buf[512], sid[33];
	const char *id;
	struct entry *e;
	cJSON *data, *st, *ei;

	s->wsi = wsi;
	id = lws_get_urlarg_by_name(wsi, "clientId=", buf, sizeof buf);
	if (!id || !*id) {
		make_sid(sid);
		id = sid;
	}
	s->client_id = pr_xstrdup(id);
	s->next = all;
	all = s;
	/* sockets[sid] = ws: replaces whatever was registered under it. */
	if ((e = lookup(s->client_id))) {
		e->s = s;
	} else {
		if (nreg == capreg) {
			capreg = capreg ? capreg * 2 : 16;
			reg = pr_xrealloc(reg, capreg * sizeof *reg);
		}
		reg[nreg].client_id = pr_xstrdup(s->client_id);
		reg[nreg].s = s;
		nreg++;
	}

	pthread_mutex_lock(&S.lock);
	data = pr_json_object();
	st = pr_json_object();
	ei = pr_json_object();
	pr_json_set_int(ei, "queue_remaining", queue_remaining());
	pr_json_set(st, "exec_info", ei);
	pr_json_set(data, "status", st);
	pr_json_set_string(data, "sid", s->client_id);
	ws_send_to(s, "status", data);
	/* A client reconnecting while its prompt runs learns the current
	 * node, without prompt_id or display_node (as recorded). */
	if (S.running && S.running->client_id && S.running_node &&
	    strcmp(S.running->client_id, s->client_id) == 0) {
		data = pr_json_object();
		pr_json_set_string(data, "node", S.running_node);
		ws_send_to(s, "executing", data);
	}
	pthread_mutex_unlock(&S.lock);
	return s;
}

void
ws_send_to(struct session *s, const char *type, cJSON *data)
{
	cJSON *msg = pr_json_object();
	char *text;

	pr_json_set_string(msg, "type", type);
	pr_json_set(msg, "data", data);
	text = python_json(msg);
	enqueue(s, (unsigned char *)text, strlen(text), false);
	free(text);
	cJSON_Delete(msg);
}

void
ws_receive(struct session *s, const void *in, size_t len, bool final)
{
	struct pr_json_error e;
	const char *type;
	cJSON *msg, *reply;

	if (s->first_seen)
		return;
	/* A hostile first message cannot make us hold much. */
	if (s->rx.len + len <= 65536)
		pr_buf_add(&s->rx, in, len);
	if (!final)
		return;
	s->first_seen = true;
	msg = pr_json_parse(s->rx.data ? s->rx.data : "", s->rx.len, &e, NULL);
	pr_buf_free(&s->rx);
	type = pr_json_get_string(msg, "type");
	if (type && strcmp(type, "feature_flags") == 0) {
		s->meta_previews = cJSON_IsTrue(pr_json_get(pr_json_get(msg, "data"),
		    "supports_preview_metadata"));
		reply = pr_json_object();
		pr_json_set(reply, "supports_preview_metadata", cJSON_CreateBool(true));
		pr_json_set_int(reply, "max_upload_size", S.set.max_upload);
		ws_send_to(s, "feature_flags", reply);
	}
	cJSON_Delete(msg);
}

int
ws_writeable(struct session *s)
{
	struct wsmsg *m = s->head;
	int n;

	if (!m)
		return 0;
	n = lws_write(s->wsi, m->buf + LWS_PRE, m->len,
	    m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
	if (n < (int)m->len)
		return -1;
	s->head = m->next;
	if (!s->head)
		s->tail = NULL;
	free(m->buf);
	free(m);
	if (s->head)
		lws_callback_on_writable(s->wsi);
	else if (s->dropping)
		cut(s);
	return 0;
}

void
ws_close(struct session *s)
{
	struct session **pp;
	struct wsmsg *m;
	struct entry *e;

	if (!s)
		return;
	/* sockets.pop(sid): by id, whichever socket is registered now. */
	if ((e = lookup(s->client_id))) {
		free(e->client_id);
		*e = reg[--nreg];
	}
	for (pp = &all; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	while ((m = s->head)) {
		s->head = m->next;
		free(m->buf);
		free(m);
	}
	pr_buf_free(&s->rx);
	free(s->client_id);
	free(s);
}

int
ws_connected(void)
{
	struct session *s;
	int n = 0;

	for (s = all; s; s = s->next)
		n++;
	return n;
}
