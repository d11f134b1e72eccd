/*
 * The worker: one prompt at a time, in queue order, executed the way
 * ComfyUI's executor does it and with the messages it sends, in the
 * recorded order (COMFYUI-PROTOCOL.md §9.2):
 *
 *   execution_start, execution_cached, then per node progress_state
 *   (running), executing, [progress...], [executed], progress_state
 *   (finished); execution_success | execution_error |
 *   execution_interrupted; the history entry; status; executing{null}.
 *
 * Cached nodes (same input signature as in the previous prompt) do not
 * run; cached output nodes replay their old "executed" output.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fake.h"
#include "graph.h"

/* ---- the cache: node results by input signature ---- */

struct cached {
	char *sig;
	struct value *out[NODE_MAX_OUT];
	cJSON *ui;
};

static struct cached *cache;
static size_t ncache, capcache;

static void
cached_free(struct cached *c)
{
	int i;

	free(c->sig);
	for (i = 0; i < NODE_MAX_OUT; i++)
		value_unref(c->out[i]);
	cJSON_Delete(c->ui);
}

void
cache_clear(void)
{
	size_t i;

	for (i = 0; i < ncache; i++)
		cached_free(&cache[i]);
	ncache = 0;
}

static struct cached *
cache_find(const char *sig)
{
	size_t i;

	for (i = 0; i < ncache; i++)
		if (strcmp(cache[i].sig, sig) == 0)
			return &cache[i];
	return NULL;
}

static void
cache_put(const char *sig, struct value *const *out, const cJSON *ui)
{
	struct cached *c = cache_find(sig);
	int i;

	if (!c) {
		if (ncache == capcache) {
			capcache = capcache ? capcache * 2 : 64;
			cache = pr_xrealloc(cache, capcache * sizeof *cache);
		}
		c = &cache[ncache++];
		memset(c, 0, sizeof *c);
		c->sig = pr_xstrdup(sig);
	} else {
		for (i = 0; i < NODE_MAX_OUT; i++)
			value_unref(c->out[i]);
		cJSON_Delete(c->ui);
	}
	for (i = 0; i < NODE_MAX_OUT; i++)
		c->out[i] = out[i] ? value_ref(out[i]) : NULL;
	c->ui = ui ? pr_json_copy(ui) : NULL;
}

/* ComfyUI keeps the results a new prompt can use and drops the rest. */
static void
cache_keep(const cJSON *sigs)
{
	const cJSON *s;
	size_t i = 0;
	bool used;

	while (i < ncache) {
		used = false;
		cJSON_ArrayForEach(s, sigs)
			if (strcmp(s->valuestring, cache[i].sig) == 0)
				used = true;
		if (used) {
			i++;
			continue;
		}
		cached_free(&cache[i]);
		cache[i] = cache[--ncache];
	}
}

/* ---- one prompt ---- */

enum outcome { RAN, FAILED, INTERRUPTED, ABORTED };

struct run {
	struct item *it;
	unsigned gen;
	unsigned long no;            /* prompts executed since start */
	const cJSON *prompt;
	const char *client;
	cJSON *sigs;                 /* {node id: signature} */
	cJSON *ps;                   /* progress_state's cumulative map */
	cJSON *messages;             /* history status.messages */
	cJSON *outputs;              /* history outputs */
	cJSON *meta;
	cJSON *executed;             /* ids that ran, in order */
	cJSON *log;                  /* this run in the control endpoint */
	struct { char *id; struct value *out[NODE_MAX_OUT]; } *res;
	size_t nres;
	bool interrupted, aborted;
	cJSON *cached;               /* ids served from the cache */
	cJSON *all;                  /* ids scheduled: current_outputs */
	long progress_max;           /* the running node's last progress max */
};

static bool
alive(const struct run *R)
{
	return S.generation == R->gen && !S.stop;
}

/* Sends unless the server "died" since the prompt started. Messages other
 * than progress go to the submitting client only, and nowhere without
 * one; progress and progress_state are broadcast then. */
static void
emit(struct run *R, const char *type, cJSON *data)
{
	bool progress = strcmp(type, "progress") == 0 || strcmp(type, "progress_state") == 0;

	pthread_mutex_lock(&S.lock);
	if (!alive(R) || (!R->client && !progress))
		cJSON_Delete(data);
	else
		ws_send(type, data, R->client ? TO_CLIENT : TO_ALL, R->client);
	pthread_mutex_unlock(&S.lock);
}

static cJSON *
stamped(struct run *R)
{
	cJSON *d = pr_json_object();

	pr_json_set_string(d, "prompt_id", R->it->prompt_id);
	pr_json_set_int(d, "timestamp", wall_ms());
	return d;
}

/* A message that also goes into the history entry. */
static void
emit_kept(struct run *R, const char *type, cJSON *data)
{
	cJSON *m = pr_json_array();

	cJSON_AddItemToArray(m, pr_json_string(type));
	cJSON_AddItemToArray(m, pr_json_copy(data));
	cJSON_AddItemToArray(R->messages, m);
	emit(R, type, data);
}

static void
send_ps(struct run *R, const char *node, const char *value, const char *max,
    const char *state)
{
	cJSON *n = pr_json_object(), *d = pr_json_object();

	pr_json_set(n, "value", pr_json_number_text(value));
	pr_json_set(n, "max", pr_json_number_text(max));
	pr_json_set_string(n, "state", state);
	pr_json_set_string(n, "node_id", node);
	pr_json_set_string(n, "prompt_id", R->it->prompt_id);
	pr_json_set_string(n, "display_node_id", node);
	pr_json_set(n, "parent_node_id", cJSON_CreateNull());
	pr_json_set_string(n, "real_node_id", node);
	pr_json_set(R->ps, node, n);
	pr_json_set_string(d, "prompt_id", R->it->prompt_id);
	pr_json_set(d, "nodes", pr_json_copy(R->ps));
	emit(R, "progress_state", d);
}

static struct cached *cache_find(const char *sig);

/* A node's outputs in this prompt: what it made, or what the cache had
 * (cached nodes that are not outputs are never staged). */
static struct value **
result_of(struct run *R, const char *id)
{
	struct cached *c;
	const char *sig;
	size_t i;

	for (i = 0; i < R->nres; i++)
		if (strcmp(R->res[i].id, id) == 0)
			return R->res[i].out;
	if ((sig = pr_json_get_string(R->sigs, id)) && pr_json_has_string(R->cached, id) &&
	    (c = cache_find(sig)))
		return c->out;
	return NULL;
}

static void
keep_result(struct run *R, const char *id, struct value *const *out)
{
	int i;

	R->res = pr_xrealloc(R->res, (R->nres + 1) * sizeof *R->res);
	R->res[R->nres].id = pr_xstrdup(id);
	for (i = 0; i < NODE_MAX_OUT; i++)
		R->res[R->nres].out[i] = out[i] ? value_ref(out[i]) : NULL;
	R->nres++;
}

static bool
is_output_node(const char *class_type)
{
	return cJSON_IsTrue(pr_json_get(pr_json_get(S.facts, class_type), "output_node"));
}

/* ---- input signatures (the cache key) ---- */

static uint64_t
fnv(const char *s, uint64_t h)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *signature(struct run *R, const char *id);

/* What a file input adds to the key: a hash of its content, as LoadImage's
 * IS_CHANGED hashes its file (a re-uploaded identical file stays cached, a
 * changed reference image runs its chunk again). */
static void
file_key(const char *value, struct pr_buf *b)
{
	char *name = pr_xstrdup(value), path[8192], chunk[65536];
	const char *folder = "input";
	size_t len = strlen(name);
	uint64_t h = 14695981039346656037ULL;
	ssize_t n, i;
	int fd;

	if (len > 9 && strcmp(name + len - 9, " [output]") == 0) {
		folder = "output";
		name[len - 9] = '\0';
	} else if (len > 7 && strcmp(name + len - 7, " [temp]") == 0) {
		folder = "temp";
		name[len - 7] = '\0';
	} else if (len > 8 && strcmp(name + len - 8, " [input]") == 0) {
		name[len - 8] = '\0';
	}
	snprintf(path, sizeof path, "%s/%s/%s", S.set.root, folder, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		pr_buf_adds(b, "|file:none");
	} else {
		while ((n = pr_read_full(fd, chunk, sizeof chunk)) > 0)
			for (i = 0; i < n; i++)
				h = (h ^ (unsigned char)chunk[i]) * 1099511628211ULL;
		close(fd);
		pr_buf_printf(b, "|file:%016llx", (unsigned long long)h);
	}
	free(name);
}

static const char *
signature(struct run *R, const char *id)
{
	const cJSON *node = pr_json_get(R->prompt, id), *inputs, *in, *known;
	const char *cls = pr_json_get_string(node, "class_type");
	const struct node_impl *impl = node_impl(cls);
	static unsigned long volatile_no;
	struct pr_buf b = PR_BUF_INIT;
	char **names, hex[17];
	size_t n = 0, i;

	if ((known = pr_json_get(R->sigs, id)))
		return known->valuestring;
	inputs = pr_json_get(node, "inputs");
	names = pr_xmalloc(((size_t)cJSON_GetArraySize(inputs) + 1) * sizeof *names);
	cJSON_ArrayForEach(in, inputs)
		names[n++] = in->string;
	qsort(names, n, sizeof *names, cmp_str);
	pr_buf_adds(&b, cls);
	for (i = 0; i < n; i++) {
		in = pr_json_get(inputs, names[i]);
		pr_buf_printf(&b, "|%s=", names[i]);
		if (cJSON_IsArray(in) && cJSON_GetArraySize(in) == 2 && cJSON_IsString(in->child))
			pr_buf_printf(&b, "@%s:%s", signature(R, in->child->valuestring),
			    in->child->next->valuestring ? in->child->next->valuestring : "0");
		else
			pr_json_write(&b, in, 0);
	}
	if (impl && impl->file_input && pr_json_get_string(inputs, impl->file_input))
		file_key(pr_json_get_string(inputs, impl->file_input), &b);
	if (impl && impl->is_volatile)
		pr_buf_printf(&b, "|now:%lu", ++volatile_no);
	snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fnv(b.data, 14695981039346656037ULL));
	pr_buf_free(&b);
	free(names);
	pr_json_set_string(R->sigs, id, hex);
	return pr_json_get_string(R->sigs, id);
}

/* ---- the order nodes run in: ComfyUI's ExecutionList ---- */

/*
 * Nodes are added from each output through their inputs; an input whose
 * result is cached is neither added nor waited for. The next node is
 * picked among those whose inputs are all done: an output node first,
 * then one feeding an output, then one two steps from an output, else the
 * first added (execution.py ux_friendly_pick_node).
 */
struct sched {
	cJSON *pending;     /* ids, in the order added */
	cJSON *blocks;      /* {id: count of unfinished inputs} */
	cJSON *blocking;    /* {id: [ids waiting for it]} */
	cJSON *all;         /* everything ever added, for current_outputs */
};


static bool
is_cached(struct run *R, const char *id)
{
	return pr_json_has_string(R->cached, id);
}

static bool
is_link(const cJSON *v)
{
	return cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2 && cJSON_IsString(v->child);
}

static void
sched_add(struct run *R, struct sched *Q, const char *start)
{
	cJSON *stack = pr_json_array(), *links = pr_json_array(), *pair, *top;
	const cJSON *in, *l;
	int64_t n;

	cJSON_AddItemToArray(stack, pr_json_string(start));
	while ((top = cJSON_DetachItemFromArray(stack, cJSON_GetArraySize(stack) - 1))) {
		const char *u = top->valuestring;

		if (!pr_json_has_string(Q->pending, u) && pr_json_get(R->prompt, u)) {
			cJSON_AddItemToArray(Q->pending, pr_json_string(u));
			if (!pr_json_has_string(Q->all, u))
				cJSON_AddItemToArray(Q->all, pr_json_string(u));
			pr_json_set_int(Q->blocks, u, 0);
			if (!pr_json_get(Q->blocking, u))
				pr_json_set(Q->blocking, u, pr_json_array());
			cJSON_ArrayForEach(in, pr_json_get(pr_json_get(R->prompt, u), "inputs")) {
				if (!is_link(in) || !pr_json_get(R->prompt, in->child->valuestring))
					continue;
				if (!is_cached(R, in->child->valuestring))
					cJSON_AddItemToArray(stack, pr_json_string(in->child->valuestring));
				pair = pr_json_array();
				cJSON_AddItemToArray(pair, pr_json_string(in->child->valuestring));
				cJSON_AddItemToArray(pair, pr_json_string(u));
				cJSON_AddItemToArray(links, pair);
			}
		}
		cJSON_Delete(top);
	}
	cJSON_ArrayForEach(l, links) {
		const char *from = l->child->valuestring, *to = l->child->next->valuestring;
		cJSON *waiting = pr_json_get(Q->blocking, from);

		if (is_cached(R, from) || !waiting || pr_json_has_string(waiting, to))
			continue;
		cJSON_AddItemToArray(waiting, pr_json_string(to));
		pr_json_to_i64(pr_json_get(Q->blocks, to), &n);
		pr_json_set_int(Q->blocks, to, n + 1);
	}
	cJSON_Delete(stack);
	cJSON_Delete(links);
}

static bool
output_near(struct run *R, struct sched *Q, const char *id, int depth)
{
	const cJSON *w;

	cJSON_ArrayForEach(w, pr_json_get(Q->blocking, id)) {
		const char *cls = pr_json_get_string(pr_json_get(R->prompt, w->valuestring), "class_type");

		if (depth == 1 ? is_output_node(cls) : output_near(R, Q, w->valuestring, 1))
			return true;
	}
	return false;
}

/* The next node to run, or NULL when none is left. */
static const char *
sched_pick(struct run *R, struct sched *Q)
{
	const cJSON *p;
	int64_t n;
	int pass;

	for (pass = 0; pass < 4; pass++) {
		cJSON_ArrayForEach(p, Q->pending) {
			if (pr_json_to_i64(pr_json_get(Q->blocks, p->valuestring), &n) < 0 || n)
				continue;
			if (pass == 3 ||
			    (pass == 0 && is_output_node(pr_json_get_string(pr_json_get(R->prompt,
			    p->valuestring), "class_type"))) ||
			    (pass == 1 && output_near(R, Q, p->valuestring, 1)) ||
			    (pass == 2 && output_near(R, Q, p->valuestring, 2)))
				return p->valuestring;
		}
	}
	return NULL;
}

static void
sched_done(struct sched *Q, const char *id)
{
	const cJSON *w;
	cJSON *p;
	int64_t n;

	cJSON_ArrayForEach(w, pr_json_get(Q->blocking, id)) {
		if (pr_json_to_i64(pr_json_get(Q->blocks, w->valuestring), &n) == 0)
			pr_json_set_int(Q->blocks, w->valuestring, n - 1);
	}
	cJSON_ArrayForEach(p, Q->pending) {
		if (strcmp(p->valuestring, id) == 0) {
			cJSON_Delete(cJSON_DetachItemViaPointer(Q->pending, p));
			break;
		}
	}
}

/* ---- services for the nodes ---- */

static struct run *
run_of(const struct node_ctx *N)
{
	return N->run;
}

const cJSON *
node_prompt(const struct node_ctx *N)
{
	return run_of(N)->prompt;
}

const char *
node_prompt_id(const struct node_ctx *N)
{
	return run_of(N)->it->prompt_id;
}

const char *
node_client(const struct node_ctx *N)
{
	return run_of(N)->client;
}

int
node_fail(struct node_ctx *N, const char *type, const char *fmt, ...)
{
	va_list ap;

	snprintf(N->etype, sizeof N->etype, "%s", type);
	va_start(ap, fmt);
	vsnprintf(N->emsg, sizeof N->emsg, fmt, ap);
	va_end(ap);
	return -1;
}

/* Sleeps in small steps so a restart or stop ends the node at once; an
 * interrupt only counts when check_interrupt (a progress tick). */
static int
wait_some(struct run *R, double seconds, bool check_interrupt)
{
	double end = pr_monotonic() + seconds, left;
	struct timespec ts;
	bool dead, stop;

	for (;;) {
		pthread_mutex_lock(&S.lock);
		dead = !alive(R);
		stop = check_interrupt && S.interrupt;
		pthread_mutex_unlock(&S.lock);
		if (dead) {
			R->aborted = true;
			return -1;
		}
		if (stop) {
			R->interrupted = true;
			return -1;
		}
		left = end - pr_monotonic();
		if (left <= 0)
			return 0;
		if (left > 0.02)
			left = 0.02;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(left * 1e9);
		nanosleep(&ts, NULL);
	}
}

int
node_wait(struct node_ctx *N, double seconds)
{
	return wait_some(run_of(N), seconds, false);
}

int
node_progress(struct node_ctx *N, long value, long max)
{
	struct run *R = run_of(N);
	char v[32], m[32];
	cJSON *d;

	if (wait_some(R, 0, true) < 0)
		return -1;
	snprintf(v, sizeof v, "%ld", value);
	snprintf(m, sizeof m, "%ld", max);
	R->progress_max = max;
	send_ps(R, N->id, v, m, "running");
	d = pr_json_object();
	pr_json_set_int(d, "value", value);
	pr_json_set_int(d, "max", max);
	pr_json_set_string(d, "prompt_id", R->it->prompt_id);
	pr_json_set_string(d, "node", N->id);
	emit(R, "progress", d);
	return 0;
}

static void
log_file(struct node_ctx *N, const char *key, const char *path)
{
	cJSON *list = pr_json_get(run_of(N)->log, key);

	cJSON_AddItemToArray(list, pr_json_string(path));
}

void
node_read(struct node_ctx *N, const char *path)
{
	log_file(N, "read", path);
}

void
node_wrote(struct node_ctx *N, const char *path)
{
	log_file(N, "wrote", path);
}

int
node_load_model(struct node_ctx *N, const char *name)
{
	struct run *R = run_of(N);
	bool change;
	double t;
	cJSON *rec;

	pthread_mutex_lock(&S.lock);
	change = !S.loaded_model || strcmp(S.loaded_model, name) != 0;
	t = S.set.load_time;
	if (change) {
		free(S.loaded_model);
		S.loaded_model = pr_xstrdup(name);
		rec = pr_json_object();
		pr_json_set(rec, "t", cJSON_CreateNumber(pr_monotonic() - S.t0));
		pr_json_set_string(rec, "model", name);
		pr_json_set_string(rec, "prompt_id", R->it->prompt_id);
		cJSON_AddItemToArray(S.loads, rec);
	}
	pthread_mutex_unlock(&S.lock);
	return change ? node_wait(N, t) : 0;
}

void
node_output_faults(struct node_ctx *N, const char *abs_path)
{
	struct run *R = run_of(N);
	static const char *const kinds[] = { "truncate", "empty", "size" };
	struct stat st;
	int64_t bytes;
	cJSON *f;
	size_t i;

	for (i = 0; i < 3; i++) {
		if (!(f = fault_for_node(kinds[i], R->no, R->it->prompt_id, N->id, N->class_type)))
			continue;
		if (stat(abs_path, &st) == 0) {
			if (pr_json_to_i64(pr_json_get(f, "bytes"), &bytes) < 0)
				bytes = i == 0 ? st.st_size / 2 : 0;
			if (i == 1)
				bytes = 0;
			/* size: a sparse file of the requested length */
			if (truncate(abs_path, (off_t)bytes) < 0)
				pr_warn("fault %s on %s: %s", kinds[i], abs_path, strerror(errno));
		}
		cJSON_Delete(f);
	}
}

/* The "lie" fault: the node's outputs are reported under other names
 * (a server that lies, or a custom node that writes where it likes); the
 * files themselves stay where they were written. */
static void
ui_lies(struct run *R, struct node_ctx *N, const char *id, const char *cls)
{
	static const char *const fields[] = { "filename", "subfolder", "type" };
	cJSON *f = fault_for_node("lie", R->no, R->it->prompt_id, id, cls), *list, *e;
	bool raw;
	const char *v;

	if (!f)
		return;
	/* raw: the values are JSON text, sent as they are: what a C string
	 * cannot hold ("\u0000") and what is not a string at all. */
	raw = cJSON_IsTrue(pr_json_get(f, "raw"));
	cJSON_ArrayForEach(list, N->ui)
		cJSON_ArrayForEach(e, list)
			for (size_t i = 0; i < 3; i++) {
				if (!cJSON_IsObject(e) || !(v = pr_json_get_string(f, fields[i])))
					continue;
				pr_json_set(e, fields[i], raw ? cJSON_CreateRaw(v) : pr_json_string(v));
			}
	cJSON_Delete(f);
}

void
physical_size(int w, int h, int *pw, int *ph)
{
	int s = S.set.frame_scale;

	*pw = (w + s / 2) / s;
	*ph = (h + s / 2) / s;
	*pw += *pw & 1;
	*ph += *ph & 1;
	/* Smaller pictures lose the code's cells to h264 (2-pixel cells
	 * do not survive compression). */
	if (*pw < 32)
		*pw = 32;
	if (*ph < 24)
		*ph = 24;
}

/* ---- running one node ---- */

static struct value *
literal_value(const cJSON *v)
{
	struct value *x;

	if (cJSON_IsObject(v) && pr_json_get(v, "__value__"))
		v = pr_json_get(v, "__value__");
	if (cJSON_IsRaw(v)) {
		int64_t i;

		if (pr_json_to_i64(v, &i) == 0) {
			x = value_new(V_INT);
			x->i = i;
			x->f = (double)i;
		} else {
			x = value_new(V_FLOAT);
			x->f = strtod(v->valuestring, NULL);
			x->i = (int64_t)x->f;
		}
	} else if (cJSON_IsString(v)) {
		x = value_new(V_STRING);
		x->s = pr_xstrdup(v->valuestring);
	} else if (cJSON_IsBool(v)) {
		x = value_new(V_BOOL);
		x->b = cJSON_IsTrue(v);
		x->i = x->b;
	} else {
		x = value_new(V_THING);
		x->info = pr_json_copy(v);
	}
	return x;
}

/* The node's inputs as values: literals converted, links resolved. */
static void
gather(struct run *R, const cJSON *inputs, struct node_ctx *N)
{
	const cJSON *in;
	struct value **src;
	size_t n = (size_t)cJSON_GetArraySize(inputs), k = 0;
	int64_t idx;

	N->args = pr_xcalloc(n + 1, sizeof *N->args);
	N->arg_names = pr_xcalloc(n + 1, sizeof *N->arg_names);
	cJSON_ArrayForEach(in, inputs) {
		N->arg_names[k] = in->string;
		if (cJSON_IsArray(in) && cJSON_GetArraySize(in) == 2 && cJSON_IsString(in->child)) {
			src = result_of(R, in->child->valuestring);
			if (src && pr_json_to_i64(in->child->next, &idx) == 0 && idx >= 0 &&
			    idx < NODE_MAX_OUT && src[idx])
				N->args[k] = value_ref(src[idx]);
			else
				N->args[k] = value_new(V_NONE);
		} else {
			N->args[k] = literal_value(in);
		}
		k++;
	}
	N->nargs = k;
}

static void
release_node(struct node_ctx *N)
{
	size_t i;

	for (i = 0; i < N->nargs; i++)
		value_unref(N->args[i]);
	free(N->args);
	free(N->arg_names);
	for (i = 0; i < NODE_MAX_OUT; i++)
		value_unref(N->out[i]);
	cJSON_Delete(N->ui);
}

static double
node_time(const char *cls)
{
	const cJSON *t;
	double v;

	pthread_mutex_lock(&S.lock);
	t = pr_json_get(S.set.class_time, cls);
	v = t ? (cJSON_IsRaw(t) ? strtod(t->valuestring, NULL) : t->valuedouble) : S.set.node_time;
	pthread_mutex_unlock(&S.lock);
	return v;
}

static cJSON *
error_payload(struct run *R, const struct node_ctx *N, const char *etype, const char *emsg)
{
	cJSON *d = pr_json_object(), *tb = pr_json_array(), *ci = pr_json_object(), *co;
	size_t i;

	pr_json_set_string(d, "prompt_id", R->it->prompt_id);
	pr_json_set_string(d, "node_id", N->id);
	pr_json_set_string(d, "node_type", N->class_type);
	pr_json_set(d, "executed", pr_json_copy(R->executed));
	pr_json_set_string(d, "exception_message", emsg);
	pr_json_set_string(d, "exception_type", etype);
	cJSON_AddItemToArray(tb, pr_json_string("  File \"fake-comfyui\", in execute (a stand-in: no Python traceback)\n"));
	pr_json_set(d, "traceback", tb);
	for (i = 0; i < N->nargs; i++) {
		cJSON *list = pr_json_array();

		cJSON_AddItemToArray(list, value_describe(N->args[i]));
		pr_json_set(ci, N->arg_names[i], list);
	}
	pr_json_set(d, "current_inputs", ci);
	co = R->all ? pr_json_copy(R->all) : pr_json_array();
	pr_json_set(d, "current_outputs", co);
	pr_json_set_int(d, "timestamp", wall_ms());
	return d;
}

static void
set_running_node(struct run *R, const char *id)
{
	pthread_mutex_lock(&S.lock);
	if (alive(R)) {
		free(S.running_node);
		S.running_node = id ? pr_xstrdup(id) : NULL;
	}
	pthread_mutex_unlock(&S.lock);
}

/* Strikes of faults tied to this node: a dropped socket or a restart. */
static void
server_faults(struct run *R, const char *id, const char *cls)
{
	cJSON *f;
	const cJSON *down;

	if ((f = fault_for_node("ws_drop", R->no, R->it->prompt_id, id, cls))) {
		ws_drop(pr_json_get_string(f, "client_id"));
		cJSON_Delete(f);
	}
	if ((f = fault_for_node("restart", R->no, R->it->prompt_id, id, cls))) {
		down = pr_json_get(f, "down");
		pthread_mutex_lock(&S.lock);
		server_restart(down ? strtod(down->valuestring, NULL) : 0);
		pthread_mutex_unlock(&S.lock);
		cJSON_Delete(f);
	}
}

/* text, then "x" up to len bytes (cut to len if longer). */
static char *
padded(const char *text, size_t len)
{
	size_t n = strlen(text);
	char *s = pr_xmalloc(len + 1);

	memcpy(s, text, n < len ? n : len);
	if (n < len)
		memset(s + n, 'x', len - n);
	s[len] = '\0';
	return s;
}

/* The "ws_huge" fault: a message far over any sane limit, to the
 * prompt's client only, as a custom node's send_sync could send it:
 * {"type": "fake_padding", "data": {"prompt_id", "node", "padding"}},
 * "bytes" long in all (default 65 MiB). */
static void
huge_message(struct run *R, const char *id, const char *cls)
{
	cJSON *f = fault_for_node("ws_huge", R->no, R->it->prompt_id, id, cls), *m, *d;
	struct pr_buf b = PR_BUF_INIT;
	int64_t bytes = (int64_t)65 << 20;
	char *pad;

	if (!f)
		return;
	pr_json_to_i64(pr_json_get(f, "bytes"), &bytes);
	cJSON_Delete(f);
	m = pr_json_object();
	pr_json_set_string(m, "type", "fake_padding");
	d = pr_json_object();
	pr_json_set(m, "data", d);
	pr_json_set_string(d, "prompt_id", R->it->prompt_id);
	pr_json_set_string(d, "node", id);
	pr_json_set_string(d, "padding", "");
	/* The padding makes up what the rest of the message does not. */
	pr_python_json(&b, m);
	pad = padded("", (uint64_t)bytes > b.len ? (size_t)bytes - b.len : 0);
	pr_json_set_string(d, "padding", pad);
	free(pad);
	pr_buf_free(&b);
	d = cJSON_DetachItemFromObjectCaseSensitive(m, "data");
	cJSON_Delete(m);
	emit(R, "fake_padding", d);
}

static enum outcome
run_node(struct run *R, const char *id)
{
	const cJSON *node = pr_json_get(R->prompt, id);
	const char *cls = pr_json_get_string(node, "class_type");
	const struct node_impl *impl = node_impl(cls);
	struct node_ctx N = { 0 };
	enum outcome out = RAN;
	cJSON *d, *f;
	int64_t n;

	server_faults(R, id, cls);
	if (!alive(R))
		return ABORTED;
	N.id = id;
	N.class_type = cls;
	N.literals = pr_json_get(node, "inputs");
	N.run = R;
	R->progress_max = 0;
	send_ps(R, id, "0.0", "1.0", "running");
	d = pr_json_object();
	pr_json_set_string(d, "node", id);
	pr_json_set_string(d, "display_node", id);
	pr_json_set_string(d, "prompt_id", R->it->prompt_id);
	emit(R, "executing", d);
	set_running_node(R, id);
	gather(R, N.literals, &N);

	/* The interrupt flag is looked at before a node starts. */
	if (wait_some(R, 0, true) < 0)
		goto stopped;
	huge_message(R, id, cls);
	if ((f = fault_for_node("exec_error", R->no, R->it->prompt_id, id, cls))) {
		const char *type = pr_json_get_string(f, "exception_type");
		const char *msg = pr_json_get_string(f, "message");
		char *big;

		type = type ? type : "torch.OutOfMemoryError";
		msg = msg ? msg : "Allocation on device would exceed allowed memory. (out of memory)";
		if (pr_json_to_i64(pr_json_get(f, "bytes"), &n) < 0) {
			node_fail(&N, type, "%s", msg);
			cJSON_Delete(f);
			goto failed;
		}
		/* A message of that many bytes: longer than node_fail keeps,
		 * in the socket's message and the history entry alike. */
		big = padded(msg, (size_t)n);
		emit_kept(R, "execution_error", error_payload(R, &N, type, big));
		free(big);
		cJSON_Delete(f);
		out = FAILED;
		goto done;
	}
	if ((f = fault_for_node("hang", R->no, R->it->prompt_id, id, cls))) {
		cJSON_Delete(f);
		/* A node stuck on the GPU: only an interrupt (or a restart)
		 * ends it, at a progress tick. */
		while (wait_some(R, 0.05, true) == 0)
			;
		goto stopped;
	}
	if (!impl) {
		node_fail(&N, "NotImplementedError", "fake-comfyui cannot run %s nodes", cls);
		goto failed;
	}
	if (node_wait(&N, node_time(cls)) < 0 || impl->run(&N) < 0) {
		if (R->interrupted || R->aborted)
			goto stopped;
		goto failed;
	}
	if (N.ui) {
		cJSON *meta = pr_json_object();

		ui_lies(R, &N, id, cls);
		pr_json_set(R->outputs, id, pr_json_copy(N.ui));
		pr_json_set_string(meta, "node_id", id);
		pr_json_set_string(meta, "display_node", id);
		pr_json_set(meta, "parent_node", cJSON_CreateNull());
		pr_json_set_string(meta, "real_node_id", id);
		pr_json_set(R->meta, id, meta);
		d = pr_json_object();
		pr_json_set_string(d, "node", id);
		pr_json_set_string(d, "display_node", id);
		pr_json_set(d, "output", pr_json_copy(N.ui));
		pr_json_set_string(d, "prompt_id", R->it->prompt_id);
		emit(R, "executed", d);
	}
	/* A node that reported progress finishes at its last max. */
	if (R->progress_max > 0) {
		char m[32];

		snprintf(m, sizeof m, "%ld", R->progress_max);
		send_ps(R, id, m, m, "finished");
	} else {
		send_ps(R, id, "1.0", "1.0", "finished");
	}
	keep_result(R, id, N.out);
	cache_put(signature(R, id), N.out, N.ui);
	cJSON_AddItemToArray(R->executed, pr_json_string(id));
	goto done;

failed:
	emit_kept(R, "execution_error", error_payload(R, &N, N.etype, N.emsg));
	out = FAILED;
	goto done;
stopped:
	if (R->aborted) {
		out = ABORTED;
		goto done;
	}
	d = pr_json_object();
	pr_json_set_string(d, "prompt_id", R->it->prompt_id);
	pr_json_set_string(d, "node_id", id);
	pr_json_set_string(d, "node_type", cls);
	pr_json_set(d, "executed", pr_json_copy(R->executed));
	pr_json_set_int(d, "timestamp", wall_ms());
	emit_kept(R, "execution_interrupted", d);
	out = INTERRUPTED;
done:
	(void)n;
	release_node(&N);
	return out;
}

/* A cached node: outputs from the cache; output nodes replay "executed". */
static void
replay(struct run *R, const char *id, const struct cached *c)
{
	const char *cls = pr_json_get_string(pr_json_get(R->prompt, id), "class_type");
	cJSON *d, *meta;

	keep_result(R, id, c->out);
	if (!is_output_node(cls))
		return;
	d = pr_json_object();
	pr_json_set_string(d, "node", id);
	pr_json_set_string(d, "display_node", id);
	pr_json_set(d, "output", c->ui ? pr_json_copy(c->ui) : cJSON_CreateNull());
	pr_json_set_string(d, "prompt_id", R->it->prompt_id);
	emit(R, "executed", d);
	if (c->ui) {
		pr_json_set(R->outputs, id, pr_json_copy(c->ui));
		meta = pr_json_object();
		pr_json_set_string(meta, "node_id", id);
		pr_json_set_string(meta, "display_node", id);
		pr_json_set(meta, "parent_node", cJSON_CreateNull());
		pr_json_set_string(meta, "real_node_id", id);
		pr_json_set(R->meta, id, meta);
	}
	send_ps(R, id, "1", "1", "finished");
}

static cJSON *
history_entry(struct run *R, const char *status_str, bool completed)
{
	cJSON *e = pr_json_object(), *p = pr_json_array(), *st = pr_json_object();

	cJSON_AddItemToArray(p, pr_json_number_text(R->it->number_text));
	cJSON_AddItemToArray(p, pr_json_string(R->it->prompt_id));
	cJSON_AddItemToArray(p, pr_json_copy(R->it->prompt));
	cJSON_AddItemToArray(p, pr_json_copy(R->it->extra_data));
	cJSON_AddItemToArray(p, pr_json_copy(R->it->outputs));
	pr_json_set(e, "prompt", p);
	pr_json_set(e, "outputs", pr_json_copy(R->outputs));
	pr_json_set_string(st, "status_str", status_str);
	pr_json_set(st, "completed", cJSON_CreateBool(completed));
	pr_json_set(st, "messages", pr_json_copy(R->messages));
	pr_json_set(e, "status", st);
	pr_json_set(e, "meta", pr_json_copy(R->meta));
	return e;
}

static void
execute(struct item *it, unsigned gen)
{
	struct run R = { 0 };
	struct sched Q = { 0 };
	cJSON *cached_ids, *sigs, *d;
	const char *next;
	const cJSON *o;
	struct cached *c;
	enum outcome out = RAN;
	const char *status = "success";
	size_t i;

	R.it = it;
	R.gen = gen;
	R.prompt = it->prompt;
	R.client = it->client_id;
	R.sigs = pr_json_object();
	R.ps = pr_json_object();
	R.messages = pr_json_array();
	R.outputs = pr_json_object();
	R.meta = pr_json_object();
	R.executed = pr_json_array();
	R.log = pr_json_object();
	pr_json_set_string(R.log, "prompt_id", it->prompt_id);
	pr_json_set(R.log, "number", pr_json_number_text(it->number_text));
	pr_json_set(R.log, "client_id", it->client_id ? pr_json_string(it->client_id) : cJSON_CreateNull());
	pr_json_set(R.log, "start", cJSON_CreateNumber(pr_monotonic() - S.t0));
	pr_json_set(R.log, "read", pr_json_array());
	pr_json_set(R.log, "wrote", pr_json_array());

	pthread_mutex_lock(&S.lock);
	R.no = ++S.executed;
	if (S.free_memory) {
		cache_clear();
		S.free_memory = false;
	}
	pthread_mutex_unlock(&S.lock);

	/* The cache keeps what this prompt can use (ComfyUI's classic cache
	 * keeps the latest prompt's results), and decides what is cached now. */
	cJSON_ArrayForEach(o, it->outputs)
		signature(&R, o->valuestring);
	sigs = pr_json_array();
	cJSON_ArrayForEach(o, R.sigs)
		cJSON_AddItemToArray(sigs, pr_json_string(o->valuestring));
	cache_keep(sigs);
	cJSON_Delete(sigs);
	cached_ids = pr_json_array();
	cJSON_ArrayForEach(o, R.prompt)
		if (pr_json_get_string(R.sigs, o->string) &&
		    cache_find(pr_json_get_string(R.sigs, o->string)))
			cJSON_AddItemToArray(cached_ids, pr_json_string(o->string));
	R.cached = cached_ids;

	emit_kept(&R, "execution_start", stamped(&R));
	d = pr_json_object();
	pr_json_set(d, "nodes", pr_json_copy(cached_ids));
	pr_json_set_string(d, "prompt_id", it->prompt_id);
	pr_json_set_int(d, "timestamp", wall_ms());
	emit_kept(&R, "execution_cached", d);

	Q.pending = pr_json_array();
	Q.blocks = pr_json_object();
	Q.blocking = pr_json_object();
	Q.all = pr_json_array();
	/* Python iterates the outputs as a set, in no set order: ours runs
	 * fresh outputs before replaying cached ones, as recorded (ws-08). */
	cJSON_ArrayForEach(o, it->outputs)
		if (!is_cached(&R, o->valuestring))
			sched_add(&R, &Q, o->valuestring);
	cJSON_ArrayForEach(o, it->outputs)
		if (is_cached(&R, o->valuestring))
			sched_add(&R, &Q, o->valuestring);
	R.all = Q.all;
	while ((next = sched_pick(&R, &Q))) {
		char *id = pr_xstrdup(next);

		if (is_cached(&R, id) && (c = cache_find(pr_json_get_string(R.sigs, id))))
			replay(&R, id, c);
		else if ((out = run_node(&R, id)) != RAN) {
			free(id);
			break;
		}
		sched_done(&Q, id);
		free(id);
	}
	if (out == RAN)
		emit_kept(&R, "execution_success", stamped(&R));
	else if (out == FAILED || out == INTERRUPTED)
		status = "error";

	pthread_mutex_lock(&S.lock);
	if (out != ABORTED && alive(&R))
		history_put(it->prompt_id, history_entry(&R, status, out == RAN));
	pr_json_set(R.log, "end", cJSON_CreateNumber(pr_monotonic() - S.t0));
	pr_json_set_string(R.log, "status", out == RAN ? "success" : out == FAILED ? "error" :
	    out == INTERRUPTED ? "interrupted" : "lost");
	pr_json_set(R.log, "executed", pr_json_copy(R.executed));
	pr_json_set(R.log, "cached", pr_json_copy(cached_ids));
	cJSON_AddItemToArray(S.runs, R.log);
	pthread_mutex_unlock(&S.lock);

	cJSON_Delete(Q.pending);
	cJSON_Delete(Q.blocks);
	cJSON_Delete(Q.blocking);
	cJSON_Delete(Q.all);
	cJSON_Delete(cached_ids);
	cJSON_Delete(R.sigs);
	cJSON_Delete(R.ps);
	cJSON_Delete(R.messages);
	cJSON_Delete(R.outputs);
	cJSON_Delete(R.meta);
	cJSON_Delete(R.executed);
	for (i = 0; i < R.nres; i++) {
		int k;

		free(R.res[i].id);
		for (k = 0; k < NODE_MAX_OUT; k++)
			value_unref(R.res[i].out[k]);
	}
	free(R.res);
}

void *
worker_main(void *arg)
{
	struct timespec ts;
	struct item *it;
	unsigned gen;
	cJSON *d;

	(void)arg;
	pthread_mutex_lock(&S.lock);
	while (!S.stop) {
		it = pr_monotonic() >= S.down_until ? queue_pop() : NULL;
		if (!it) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 50000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&S.wake, &S.lock, &ts);
			continue;
		}
		if (it->generation != S.generation) {   /* queued before a restart */
			item_free(it);
			continue;
		}
		S.running = it;
		S.interrupt = false;   /* cleared when the next prompt starts */
		gen = S.generation;
		broadcast_status();
		pthread_mutex_unlock(&S.lock);

		execute(it, gen);

		pthread_mutex_lock(&S.lock);
		if (S.generation == gen) {
			S.running = NULL;
			free(S.running_node);
			S.running_node = NULL;
			broadcast_status();
			if (it->client_id) {
				d = pr_json_object();
				pr_json_set(d, "node", cJSON_CreateNull());
				pr_json_set_string(d, "prompt_id", it->prompt_id);
				ws_send("executing", d, TO_CLIENT, it->client_id);
			}
		}
		item_free(it);
	}
	cache_clear();
	free(cache);
	cache = NULL;
	pthread_mutex_unlock(&S.lock);
	return NULL;
}
