/*
 * The stand-ins' armed faults. See faultset.h.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "faultset.h"

struct pr_armed {
	struct pr_armed *next;
	const struct pr_fault_kind *kind;
	cJSON *spec;            /* as listed: defaults filled, times counting */
	void *fault;            /* the stand-in's, conf->size bytes */
	unsigned on;            /* mask of 1 << request kind */
	long long times;        /* -1: for ever */
};

static void
free_list(struct pr_armed *a)
{
	struct pr_armed *next;

	for (; a; a = next) {
		next = a->next;
		cJSON_Delete(a->spec);
		free(a->fault);
		free(a);
	}
}

/* Appends to why, truncating as snprintf does. */
static void __attribute__((format(printf, 3, 4)))
add_why(char *why, size_t whylen, const char *fmt, ...)
{
	size_t n = strnlen(why, whylen);
	va_list ap;

	if (n + 1 >= whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why + n, whylen - n, fmt, ap);
	va_end(ap);
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

/* The mask for one "on" word; 0 if unknown. */
static unsigned
on_word(const struct pr_faultset_conf *c, const char *s)
{
	size_t i;
	int k;

	if (strcmp(s, "any") == 0)
		return (1u << c->nrequests) - 1;
	for (i = 0; i < c->ngroups; i++)
		if (strcmp(s, c->groups[i].word) == 0)
			return c->groups[i].mask;
	for (k = 0; k < c->nrequests; k++)
		if (strcmp(s, c->requests[k]) == 0)
			return 1u << k;
	return 0;
}

/* "on" as a word or a non-empty list of them; 0 if bad. */
static unsigned
on_mask(const struct pr_faultset_conf *c, const cJSON *on)
{
	const cJSON *w;
	unsigned mask = 0;

	if (cJSON_IsString(on))
		return on_word(c, on->valuestring);
	if (!cJSON_IsArray(on) || cJSON_GetArraySize(on) == 0)
		return 0;
	cJSON_ArrayForEach(w, on) {
		if (!cJSON_IsString(w) || !on_word(c, w->valuestring))
			return 0;
		mask |= on_word(c, w->valuestring);
	}
	return mask;
}

/* The message lists the words from the tables so that it cannot drift
 * from what is taken. */
static void
bad_on(const struct pr_faultset_conf *c, char *why, size_t whylen)
{
	size_t i;
	int k;

	snprintf(why, whylen, "\"on\" must be any");
	for (i = 0; i < c->ngroups; i++)
		add_why(why, whylen, ", %s", c->groups[i].word);
	for (k = 0; k < c->nrequests; k++)
		add_why(why, whylen, "%s%s", k == c->nrequests - 1 ? " or " : ", ",
		    c->requests[k]);
	add_why(why, whylen, ", or a list of them");
}

static int
parse_one(const struct pr_faultset_conf *c, const cJSON *spec, struct pr_armed *a,
    char *why, size_t whylen)
{
	int quote = c->quote_max > 0 ? c->quote_max : INT_MAX;
	const char *kind;
	const cJSON *f, *on;
	size_t i;
	int64_t n;

	if (!cJSON_IsObject(spec)) {
		snprintf(why, whylen, "a fault is a JSON object");
		return -1;
	}
	kind = pr_json_get_string(spec, "kind");
	for (i = 0; i < c->nkinds; i++)
		if (kind && strcmp(kind, c->kinds[i].name) == 0)
			break;
	if (i == c->nkinds) {
		snprintf(why, whylen, "unknown fault kind \"%.*s\" (", quote, kind ? kind : "");
		for (i = 0; i < c->nkinds; i++)
			add_why(why, whylen, "%s%s", i ? ", " : "", c->kinds[i].name);
		add_why(why, whylen, ")");
		return -1;
	}
	a->kind = &c->kinds[i];
	cJSON_ArrayForEach(f, spec) {
		if (word_in("kind times on", f->string) || word_in(a->kind->fields, f->string) ||
		    (c->fields && word_in(c->fields, f->string)))
			continue;
		snprintf(why, whylen, "a %s fault has no field \"%.*s\"", a->kind->name, quote,
		    f->string);
		return -1;
	}
	a->times = 1;
	if ((f = pr_json_get(spec, "times"))) {
		if (pr_json_to_i64(f, &n) < 0 || n < -1 || n > 1000000000) {
			snprintf(why, whylen, "%s", c->times_why);
			return -1;
		}
		if (n == 0) {
			snprintf(why, whylen, "%s", c->zero_why);
			return -1;
		}
		a->times = n;
	}
	a->fault = pr_xcalloc(1, c->size);
	if (c->parse(spec, a->kind, a->fault, why, whylen) < 0)
		return -1;
	on = pr_json_get(spec, "on");
	if (!(a->on = on ? on_mask(c, on) : on_word(c, a->kind->on))) {
		bad_on(c, why, whylen);
		return -1;
	}
	if (!(a->on &= a->kind->may)) {
		snprintf(why, whylen, "a %s fault cannot strike on that request kind",
		    a->kind->name);
		return -1;
	}
	a->spec = pr_json_copy(spec);
	if (!on)
		pr_json_set_string(a->spec, "on", a->kind->on);
	pr_json_set(a->spec, "times", pr_json_int(a->times));
	if (c->list)
		c->list(a->spec, a->fault);
	return 0;
}

int
pr_faultset_add(struct pr_faultset *set, const cJSON *spec, char *why, size_t whylen)
{
	struct pr_armed *list = NULL, **tail = &list, *a, **end;
	bool many = cJSON_IsArray(spec);
	const cJSON *one;

	if (many && !spec->child && set->conf->empty_why) {
		snprintf(why, whylen, "%s", set->conf->empty_why);
		return -1;
	}
	/* All or nothing: parse every one before arming any. */
	for (one = many ? spec->child : spec; one; one = many ? one->next : NULL) {
		a = pr_xcalloc(1, sizeof *a);
		*tail = a;
		tail = &a->next;
		if (parse_one(set->conf, one, a, why, whylen) < 0) {
			free_list(list);
			return -1;
		}
	}
	pthread_mutex_lock(set->lock);
	for (end = &set->head; *end; end = &(*end)->next)
		;
	*end = list;
	pthread_mutex_unlock(set->lock);
	return 0;
}

cJSON *
pr_faultset_list(struct pr_faultset *set)
{
	cJSON *out = pr_json_array();
	struct pr_armed *a;

	pthread_mutex_lock(set->lock);
	for (a = set->head; a; a = a->next)
		cJSON_AddItemToArray(out, pr_json_copy(a->spec));
	pthread_mutex_unlock(set->lock);
	return out;
}

void
pr_faultset_clear(struct pr_faultset *set)
{
	pthread_mutex_lock(set->lock);
	free_list(set->head);
	set->head = NULL;
	pthread_mutex_unlock(set->lock);
}

bool
pr_faultset_take_locked(struct pr_faultset *set, unsigned kinds, int req,
    bool (*match)(const void *fault, const void *arg), const void *arg,
    void *out, char *names, size_t nameslen)
{
	struct pr_armed **pp, *a;
	size_t n;

	for (pp = &set->head; (a = *pp); pp = &a->next) {
		if (!(a->kind->bit & kinds) || !(a->on & (1u << req)))
			continue;
		if (match && !match(a->fault, arg))
			continue;
		memcpy(out, a->fault, set->conf->size);
		n = strnlen(names, nameslen);
		if (n + 1 < nameslen)
			snprintf(names + n, nameslen - n, "%s%s", n ? "," : "", a->kind->name);
		if (a->times > 0 && --a->times == 0) {
			*pp = a->next;
			a->next = NULL;
			free_list(a);
		} else if (a->times > 0) {
			pr_json_set(a->spec, "times", pr_json_int(a->times));
		}
		return true;
	}
	return false;
}
