/*
 * fake-comfyui: a stand-in for a ComfyUI 0.3.64 server that speaks its
 * HTTP and WebSocket protocol as recorded (../shared/reference/
 * COMFYUI-PROTOCOL.md), validates prompts as it does, and "executes" them
 * by evaluating the graph on identity-coded frames instead of a GPU.
 *
 * Threads: the main thread runs the libwebsockets loop and is the only one
 * that calls lws; one worker thread executes prompts, like ComfyUI's. They
 * share struct server under its mutex; the worker hands WebSocket messages
 * to the main thread through an outbox and lws_cancel_service().
 */
#ifndef FAKE_H
#define FAKE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pr.h"

struct lws_context;
struct lws;

/* ---- settings ---- */

struct settings {
	const char *listen;
	int port;
	char *root;             /* absolute; holds input/ output/ temp/ models/ */
	int frame_scale;        /* frames are drawn at 1/scale of their size */
	long max_upload;        /* bytes; ComfyUI's default is 100 MiB */
	double node_time;       /* seconds of "GPU time" for every node */
	cJSON *class_time;      /* {"ClassName": seconds} overriding node_time */
	double step_time;       /* seconds per sampler step */
	double load_time;       /* seconds to load a different model */
};

/* ---- WebSocket messages from any thread ---- */

enum msg_to { TO_CLIENT, TO_ALL, TO_SOCKET };

/* Queues a message for delivery by the main thread. TO_CLIENT goes to the
 * socket registered under client (dropped when there is none at delivery:
 * ComfyUI buffers nothing); TO_ALL to every registered socket. data is
 * consumed. The JSON is {"type": type, "data": data}. */
void ws_send(const char *type, cJSON *data, enum msg_to to, const char *client);
/* Binary frame (event id + payload), same rules. */
void ws_send_binary(const void *bytes, size_t len, enum msg_to to, const char *client);
/* Drops every WebSocket (or those of one client) without a close frame,
 * as a dying server does. */
void ws_drop(const char *client);
/* Main thread: move the outbox into the sockets' queues. */
void ws_deliver(void);

/* ---- the shared state (state.c) ---- */

/* A queued or running prompt: ComfyUI's queue tuple. */
struct item {
	char *number_text;      /* as ComfyUI prints it: 3, -26, 2.5, -100.0 */
	double number;
	char *prompt_id;
	cJSON *prompt;          /* the graph */
	cJSON *extra_data;
	cJSON *outputs;         /* ids of the outputs to execute */
	char *client_id;        /* NULL: nobody gets execution messages */
	unsigned generation;    /* server "life" it was queued in */
};

struct server {
	pthread_mutex_t lock;
	pthread_cond_t wake;    /* the worker waits on it for work */
	struct settings set;
	cJSON *facts;           /* node facts: built-in or --nodes */

	struct item **pending;  /* unordered; the worker takes the least */
	size_t npending, cap;
	struct item *running;
	char *running_node;     /* display node now executing, or NULL */
	unsigned long counter;  /* next queue number */
	cJSON *history;         /* {prompt_id: entry} in insertion order */
	bool interrupt;         /* ComfyUI's interrupt flag */
	bool free_memory;       /* POST /free asked to reset the cache */
	unsigned generation;    /* bumped by a simulated restart */
	double down_until;      /* a restart in progress: refuse connections */
	bool stop;

	/* what the control endpoint reports */
	cJSON *posts;           /* every POST received */
	cJSON *runs;            /* every prompt executed */
	cJSON *loads;           /* model loads */
	char *loaded_model;
	unsigned long executed; /* prompts started since start (for faults) */
	cJSON *faults;          /* armed faults */
	double t0;              /* start time (monotonic seconds) */
};

extern struct server S;

int64_t wall_ms(void);      /* epoch milliseconds, ComfyUI's timestamps */

void state_init(void);
/* Everything below: call with S.lock held. */
void queue_push(struct item *it);
struct item *queue_pop(void);          /* least (number, prompt_id), or NULL */
int queue_remaining(void);             /* pending + running */
void item_free(struct item *it);
void history_put(const char *prompt_id, cJSON *entry);
void broadcast_status(void);           /* status{queue_remaining} to all */
/* Simulated restart: queue, history, cache and counter gone, sockets
 * dropped, connections refused for down seconds. Files stay. */
void server_restart(double down);

/* ---- the node facts as served (schema.c) ---- */

/* /object_info: the facts with file combos filled from the root's folders
 * and our x- keys removed. A new tree each call (folders change). */
cJSON *object_info(void);
/* Whether folder/path exists under the root ("cwd" = the root itself). */
bool root_file_exists(const char *folder, const char *path);

/* ---- faults (faults.c) ---- */

/* Adds fault rules (an object or an array of them); 0, or -1 with why. */
int faults_add(const cJSON *spec, char *why, size_t whylen);
/* An HTTP fault for this request, or NULL: the caller owns the copy. */
cJSON *fault_for_route(const char *method, const char *path);
/* An execution fault of this kind for this prompt and node, or NULL. */
cJSON *fault_for_node(const char *kind, unsigned long prompt_no,
    const char *prompt_id, const char *node, const char *class_type);
/* Time-triggered faults that are due: fires them. Main thread. */
void faults_tick(void);

/* ---- execution (exec.c) ---- */

void *worker_main(void *arg);
/* Forgets every cached node result (restart, POST /free). */
void cache_clear(void);

/* ---- HTTP (http.c, routes.c) ---- */

struct request {
	const char *method;     /* "GET", "POST" */
	const char *path;       /* without /api prefix and query */
	struct lws *wsi;
	const char *body;       /* POST */
	size_t body_len;
	/* multipart uploads (routes decide what the fields mean) */
	const char *upload_name;     /* the file part's filename, or NULL */
	const char *upload_path;     /* where its bytes were spooled */
	long upload_size;
	const char *form[4];         /* overwrite, type, subfolder, original_ref */
};

struct response {
	int status;
	const char *content_type;
	struct pr_buf body;
	char *file;             /* serve this file instead of body */
	char *disposition;      /* Content-Disposition value */
	bool close;             /* drop the connection without answering */
	double delay;           /* answer this many seconds later */
	/* An http fault's lie about the body (fake-comfyui(1)), sent as it
	 * is made, never held whole: */
	bool shaped;            /* any of the four below was asked for */
	int64_t pad_to;         /* a body of this many bytes; -1: as answered */
	bool endless;           /* a body that never ends */
	int64_t length;         /* Content-Length sent: >= 0, or LENGTH_* */
	double rate;            /* bytes a second; 0: as fast as it is read */
};

#define LENGTH_TRUE (-1)    /* the length of what is sent (none if endless) */
#define LENGTH_NONE (-2)    /* no Content-Length: the close ends the body */
#define LENGTH_ANSWER (-3)  /* the length of the real answer, whatever is sent */

/* The value of query argument name, or NULL. */
const char *query_arg(struct lws *wsi, const char *name, char *buf, size_t len);
void respond_json(struct response *r, int status, const cJSON *v);
void respond_text(struct response *r, int status, const char *text);
void route(struct request *q, struct response *r);

/* The lws context, for lws_cancel_service() from other threads. */
extern struct lws_context *CTX;

#endif
