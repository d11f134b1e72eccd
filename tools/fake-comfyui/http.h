#ifndef FAKE_HTTP_H
#define FAKE_HTTP_H

#include <libwebsockets.h>

/* The one protocol: HTTP and WebSocket on one port. */
extern const struct lws_protocols http_protocols[];

#endif
