/*
 * ws-record: a WebSocket client for tests. Connects to ComfyUI's /ws,
 * prints every message as one JSON line, in the shape of the recordings
 * in ../shared/reference/comfyui-captures/:
 *
 *   {"t": seconds, "text": {type, data}}
 *   {"t": seconds, "binary": {"event", "len", "fmt" | "meta" | "node"+"text"}}
 *   {"t": seconds, "close_frame": code}   (the server sent a close frame)
 *   {"t": seconds, "closed": "why"}
 *
 * and stops at the end of a prompt, a message type, a count, the close or
 * a timeout (exit 0, except 1 on timeout or a failed connection).
 *
 *   ws-record --port P [--client-id ID] [--send JSON] [--until-end PROMPT_ID]
 *             [--until-type TYPE] [--count N] [--timeout SECONDS]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include "pr.h"

static struct lws_context *ctx;
static struct lws *conn;
static const char *send_first, *until_end, *until_type;
static long count = -1, seen;
static int done, failed, timed_out;
static double t0;
static struct pr_buf rx;
static lws_sorted_usec_list_t deadline;

static double
elapsed(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - t0;
}

static void
line(const char *key, cJSON *v)
{
	cJSON *rec = pr_json_object();
	char *s;

	pr_json_set(rec, "t", cJSON_CreateNumber((double)(long)(elapsed() * 1000) / 1000));
	pr_json_set(rec, key, v);
	s = pr_json_print(rec, 0);
	printf("%s\n", s);
	fflush(stdout);
	free(s);
	cJSON_Delete(rec);
	seen++;
	if (count > 0 && seen >= count)
		done = 1;
}

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
binary(const unsigned char *p, size_t n)
{
	cJSON *b = pr_json_object(), *meta;
	struct pr_json_error e;
	uint32_t ev, k;

	ev = n >= 4 ? be32(p) : 0;
	pr_json_set_int(b, "event", ev);
	pr_json_set_int(b, "len", (int64_t)n);
	if (ev == 1 && n >= 8) {
		pr_json_set_int(b, "fmt", be32(p + 4));
	} else if (ev == 4 && n >= 8 && (k = be32(p + 4)) <= n - 8) {
		if ((meta = pr_json_parse((const char *)p + 8, k, &e, NULL)))
			pr_json_set(b, "meta", meta);
	} else if (ev == 3 && n >= 8 && (k = be32(p + 4)) <= n - 8) {
		char *node = pr_xstrndup((const char *)p + 8, k);
		char *text = pr_xstrndup((const char *)p + 8 + k, n - 8 - k);

		pr_json_set_string(b, "node", node);
		pr_json_set_string(b, "text", text);
		free(node);
		free(text);
	}
	line("binary", b);
}

static void
text(const char *s, size_t n)
{
	struct pr_json_error e;
	cJSON *msg = pr_json_parse(s, n, &e, NULL), *data;
	const char *type;

	if (!msg) {
		line("text", pr_json_string("(not JSON)"));
		return;
	}
	type = pr_json_get_string(msg, "type");
	data = pr_json_get(msg, "data");
	if (type && until_type && strcmp(type, until_type) == 0)
		done = 1;
	if (type && until_end && strcmp(type, "executing") == 0 &&
	    cJSON_IsNull(pr_json_get(data, "node")) &&
	    pr_json_get_string(data, "prompt_id") &&
	    strcmp(pr_json_get_string(data, "prompt_id"), until_end) == 0)
		done = 1;
	line("text", msg);
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	unsigned char buf[LWS_PRE + 65536];
	size_t n;

	(void)user;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		fprintf(stderr, "ws-record: cannot connect: %s\n", in ? (char *)in : "?");
		failed = 1;
		conn = NULL;
		lws_cancel_service(ctx);
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (send_first)
			lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (!send_first)
			return 0;
		n = strlen(send_first);
		if (n > 65536)
			n = 65536;
		memcpy(buf + LWS_PRE, send_first, n);
		send_first = NULL;
		return lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT) < (int)n ? -1 : 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (lws_is_first_fragment(wsi))
			pr_buf_reset(&rx);
		pr_buf_add(&rx, in, len);
		if (!lws_is_final_fragment(wsi))
			return 0;
		if (lws_frame_is_binary(wsi))
			binary((const unsigned char *)rx.data, rx.len);
		else
			text(rx.data, rx.len);
		if (done)
			lws_cancel_service(ctx);
		return 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		/* A server that dies sends none of these. */
		line("close_frame", pr_json_int(len >= 2 ? ((unsigned char *)in)[0] << 8 |
		    ((unsigned char *)in)[1] : 0));
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
		/* Our own shutdown (done, or out of time) is no news. */
		if (!done && !timed_out)
			line("closed", pr_json_string("Connection to remote host was lost."));
		done = 1;
		conn = NULL;
		lws_cancel_service(ctx);
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
	{ "comfy", callback, 0, 65536, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static void
on_deadline(lws_sorted_usec_list_t *s)
{
	(void)s;
	timed_out = 1;
	lws_cancel_service(ctx);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "client-id", required_argument, NULL, 'c' },
		{ "send", required_argument, NULL, 's' },
		{ "until-end", required_argument, NULL, 'e' },
		{ "until-type", required_argument, NULL, 'y' },
		{ "count", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	/* Only a PONG counts as alive: ping often enough for long tests. */
	static const lws_retry_bo_t retry = { .secs_since_valid_ping = 60,
		.secs_since_valid_hangup = 120 };
	struct lws_context_creation_info info;
	struct lws_client_connect_info ci;
	const char *client = NULL;
	char path[512], host[64];
	int port = 0, c;
	double timeout = 20;

	pr_init(argv[0]);
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': port = atoi(optarg); break;
		case 'c': client = optarg; break;
		case 's': send_first = optarg; break;
		case 'e': until_end = optarg; break;
		case 'y': until_type = optarg; break;
		case 'n': count = atol(optarg); break;
		case 't': timeout = atof(optarg); break;
		default: return 2;
		}
	}
	if (!port) {
		fprintf(stderr, "usage: ws-record --port P [--client-id ID] ...\n");
		return 2;
	}
	t0 = elapsed();
	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof info);
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.fd_limit_per_thread = 16;
	if (!(ctx = lws_create_context(&info)))
		return 1;
	snprintf(path, sizeof path, client ? "/ws?clientId=%s" : "/ws", client);
	snprintf(host, sizeof host, "127.0.0.1:%d", port);
	memset(&ci, 0, sizeof ci);
	ci.context = ctx;
	ci.address = "127.0.0.1";
	ci.port = port;
	ci.path = path;
	ci.host = host;
	ci.origin = NULL;
	ci.local_protocol_name = "comfy";
	ci.retry_and_idle_policy = &retry;
	ci.pwsi = &conn;
	if (!lws_client_connect_via_info(&ci))
		failed = 1;
	lws_sul_schedule(ctx, 0, &deadline, on_deadline, (lws_usec_t)(timeout * 1e6));
	while (!done && !failed && !timed_out)
		if (lws_service(ctx, 0) < 0)
			break;
	lws_sul_cancel(&deadline);
	lws_context_destroy(ctx);
	pr_buf_free(&rx);
	if (timed_out)
		fprintf(stderr, "ws-record: timed out after %g s\n", timeout);
	return failed || timed_out ? 1 : 0;
}
