/*
 * Faults on request. Each armed fault is a JSON object (fake-gcs(1)
 * lists the kinds) saying what happens, on which kind of request ("on"),
 * from which byte offset ("after_bytes") and how many times ("times",
 * default 1, -1 for ever). Each is checked where it acts: drop, stall,
 * status and cut when the request head is in, partial and a chunk's cut
 * in the chunk, expire at the session, unauthorized at the token check,
 * corrupt when an object is finalized.
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
#define SESSION_KINDS (BIT(K_CHUNK) | BIT(K_QUERY) | BIT(K_CANCEL))
#define AUTH_KINDS (BIT(K_MEDIA) | BIT(K_MULTIPART) | BIT(K_INITIATE) | \
    BIT(K_METADATA) | BIT(K_DOWNLOAD) | BIT(K_DELETE))
#define FINAL_KINDS (BIT(K_MEDIA) | BIT(K_MULTIPART) | BIT(K_CHUNK) | BIT(K_QUERY))

static const struct {
	const char *name;
	enum fault_kind kind;
	unsigned may;           /* the request kinds it can strike */
	const char *on;         /* its default "on" */
	const char *fields;     /* its own fields, space separated */
} kinds[] = {
	{ "status", F_STATUS, ALL_KINDS, "any", "code retry_after" },
	{ "cut", F_CUT, ALL_KINDS, "chunk", "bytes persist" },
	{ "partial", F_PARTIAL, BIT(K_CHUNK), "chunk", "keep" },
	{ "expire", F_EXPIRE, SESSION_KINDS, "session", "code" },
	{ "unauthorized", F_UNAUTHORIZED, AUTH_KINDS, "any", "" },
	{ "corrupt", F_CORRUPT, FINAL_KINDS, "any", "" },
	{ "stall", F_STALL, ALL_KINDS, "chunk", "seconds" },
	{ "drop", F_DROP, ALL_KINDS, "any", "" },
};

const char *const kind_names[K_COUNT] = {
	"media", "multipart", "initiate", "chunk", "query", "cancel",
	"metadata", "download", "delete", "token", "metadata_token", "other",
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
	if (strcmp(s, "session") == 0)
		return SESSION_KINDS;
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
int_field(const cJSON *f, const char *key, long long lo, long long hi, long long *out,
    char *why, size_t whylen)
{
	const cJSON *v = pr_json_get(f, key);
	int64_t n;

	if (!v)
		return 0;
	if (pr_json_to_i64(v, &n) < 0 || n < lo || n > hi) {
		snprintf(why, whylen, "\"%s\" must be a whole number from %lld to %lld", key, lo, hi);
		return -1;
	}
	*out = n;
	return 0;
}

static int
parse_one(const cJSON *spec, struct armed *a, char *why, size_t whylen)
{
	const char *kind;
	const cJSON *c, *on;
	size_t i;
	unsigned mask = 0;
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
		snprintf(why, whylen, "unknown fault kind \"%s\" (status, cut, partial, "
		    "expire, unauthorized, corrupt, stall, drop)", kind ? kind : "");
		return -1;
	}
	cJSON_ArrayForEach(c, spec) {
		if (word_in("kind times on after_bytes", c->string) ||
		    word_in(kinds[i].fields, c->string))
			continue;
		snprintf(why, whylen, "a %s fault has no field \"%s\"", kinds[i].name, c->string);
		return -1;
	}
	a->f.kind = kinds[i].kind;
	a->f.code = a->f.kind == F_EXPIRE ? 404 : 503;
	a->f.retry_after = -1;
	a->f.bytes = -1;
	a->f.after_bytes = -1;
	a->f.seconds = 10;
	a->times = 1;
	if (int_field(spec, "times", -1, 1000000000, &a->times, why, whylen) < 0)
		return -1;
	if (a->times == 0) {
		snprintf(why, whylen, "\"times\" must be at least 1, or -1 for ever");
		return -1;
	}
	if (int_field(spec, "after_bytes", 0, (long long)1 << 50, &a->f.after_bytes, why, whylen) < 0 ||
	    int_field(spec, "retry_after", 0, 86400, &a->f.retry_after, why, whylen) < 0 ||
	    int_field(spec, "bytes", 0, (long long)1 << 50, &a->f.bytes, why, whylen) < 0 ||
	    int_field(spec, "keep", 0, (long long)1 << 50, &a->f.keep, why, whylen) < 0)
		return -1;
	if (pr_json_get(spec, "code")) {
		long long code = 0;

		if (int_field(spec, "code", 200, 599, &code, why, whylen) < 0)
			return -1;
		if (a->f.kind == F_EXPIRE && code != 404 && code != 410) {
			snprintf(why, whylen, "an expire fault answers 404 or 410");
			return -1;
		}
		a->f.code = (int)code;
	}
	if ((c = pr_json_get(spec, "persist"))) {
		if (!cJSON_IsBool(c)) {
			snprintf(why, whylen, "\"persist\" must be true or false");
			return -1;
		}
		a->f.persist = cJSON_IsTrue(c);
	}
	if ((c = pr_json_get(spec, "seconds"))) {
		if (!pr_json_is_number(c) || !((sec = strtod(c->valuestring, NULL)) >= 0) ||
		    sec > 3600 || !isfinite(sec)) {
			snprintf(why, whylen, "\"seconds\" must be a number from 0 to 3600");
			return -1;
		}
		a->f.seconds = sec;
	}

	/* "on": a word or a list of them. */
	on = pr_json_get(spec, "on");
	if (!on) {
		mask = on_word(kinds[i].on);
	} else if (cJSON_IsString(on)) {
		mask = on_word(on->valuestring);
		if (!mask)
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
	a->on = mask & kinds[i].may;
	if (!a->on) {
		snprintf(why, whylen, "a %s fault cannot strike on that request kind", kinds[i].name);
		return -1;
	}
	a->spec = pr_json_copy(spec);
	if (!on)
		pr_json_set_string(a->spec, "on", kinds[i].on);
	pr_json_set(a->spec, "times", pr_json_int(a->times));
	return 0;
bad_on:
	snprintf(why, whylen, "\"on\" must be any, session, media, multipart, initiate, "
	    "chunk, query, cancel, metadata, download, delete, token, metadata_token or "
	    "other, or a list of them");
	return -1;
}

int
faults_add(const cJSON *spec, char *why, size_t whylen)
{
	struct armed *list = NULL, **tail = &list, *a, **end;
	const cJSON *one;

	/* All or nothing: parse every one before arming any. */
	if (cJSON_IsArray(spec)) {
		cJSON_ArrayForEach(one, spec) {
			a = pr_xcalloc(1, sizeof *a);
			*tail = a;
			tail = &a->next;
			if (parse_one(one, a, why, whylen) < 0)
				goto bad;
		}
	} else {
		a = pr_xcalloc(1, sizeof *a);
		*tail = a;
		if (parse_one(spec, a, why, whylen) < 0)
			goto bad;
	}
	pthread_mutex_lock(&S.lock);
	for (end = &S.faults; *end; end = &(*end)->next)
		;
	*end = list;
	pthread_mutex_unlock(&S.lock);
	return 0;
bad:
	while ((a = list)) {
		list = a->next;
		cJSON_Delete(a->spec);
		free(a);
	}
	return -1;
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
	struct armed *a;

	pthread_mutex_lock(&S.lock);
	while ((a = S.faults)) {
		S.faults = a->next;
		cJSON_Delete(a->spec);
		free(a);
	}
	pthread_mutex_unlock(&S.lock);
}

bool
fault_take(struct req *r, unsigned kinds_mask, enum kind k, long long end,
    struct fault *out)
{
	struct armed **pp, *a;
	size_t n;

	pthread_mutex_lock(&S.lock);
	for (pp = &S.faults; (a = *pp); pp = &a->next) {
		if (!(a->f.kind & kinds_mask) || !(a->on & BIT(k)))
			continue;
		if (a->f.after_bytes >= 0 && (end < 0 || end <= a->f.after_bytes))
			continue;
		*out = a->f;
		if (a->times > 0 && --a->times == 0) {
			*pp = a->next;
			cJSON_Delete(a->spec);
			free(a);
		} else if (a->times > 0) {
			pr_json_set(a->spec, "times", pr_json_int(a->times));
		}
		S.n.faults_fired++;
		n = strlen(r->faults);
		snprintf(r->faults + n, sizeof r->faults - n, "%s%s", n ? "," : "",
		    fault_name(out->kind));
		pthread_mutex_unlock(&S.lock);
		return true;
	}
	pthread_mutex_unlock(&S.lock);
	return false;
}
