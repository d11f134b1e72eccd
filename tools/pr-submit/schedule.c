/*
 * Which ready job goes to which server next. Three rules, in this order:
 *
 * - Affinity: a server given "#high" (a pass) or "#MODEL.gguf" takes
 *   those jobs, so each keeps one model loaded. Jobs no affinity names go
 *   to the servers without one. A job whose servers are all gone (down
 *   longer than --move-after) may go anywhere it passed preflight: work
 *   moves rather than waits.
 * - Model: among a server's candidates, the jobs of the model it will have
 *   loaded come first, so the HIGH jobs of several videos run back to
 *   back, then their LOW jobs; ComfyUI loads a 14B model once per batch
 *   instead of once per job.
 * - No starvation: a ready job waits for at most --model-batch jobs of
 *   other models in a row, then goes first; otherwise jobs go in the order they
 *   became ready (plan order for ties), so the last video's jobs do not
 *   wait behind every other video's, chunk after chunk, and finish alone
 *   at the end with the GPUs idle.
 */
#include <string.h>

#include "submit.h"

bool
job_ready(const struct job *j, double now)
{
	if (j->state != JOB_WAITING || now < j->retry_at || !j->preflight_ok)
		return false;
	for (size_t i = 0; i < j->ndeps; i++)
		if (j->deps[i]->state != JOB_DONE)
			return false;
	return true;
}

static bool
names(const struct server *s, const char *what)
{
	for (size_t i = 0; what && i < s->naffinity; i++)
		if (strcmp(s->affinity[i], what) == 0)
			return true;
	return false;
}

static bool
matches(const struct server *s, const struct job *j)
{
	return names(s, j->pass) || names(s, j->model);
}

const char *
schedule_check_affinity(const struct run *R)
{
	for (size_t k = 0; k < R->nservers; k++) {
		const struct server *s = &R->servers[k];
		for (size_t a = 0; a < s->naffinity; a++) {
			bool used = false;
			for (size_t i = 0; i < R->njobs && !used; i++) {
				const struct job *j = &R->jobs[i];
				used = (j->pass && strcmp(j->pass, s->affinity[a]) == 0) ||
				    (j->model && strcmp(j->model, s->affinity[a]) == 0);
			}
			if (!used)
				return s->affinity[a];
		}
	}
	return NULL;
}

bool
schedule_gone(const struct run *R, const struct server *s, double now)
{
	return !s->usable || (s->down_since && now - s->down_since >= R->o.move_after);
}

/* The servers j may use, as a mask, given which are there and which it
 * passed preflight on. */
static uint64_t
choice(const struct run *R, const struct job *j, uint64_t there, uint64_t runs_on)
{
	uint64_t affine = 0, plain = 0;

	there &= runs_on;
	for (size_t k = 0; k < R->nservers; k++) {
		const struct server *s = &R->servers[k];
		if (!(there & (UINT64_C(1) << k)))
			continue;
		if (!s->naffinity)
			plain |= UINT64_C(1) << k;
		else if (matches(s, j))
			affine |= UINT64_C(1) << k;
	}
	return affine ? affine : plain ? plain : there;
}

bool
schedule_preferred(const struct run *R, const struct job *j, const struct server *s)
{
	uint64_t there = 0;

	for (size_t k = 0; k < R->nservers; k++)
		if (R->servers[k].usable)
			there |= UINT64_C(1) << k;
	/* Before preflight every server counts as one the job runs on. */
	return choice(R, j, there, ~UINT64_C(0)) & (UINT64_C(1) << s->index);
}

static bool
may_run_on(const struct run *R, const struct job *j, const struct server *s, double now)
{
	uint64_t there = 0;

	for (size_t k = 0; k < R->nservers; k++)
		if (!schedule_gone(R, &R->servers[k], now))
			there |= UINT64_C(1) << k;
	return choice(R, j, there, j->runs_on) & (UINT64_C(1) << s->index);
}

static bool
model_eq(const char *a, const char *b)
{
	return a && b ? strcmp(a, b) == 0 : a == b;
}

static bool
same_model(const struct server *s, const struct job *j)
{
	return s->model && model_eq(s->model, j->model);
}

/* Whether a should go before b (the best so far, earlier in plan
 * order). */
static bool
before(const struct run *R, const struct server *s, const struct job *a, const struct job *b)
{
	bool starved_a = a->passed_over >= R->o.model_batch;
	bool starved_b = b->passed_over >= R->o.model_batch;

	if (starved_a != starved_b)
		return starved_a;
	if (!starved_a && same_model(s, a) != same_model(s, b))
		return same_model(s, a);
	return a->ready_since < b->ready_since;
}

void
schedule_observe(struct run *R, double now)
{
	for (size_t i = 0; i < R->njobs; i++) {
		struct job *j = &R->jobs[i];
		if (!job_ready(j, now))
			j->ready_since = 0;
		else if (!j->ready_since)
			j->ready_since = now;
	}
}

struct job *
schedule_next(struct run *R, struct server *s, double now)
{
	struct job *best = NULL;

	for (size_t i = 0; i < R->njobs; i++) {
		struct job *j = &R->jobs[i];
		if (!job_ready(j, now) || !may_run_on(R, j, s, now))
			continue;
		if (!R->o.model_batch)
			return j;       /* plan order */
		if (!best || before(R, s, j, best))
			best = j;
	}
	return best;
}

void
schedule_sent(struct run *R, struct job *sent, struct server *s, double now)
{
	s->model = sent->model;
	sent->ready_since = 0;
	sent->passed_over = 0;
	for (size_t i = 0; i < R->njobs; i++) {
		struct job *j = &R->jobs[i];
		if (j == sent || !job_ready(j, now) || !may_run_on(R, j, s, now))
			continue;
		/* Its model's turn has come: it waits as one of them now. */
		if (model_eq(j->model, sent->model))
			j->passed_over = 0;
		else
			j->passed_over++;
	}
}
