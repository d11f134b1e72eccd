/* Between the lws callback (http.c) and the session code (ws.c). Main
 * thread only. */
#ifndef FAKE_WS_H
#define FAKE_WS_H

#include <stdbool.h>
#include <stddef.h>

#include "fake.h"

struct session;

/* A socket was upgraded: register it under its clientId (or a made-up
 * sid) and greet it as ComfyUI does. */
struct session *ws_open(struct lws *wsi);
/* Text from the client: only the first message counts. */
void ws_receive(struct session *s, const void *in, size_t len, bool final);
/* Sends one queued message; -1 closes the connection. */
int ws_writeable(struct session *s);
void ws_close(struct session *s);
/* Queues a message for this socket alone. data is consumed. */
void ws_send_to(struct session *s, const char *type, cJSON *data);
/* Open sockets, for the control endpoint. */
int ws_connected(void);

/* A SaveImageWebsocket image: event 4 with metadata for sockets that
 * negotiated it, event 1 for the others. */
void ws_send_preview(const char *node, const char *prompt_id, const void *png,
    size_t len, enum msg_to to, const char *client);

#endif
