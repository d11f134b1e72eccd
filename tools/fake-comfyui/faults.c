/*
 * Faults on request: each armed fault is a JSON object (fake-comfyui(1)
 * lists the kinds) with where it strikes (a route; the n-th executed
 * prompt, a prompt_id, a node id or class; a time after start) and how
 * many times ("times", default 1; 0 = every time).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake.h"

static const char *const kinds[] = {
	"http",        /* route answers "status", or "close"s, or "delay"s */
	"ws_drop",     /* WebSockets dropped without a close frame */
	"restart",     /* a server restart: memory lost, "down" seconds */
	"exec_error",  /* execution_error at a node: exception_type, message */
	"hang",        /* a node that runs until interrupted */
	"truncate",    /* an output file cut to "bytes" (default: half) */
	"empty",       /* an output file of 0 bytes */
	"size",        /* an output file padded to "bytes" */
	"lie",         /* outputs reported as "filename", "subfolder", "type" */
	"ws_huge",     /* a WebSocket message of "bytes" to the prompt's client */
	NULL,
};

static const char *const fields[] = {
	"kind", "route", "method", "status", "close", "delay", "prompt", "prompt_id",
	"node", "at", "down", "client_id", "exception_type", "message", "bytes",
	"filename", "subfolder", "type", "times", "endless", "length", "rate", "raw",
	NULL,
};

static bool
listed(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

static bool
number_over(const cJSON *v, double min)
{
	return pr_json_is_number(v) &&
	    (cJSON_IsRaw(v) ? strtod(v->valuestring, NULL) : v->valuedouble) > min;
}

/* A JSON text, for the raw values of a lie: checked with cJSON itself,
 * which takes what our parser refuses (\u0000). */
static bool
json_text(const cJSON *v)
{
	const char *end = NULL;
	cJSON *parsed;

	if (!cJSON_IsString(v))
		return false;
	parsed = cJSON_ParseWithOpts(v->valuestring, &end, true);
	cJSON_Delete(parsed);
	return parsed != NULL;
}

/* The fields whose values would otherwise be misread silently. */
static int
check_values(const cJSON *f, const char *kind, char *why, size_t whylen)
{
	static const char *const texts[] = { "filename", "subfolder", "type" };
	const cJSON *c;
	int64_t n;

	if ((c = pr_json_get(f, "bytes")) && (pr_json_to_i64(c, &n) < 0 || n < 0)) {
		snprintf(why, whylen, "\"bytes\" must be a whole number >= 0");
		return -1;
	}
	if ((c = pr_json_get(f, "endless")) && !cJSON_IsBool(c)) {
		snprintf(why, whylen, "\"endless\" must be true or false");
		return -1;
	}
	if ((c = pr_json_get(f, "length")) && !cJSON_IsFalse(c) &&
	    !(cJSON_IsString(c) && strcmp(c->valuestring, "answer") == 0) &&
	    (pr_json_to_i64(c, &n) < 0 || n < 0)) {
		snprintf(why, whylen, "\"length\" must be a whole number >= 0, false or \"answer\"");
		return -1;
	}
	if ((c = pr_json_get(f, "rate")) && !number_over(c, 0)) {
		snprintf(why, whylen, "\"rate\" must be a number of bytes a second > 0");
		return -1;
	}
	if ((c = pr_json_get(f, "raw")) && !cJSON_IsBool(c)) {
		snprintf(why, whylen, "\"raw\" must be true or false");
		return -1;
	}
	if (strcmp(kind, "lie") == 0 && cJSON_IsTrue(c))
		for (size_t i = 0; i < 3; i++)
			if (pr_json_get(f, texts[i]) && !json_text(pr_json_get(f, texts[i]))) {
				snprintf(why, whylen, "with \"raw\", \"%s\" must be a string holding "
				    "JSON text", texts[i]);
				return -1;
			}
	return 0;
}

static int
add_one(const cJSON *f, char *why, size_t whylen)
{
	const char *kind = pr_json_get_string(f, "kind");
	const cJSON *c;
	int64_t n;

	if (!cJSON_IsObject(f)) {
		snprintf(why, whylen, "a fault is an object");
		return -1;
	}
	if (!kind || !listed(kinds, kind)) {
		snprintf(why, whylen, "unknown fault kind \"%s\"", kind ? kind : "");
		return -1;
	}
	cJSON_ArrayForEach(c, f) {
		if (!listed(fields, c->string)) {
			snprintf(why, whylen, "unknown fault field \"%s\"", c->string);
			return -1;
		}
	}
	if (strcmp(kind, "http") == 0 && !pr_json_get_string(f, "route")) {
		snprintf(why, whylen, "an http fault needs a \"route\"");
		return -1;
	}
	if (check_values(f, kind, why, whylen) < 0)
		return -1;
	if ((c = pr_json_get(f, "times")) && (pr_json_to_i64(c, &n) < 0 || n < 0)) {
		snprintf(why, whylen, "\"times\" must be a whole number >= 0");
		return -1;
	}
	pthread_mutex_lock(&S.lock);
	cJSON_AddItemToArray(S.faults, pr_json_copy(f));
	pthread_mutex_unlock(&S.lock);
	return 0;
}

int
faults_add(const cJSON *spec, char *why, size_t whylen)
{
	const cJSON *f;

	if (!cJSON_IsArray(spec))
		return add_one(spec, why, whylen);
	cJSON_ArrayForEach(f, spec)
		if (add_one(f, why, whylen) < 0)
			return -1;
	return 0;
}

/* Uses one shot of fault f (S.lock held); returns a copy for the caller. */
static cJSON *
fire(cJSON *f)
{
	cJSON *copy = pr_json_copy(f), *t = pr_json_get(f, "times");
	int64_t n = 1;

	if (t)
		pr_json_to_i64(t, &n);
	if (n == 1)
		cJSON_Delete(cJSON_DetachItemViaPointer(S.faults, f));
	else if (n > 1)
		pr_json_set(f, "times", pr_json_int(n - 1));
	return copy;
}

/* A route ending in "*" is a prefix: "/history/" then "*" is every
 * prompt's history. */
static bool
route_matches(const char *route, const char *path)
{
	size_t len = strlen(route);

	if (len && route[len - 1] == '*')
		return strncmp(route, path, len - 1) == 0;
	return strcmp(route, path) == 0;
}

cJSON *
fault_for_route(const char *method, const char *path)
{
	const char *route, *m;
	cJSON *f, *hit = NULL;

	pthread_mutex_lock(&S.lock);
	cJSON_ArrayForEach(f, S.faults) {
		if (strcmp(pr_json_get_string(f, "kind"), "http") != 0)
			continue;
		route = pr_json_get_string(f, "route");
		m = pr_json_get_string(f, "method");
		if (!route_matches(route, path) || (m && strcmp(m, method) != 0))
			continue;
		hit = fire(f);
		break;
	}
	pthread_mutex_unlock(&S.lock);
	return hit;
}

cJSON *
fault_for_node(const char *kind, unsigned long prompt_no, const char *prompt_id,
    const char *node, const char *class_type)
{
	const char *want_id, *want_node;
	cJSON *f, *hit = NULL;
	int64_t want_no;

	pthread_mutex_lock(&S.lock);
	cJSON_ArrayForEach(f, S.faults) {
		if (strcmp(pr_json_get_string(f, "kind"), kind) != 0 || pr_json_get(f, "at"))
			continue;
		if (pr_json_get(f, "prompt") &&
		    (pr_json_to_i64(pr_json_get(f, "prompt"), &want_no) < 0 ||
		    (unsigned long)want_no != prompt_no))
			continue;
		if ((want_id = pr_json_get_string(f, "prompt_id")) && strcmp(want_id, prompt_id) != 0)
			continue;
		want_node = pr_json_get_string(f, "node");
		if (want_node && strcmp(want_node, node) != 0 && strcmp(want_node, class_type) != 0)
			continue;
		hit = fire(f);
		break;
	}
	pthread_mutex_unlock(&S.lock);
	return hit;
}

void
faults_tick(void)
{
	cJSON *f, *next, *hit;
	double at, down;
	const char *kind;

	pthread_mutex_lock(&S.lock);
	for (f = S.faults->child; f; f = next) {
		next = f->next;
		if (!pr_json_get(f, "at"))
			continue;
		at = strtod(pr_json_get(f, "at")->valuestring, NULL);
		if (pr_monotonic() - S.t0 < at)
			continue;
		hit = fire(f);
		kind = pr_json_get_string(hit, "kind");
		if (strcmp(kind, "ws_drop") == 0) {
			ws_drop(pr_json_get_string(hit, "client_id"));
		} else if (strcmp(kind, "restart") == 0) {
			down = pr_json_get(hit, "down") ? strtod(pr_json_get(hit, "down")->valuestring, NULL) : 0;
			server_restart(down);
		}
		cJSON_Delete(hit);
	}
	pthread_mutex_unlock(&S.lock);
}
