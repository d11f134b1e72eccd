/*
 * Faults on request, in fake-gcs's manner: each armed fault is a JSON
 * object (fake-runpod(1) lists the kinds) saying what happens, on which
 * kind of request ("on") and how many times ("times", default 1, -1 for
 * ever). Each is checked where it acts: drop, timeout and status when the
 * request head is in, graphql_error once the GraphQL operation is known,
 * ignore when a pod's state would change.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake.h"
#include "http.h"

struct armed {
	struct armed *next;
	cJSON *spec;            /* as listed: defaults filled, times counting */
	struct fault f;
	unsigned on;            /* mask of 1 << enum kind */
	long long times;        /* -1: for ever */
};

#define BIT(k) (1u << (k))
#define ALL_KINDS (BIT(K_COUNT) - 1)
#define CHANGE_KINDS (BIT(K_REST_STOP) | BIT(K_REST_DELETE) | BIT(K_REST_START) | \
    BIT(K_GRAPHQL))

static const struct {
	const char *name;
	enum fault_kind kind;
	unsigned may;           /* the request kinds it can strike */
	const char *on;         /* its default "on" */
	const char *fields;     /* its own fields, space separated */
} kinds[] = {
	{ "status", F_STATUS, ALL_KINDS, "any", "code" },
	{ "graphql_error", F_GRAPHQL_ERROR, BIT(K_GRAPHQL), "graphql", "message" },
	{ "timeout", F_TIMEOUT, ALL_KINDS, "any", "seconds" },
	{ "drop", F_DROP, ALL_KINDS, "any", "" },
	{ "ignore", F_IGNORE, CHANGE_KINDS, "any", "" },
};

const char *const kind_names[K_COUNT] = {
	"rest_get", "rest_stop", "rest_delete", "rest_start", "graphql", "other",
};

static const char *
fault_name(enum fault_kind k)
{
	size_t i;

	for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (kinds[i].kind == k)
			return kinds[i].name;
	return "?";
}

/* The mask for one "on" word; 0 if unknown. */
static unsigned
on_word(const char *s)
{
	int k;

	if (strcmp(s, "any") == 0)
		return ALL_KINDS;
	for (k = 0; k < K_COUNT; k++)
		if (strcmp(s, kind_names[k]) == 0)
			return BIT(k);
	return 0;
}

/* Whether word is one of the space-separated words of list. */
static bool
word_in(const char *list, const char *word)
{
	size_t n = strlen(word);
	const char *p;

	for (p = list; n > 0 && (p = strstr(p, word)); p++)
		if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
			return true;
	return false;
}

static int
parse_one(const cJSON *spec, struct armed *a, char *why, size_t whylen)
{
	const char *kind, *msg;
	const cJSON *c, *on;
	int64_t n;
	unsigned mask = 0;
	size_t i;
	double sec;

	if (!cJSON_IsObject(spec)) {
		snprintf(why, whylen, "a fault is a JSON object");
		return -1;
	}
	kind = pr_json_get_string(spec, "kind");
	for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (kind && strcmp(kind, kinds[i].name) == 0)
			break;
	if (i == sizeof kinds / sizeof kinds[0]) {
		snprintf(why, whylen, "unknown fault kind \"%.40s\" (status, graphql_error, "
		    "timeout, drop, ignore)", kind ? kind : "");
		return -1;
	}
	cJSON_ArrayForEach(c, spec) {
		if (word_in("kind times on", c->string) || word_in(kinds[i].fields, c->string))
			continue;
		snprintf(why, whylen, "a %s fault has no field \"%.40s\"", kinds[i].name,
		    c->string);
		return -1;
	}
	a->f.kind = kinds[i].kind;
	a->f.code = 500;
	a->f.seconds = 30;
	snprintf(a->f.message, sizeof a->f.message, "Something went wrong. Please try again later.");
	a->times = 1;
	if ((c = pr_json_get(spec, "times")) &&
	    (pr_json_to_i64(c, &n) < 0 || n < -1 || n == 0 || n > 1000000000)) {
		snprintf(why, whylen, "\"times\" must be a whole number from 1, or -1 for ever");
		return -1;
	}
	if (c)
		a->times = n;
	if ((c = pr_json_get(spec, "code"))) {
		if (pr_json_to_i64(c, &n) < 0 || n < 100 || n > 599) {
			snprintf(why, whylen, "\"code\" must be an HTTP status from 100 to 599");
			return -1;
		}
		a->f.code = (int)n;
	}
	if ((c = pr_json_get(spec, "seconds"))) {
		if (!pr_json_is_number(c) || !isfinite(sec = strtod(c->valuestring, NULL)) ||
		    (sec < 0 && sec != -1) || sec > 3600) {
			snprintf(why, whylen, "\"seconds\" must be a number from 0 to 3600, or -1 "
			    "for ever");
			return -1;
		}
		a->f.seconds = sec;
	}
	if ((c = pr_json_get(spec, "message"))) {
		if (!(msg = cJSON_GetStringValue(c)) || strlen(msg) >= sizeof a->f.message) {
			snprintf(why, whylen, "\"message\" must be a string under %zu bytes",
			    sizeof a->f.message);
			return -1;
		}
		snprintf(a->f.message, sizeof a->f.message, "%s", msg);
	}

	/* "on": a word or a list of them. */
	on = pr_json_get(spec, "on");
	if (!on) {
		mask = on_word(kinds[i].on);
	} else if (cJSON_IsString(on)) {
		if (!(mask = on_word(on->valuestring)))
			goto bad_on;
	} else if (cJSON_IsArray(on) && cJSON_GetArraySize(on) > 0) {
		cJSON_ArrayForEach(c, on) {
			if (!cJSON_IsString(c) || !on_word(c->valuestring))
				goto bad_on;
			mask |= on_word(c->valuestring);
		}
	} else {
		goto bad_on;
	}
	if (!(a->on = mask & kinds[i].may)) {
		snprintf(why, whylen, "a %s fault cannot strike on that request kind",
		    kinds[i].name);
		return -1;
	}
	a->spec = pr_json_copy(spec);
	if (!on)
		pr_json_set_string(a->spec, "on", kinds[i].on);
	pr_json_set(a->spec, "times", pr_json_int(a->times));
	if (a->f.kind == F_STATUS)
		pr_json_set(a->spec, "code", pr_json_int(a->f.code));
	if (a->f.kind == F_GRAPHQL_ERROR)
		pr_json_set(a->spec, "message", pr_json_string(a->f.message));
	if (a->f.kind == F_TIMEOUT && !pr_json_get(spec, "seconds"))
		pr_json_set(a->spec, "seconds", pr_json_int(30));
	return 0;
bad_on:
	snprintf(why, whylen, "\"on\" must be any, rest_get, rest_stop, rest_delete, "
	    "rest_start, graphql or other, or a list of them");
	return -1;
}

static void
free_list(struct armed *a)
{
	struct armed *next;

	for (; a; a = next) {
		next = a->next;
		cJSON_Delete(a->spec);
		free(a);
	}
}

int
faults_add(const cJSON *spec, char *why, size_t whylen)
{
	struct armed *list = NULL, **tail = &list, *a, **end;
	const cJSON *one;

	if (cJSON_IsArray(spec) && cJSON_GetArraySize(spec) == 0) {
		snprintf(why, whylen, "an empty list arms nothing");
		return -1;
	}
	/* All or nothing: parse every one before arming any. */
	for (one = cJSON_IsArray(spec) ? spec->child : spec; one;
	    one = cJSON_IsArray(spec) ? one->next : NULL) {
		a = pr_xcalloc(1, sizeof *a);
		*tail = a;
		tail = &a->next;
		if (parse_one(one, a, why, whylen) < 0) {
			free_list(list);
			return -1;
		}
	}
	pthread_mutex_lock(&S.lock);
	for (end = &S.faults; *end; end = &(*end)->next)
		;
	*end = list;
	pthread_mutex_unlock(&S.lock);
	return 0;
}

cJSON *
faults_list(void)
{
	cJSON *out = pr_json_array();
	struct armed *a;

	pthread_mutex_lock(&S.lock);
	for (a = S.faults; a; a = a->next)
		cJSON_AddItemToArray(out, pr_json_copy(a->spec));
	pthread_mutex_unlock(&S.lock);
	return out;
}

void
faults_clear(void)
{
	pthread_mutex_lock(&S.lock);
	free_list(S.faults);
	S.faults = NULL;
	pthread_mutex_unlock(&S.lock);
}

bool
fault_take_locked(struct req *r, unsigned kinds_mask, enum kind k, struct fault *out)
{
	struct armed **pp, *a;
	bool hit = false;
	size_t n;

	for (pp = &S.faults; (a = *pp); pp = &a->next) {
		if (!(a->f.kind & kinds_mask) || !(a->on & BIT(k)))
			continue;
		*out = a->f;
		if (a->times > 0 && --a->times == 0) {
			*pp = a->next;
			a->next = NULL;
			free_list(a);
		} else if (a->times > 0) {
			pr_json_set(a->spec, "times", pr_json_int(a->times));
		}
		S.n.faults_fired++;
		n = strlen(r->faults);
		snprintf(r->faults + n, sizeof r->faults - n, "%s%s", n ? "," : "",
		    fault_name(out->kind));
		hit = true;
		break;
	}
	return hit;
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
