/* The queue, the history and the counters ComfyUI keeps in memory. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake.h"

struct server S = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
};

int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
state_init(void)
{
	S.history = pr_json_object();
	S.posts = pr_json_array();
	S.runs = pr_json_array();
	S.loads = pr_json_array();
	S.faults = pr_json_array();
	S.t0 = pr_monotonic();
}

/* ComfyUI's heap orders (number, prompt_id). */
static int
before(const struct item *a, const struct item *b)
{
	if (a->number != b->number)
		return a->number < b->number;
	return strcmp(a->prompt_id, b->prompt_id) < 0;
}

void
queue_push(struct item *it)
{
	if (S.npending == S.cap) {
		S.cap = S.cap ? S.cap * 2 : 16;
		S.pending = pr_xrealloc(S.pending, S.cap * sizeof *S.pending);
	}
	S.pending[S.npending++] = it;
	pthread_cond_signal(&S.wake);
}

struct item *
queue_pop(void)
{
	struct item *it;
	size_t i, best = 0;

	if (!S.npending)
		return NULL;
	for (i = 1; i < S.npending; i++)
		if (before(S.pending[i], S.pending[best]))
			best = i;
	it = S.pending[best];
	S.pending[best] = S.pending[--S.npending];
	return it;
}

int
queue_remaining(void)
{
	return (int)S.npending + (S.running != NULL);
}

void
item_free(struct item *it)
{
	if (!it)
		return;
	free(it->number_text);
	free(it->prompt_id);
	free(it->client_id);
	cJSON_Delete(it->prompt);
	cJSON_Delete(it->extra_data);
	cJSON_Delete(it->outputs);
	free(it);
}

/* ComfyUI keeps at most 10 000 entries, evicting the oldest. */
#define HISTORY_MAX 10000

void
history_put(const char *prompt_id, cJSON *entry)
{
	cJSON_DeleteItemFromObjectCaseSensitive(S.history, prompt_id);
	cJSON_AddItemToObject(S.history, prompt_id, entry);
	if (cJSON_GetArraySize(S.history) > HISTORY_MAX)
		cJSON_Delete(cJSON_DetachItemViaPointer(S.history, S.history->child));
}

void
broadcast_status(void)
{
	cJSON *data = pr_json_object(), *st = pr_json_object(), *ei = pr_json_object();

	pr_json_set_int(ei, "queue_remaining", queue_remaining());
	pr_json_set(st, "exec_info", ei);
	pr_json_set(data, "status", st);
	ws_send("status", data, TO_ALL, NULL);
}

void
server_restart(double down)
{
	size_t i;

	/* What a killed server loses: all in memory. Files stay on disk. */
	S.generation++;
	for (i = 0; i < S.npending; i++)
		item_free(S.pending[i]);
	S.npending = 0;
	/* The worker owns the running item; the new generation tells it the
	 * prompt died with the server. */
	S.running = NULL;
	free(S.running_node);
	S.running_node = NULL;
	cJSON_Delete(S.history);
	S.history = pr_json_object();
	S.counter = 0;
	S.interrupt = false;
	S.free_memory = true;      /* the cache goes too */
	free(S.loaded_model);
	S.loaded_model = NULL;
	S.down_until = pr_monotonic() + down;
	ws_drop(NULL);
	pthread_cond_signal(&S.wake);
}
