/*
 * Whole WebSocket messages from the fragments lws hands wsclient.c, kept
 * apart from the socket so tests/fuzz/fuzz-ws.c can drive it alone.
 * Internal to wsclient.c: no tool includes this.
 */
#ifndef PR_WSMSG_H
#define PR_WSMSG_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "json.h"

struct pr_wsmsg {
	size_t max;             /* longest text message taken */
	size_t keep;            /* a buffer grown past this is freed after its message */
	struct pr_buf buf;      /* the text message being received */
	bool binary;            /* the message being received is binary */
	bool too_big;           /* one went over max: nothing more is taken */
};

/*
 * One fragment, with lws's flags: first and final fragment of its
 * message, binary (only read on a first fragment). 1 and the message in
 * *out (a JSON value the caller owns) when it completes a text message
 * that parses; -1 when it takes a text message over max (too_big is set,
 * the buffer freed); else 0. Binary messages and text that is not JSON
 * give 0.
 */
int pr_wsmsg_add(struct pr_wsmsg *m, bool first, bool final, bool binary,
    const void *in, size_t len, cJSON **out);

#endif
