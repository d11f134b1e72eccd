/*
 * What flows between nodes, and the node implementations. Values are
 * reference-counted and never changed once made: a node makes new ones.
 * Frames carry the identity code of the source frame they show (see
 * frameid.h), so where every frame ends up can be checked in the files.
 */
#ifndef FAKE_GRAPH_H
#define FAKE_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "fake.h"

enum vkind {
	V_NONE,      /* a linked input that carries nothing (AUDIO, ...) */
	V_INT, V_FLOAT, V_STRING, V_BOOL,
	V_FRAMES,    /* IMAGE: a batch of frames */
	V_LATENT,
	V_THING,     /* models, encoders, embeddings...: described in info */
};

/* A code for frames made by RIFE between two others: this bit plus the
 * code of the earlier frame. */
#define CODE_BETWEEN (UINT32_C(1) << 23)

struct value {
	int refs;
	enum vkind kind;
	int64_t i;
	double f;
	bool b;
	char *s;
	/* V_FRAMES, V_LATENT: codes[n] and the logical picture size */
	size_t n;
	uint32_t *codes;
	int w, h;
	/* V_LATENT: the sampler passes it went through [{model, seed, from,
	 * to, steps}]; V_THING: what it is */
	cJSON *info;
};

struct value *value_new(enum vkind kind);
struct value *value_ref(struct value *v);
void value_unref(struct value *v);
/* A V_FRAMES or V_LATENT with n codes, uninitialised. */
struct value *value_frames(enum vkind kind, size_t n, int w, int h);
/* How a value shows in execution_error's current_inputs. */
cJSON *value_describe(const struct value *v);

#define NODE_MAX_OUT 8

/* One node being executed: inputs in, outputs and UI out. */
struct node_ctx {
	const char *id;
	const char *class_type;
	const cJSON *literals;       /* the node's inputs as submitted */
	struct value **args;         /* by input name: see arg() */
	const char **arg_names;
	size_t nargs;
	struct value *out[NODE_MAX_OUT];
	cJSON *ui;                   /* the "output" of executed / history */
	/* failure: the exception ComfyUI would report */
	char etype[96];
	char emsg[1024];
	void *run;                   /* exec.c's prompt state */
};

/* Inputs. arg() is NULL when the input is absent. */
struct value *arg(const struct node_ctx *N, const char *name);
int64_t arg_int(const struct node_ctx *N, const char *name, int64_t def);
double arg_float(const struct node_ctx *N, const char *name, double def);
const char *arg_str(const struct node_ctx *N, const char *name, const char *def);
bool arg_bool(const struct node_ctx *N, const char *name, bool def);

/* Fails the node: execution_error with this exception. Returns -1. */
int node_fail(struct node_ctx *N, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Services exec.c gives the nodes. */
/* Spends the node's GPU time; -1 when interrupted at a progress tick, or
 * when the server stops or restarts. */
int node_wait(struct node_ctx *N, double seconds);
/* A progress bar tick (samplers): progress + progress_state messages. */
int node_progress(struct node_ctx *N, long value, long max);
/* Records a file the prompt read or wrote (relative to the root). */
void node_read(struct node_ctx *N, const char *path);
void node_wrote(struct node_ctx *N, const char *path);
/* A model loader ran: loading a different model costs --load-time. */
int node_load_model(struct node_ctx *N, const char *name);
/* Output faults (truncate, empty, size) for a file this node wrote. */
void node_output_faults(struct node_ctx *N, const char *abs_path);
/* The prompt's id and client, for nodes that send messages. */
const char *node_prompt_id(const struct node_ctx *N);
/* The whole prompt (saved into latents' metadata, as ComfyUI does). */
const cJSON *node_prompt(const struct node_ctx *N);
const char *node_client(const struct node_ctx *N);

/* Picture size on disk for a logical size: 1/frame_scale, even, and big
 * enough for the identity code. */
void physical_size(int w, int h, int *pw, int *ph);

/* ---- the implementations (nodes.c) ---- */

typedef int (*node_fn)(struct node_ctx *N);

struct node_impl {
	const char *class_type;
	node_fn run;
	/* IS_CHANGED: a file input whose content is part of the cache key
	 * (the folder is "input" unless annotated), or volatile: never cached */
	const char *file_input;
	bool is_volatile;
};

const struct node_impl *node_impl(const char *class_type);

#endif
