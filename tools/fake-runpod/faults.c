/*
 * Faults on request, in fake-gcs's manner: each armed fault is a JSON
 * object (fake-runpod(1) lists the kinds) saying what happens, on which
 * kind of request ("on") and how many times ("times", default 1, -1 for
 * ever). Each is checked where it acts: drop, timeout and status when the
 * request head is in, graphql_error once the GraphQL operation is known,
 * ignore when a pod's state would change. What arming and taking share
 * with fake-gcs is faultset.h's; the kinds and their fields are here.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake.h"
#include "faultset.h"
#include "http.h"

#define BIT(k) (1u << (k))
#define ALL_KINDS (BIT(K_COUNT) - 1)
#define CHANGE_KINDS (BIT(K_REST_STOP) | BIT(K_REST_DELETE) | BIT(K_REST_START) | \
    BIT(K_GRAPHQL))

static const struct pr_fault_kind kinds[] = {
	{ "status", F_STATUS, ALL_KINDS, "any", "code" },
	{ "graphql_error", F_GRAPHQL_ERROR, BIT(K_GRAPHQL), "graphql", "message" },
	{ "timeout", F_TIMEOUT, ALL_KINDS, "any", "seconds" },
	{ "drop", F_DROP, ALL_KINDS, "any", "" },
	{ "ignore", F_IGNORE, CHANGE_KINDS, "any", "" },
};

const char *const kind_names[K_COUNT] = {
	"rest_get", "rest_stop", "rest_delete", "rest_start", "graphql", "other",
};

static int
parse(const cJSON *spec, const struct pr_fault_kind *k, void *fault, char *why, size_t whylen)
{
	struct fault *f = fault;
	const char *msg;
	const cJSON *c;
	int64_t n;
	double sec;

	f->kind = (enum fault_kind)k->bit;
	f->code = 500;
	f->seconds = 30;
	snprintf(f->message, sizeof f->message, "Something went wrong. Please try again later.");
	if ((c = pr_json_get(spec, "code"))) {
		if (pr_json_to_i64(c, &n) < 0 || n < 100 || n > 599) {
			snprintf(why, whylen, "\"code\" must be an HTTP status from 100 to 599");
			return -1;
		}
		f->code = (int)n;
	}
	if ((c = pr_json_get(spec, "seconds"))) {
		if (!pr_json_is_number(c) || !isfinite(sec = strtod(c->valuestring, NULL)) ||
		    (sec < 0 && sec != -1) || sec > 3600) {
			snprintf(why, whylen, "\"seconds\" must be a number from 0 to 3600, or -1 "
			    "for ever");
			return -1;
		}
		f->seconds = sec;
	}
	if ((c = pr_json_get(spec, "message"))) {
		if (!(msg = cJSON_GetStringValue(c)) || strlen(msg) >= sizeof f->message) {
			snprintf(why, whylen, "\"message\" must be a string under %zu bytes",
			    sizeof f->message);
			return -1;
		}
		snprintf(f->message, sizeof f->message, "%s", msg);
	}
	return 0;
}

/* The listing shows what a fault will answer, defaults too. */
static void
list(cJSON *spec, const void *fault)
{
	const struct fault *f = fault;

	if (f->kind == F_STATUS)
		pr_json_set(spec, "code", pr_json_int(f->code));
	if (f->kind == F_GRAPHQL_ERROR)
		pr_json_set(spec, "message", pr_json_string(f->message));
	if (f->kind == F_TIMEOUT && !pr_json_get(spec, "seconds"))
		pr_json_set(spec, "seconds", pr_json_int(30));
}

static const struct pr_faultset_conf conf = {
	.kinds = kinds,
	.nkinds = sizeof kinds / sizeof kinds[0],
	.requests = kind_names,
	.nrequests = K_COUNT,
	.size = sizeof(struct fault),
	.quote_max = 40,
	.times_why = "\"times\" must be a whole number from 1, or -1 for ever",
	.zero_why = "\"times\" must be a whole number from 1, or -1 for ever",
	.empty_why = "an empty list arms nothing",
	.parse = parse,
	.list = list,
};

struct pr_faultset faults = { &conf, &S.lock, NULL };

int
faults_add(const cJSON *spec, char *why, size_t whylen)
{
	return pr_faultset_add(&faults, spec, why, whylen);
}

bool
fault_take_locked(struct req *r, unsigned kinds_mask, enum kind k, struct fault *out)
{
	if (!pr_faultset_take_locked(&faults, kinds_mask, k, NULL, NULL, out, r->faults,
	    sizeof r->faults))
		return false;
	S.n.faults_fired++;
	return true;
}

bool
fault_take(struct req *r, unsigned kinds_mask, enum kind k, struct fault *out)
{
	bool hit;

	pthread_mutex_lock(&S.lock);
	hit = fault_take_locked(r, kinds_mask, k, out);
	pthread_mutex_unlock(&S.lock);
	return hit;
}
