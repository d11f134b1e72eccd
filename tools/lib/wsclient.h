/*
 * WebSocket clients (libwebsockets 4.1.6) for ComfyUI's /ws: one lws
 * context for the process, one connection per server. Messages are
 * collected whole and handed out one by one; the caller runs the loop
 * between its other work (LIBS-NOTES.md §1: lws_service ignores its
 * timeout, so pr_ws_run keeps its own deadline). Client pings keep proxies
 * from cutting an idle socket, and a peer that stops answering them is
 * declared dead.
 */
#ifndef PR_WSCLIENT_H
#define PR_WSCLIENT_H

#include <stdbool.h>

#include "json.h"

struct pr_wsctx;
struct pr_ws;

enum pr_ws_state {
	PR_WS_DOWN,         /* not connected (never, or lost: see pr_ws_error) */
	PR_WS_CONNECTING,
	PR_WS_UP,
	PR_WS_CLOSING,      /* our close handshake under way */
};

/* ping_secs (clamped to 1..30000): send a ping after that much time
 * without a pong; the connection is declared dead after twice that. NULL
 * if lws cannot make a context. */
struct pr_wsctx *pr_wsctx_new(int ping_secs);
void pr_wsctx_free(struct pr_wsctx *c);

/* base is the server's http(s) URL; the socket goes to ws(s)://…/ws?
 * clientId=client_id with no Origin header. Created DOWN. NULL when base
 * is not http(s)://host[:port][/prefix]. */
struct pr_ws *pr_ws_new(struct pr_wsctx *c, const char *base, const char *client_id);
/* Starts connecting unless UP or CONNECTING; while CLOSING it connects
 * once the old socket is gone (a reused clientId must not race its old
 * socket). 0, or -1 with pr_ws_error. */
int pr_ws_connect(struct pr_ws *w);
/* Starts a clean close (close frame, then wait for the peer's). */
void pr_ws_close(struct pr_ws *w);
enum pr_ws_state pr_ws_state(const struct pr_ws *w);
/* Why it went DOWN last: "not connected", "connection refused",
 * "handshake refused: HTTP 403", "cannot connect: ...", "closed by us",
 * "closed by peer (code N)", "connection lost", "no pong", "message over
 * 64 MiB". Our close waits at most 5 s for the peer's. */
const char *pr_ws_error(const struct pr_ws *w);
/* Times it went UP (the first connection is 1). */
unsigned pr_ws_connections(const struct pr_ws *w);

/* Services every connection of the context for at most ms milliseconds,
 * returning early when some connection has a message waiting or changed
 * state (at once, after one non-blocking pass, if one already waits). */
void pr_ws_run(struct pr_wsctx *c, int ms);
/* The next whole text message, or NULL: any JSON value (ComfyUI sends
 * {type, data} objects; text that is not JSON is dropped). Binary frames
 * are dropped; so are messages over 64 MiB (the connection is closed).
 * The caller owns the result. */
cJSON *pr_ws_next(struct pr_ws *w);
/* Frees the connection (closing it without waiting if still open). Not
 * after pr_wsctx_free, which frees connections still open itself. */
void pr_ws_free(struct pr_ws *w);

#endif
