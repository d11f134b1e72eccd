/*
 * Faults on request. Each armed fault is a JSON object (fake-gcs(1)
 * lists the kinds) saying what happens, on which kind of request ("on"),
 * from which byte offset ("after_bytes") and how many times ("times",
 * default 1, -1 for ever). Each is checked where it acts: drop, stall,
 * status and cut when the request head is in, partial and a chunk's cut
 * in the chunk, expire at the session, unauthorized at the token check,
 * corrupt when an object is finalized. What arming and taking share with
 * fake-runpod is faultset.h's; the kinds and their fields are here.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "fake.h"
#include "faultset.h"
#include "http.h"

#define BIT(k) (1u << (k))
#define ALL_KINDS (BIT(K_COUNT) - 1)
#define SESSION_KINDS (BIT(K_CHUNK) | BIT(K_QUERY) | BIT(K_CANCEL))
#define AUTH_KINDS (BIT(K_MEDIA) | BIT(K_MULTIPART) | BIT(K_INITIATE) | \
    BIT(K_METADATA) | BIT(K_DOWNLOAD) | BIT(K_DELETE))
#define FINAL_KINDS (BIT(K_MEDIA) | BIT(K_MULTIPART) | BIT(K_CHUNK) | BIT(K_QUERY))

static const struct pr_fault_kind kinds[] = {
	{ "status", F_STATUS, ALL_KINDS, "any", "code retry_after" },
	{ "cut", F_CUT, ALL_KINDS, "chunk", "bytes persist" },
	{ "partial", F_PARTIAL, BIT(K_CHUNK), "chunk", "keep" },
	{ "expire", F_EXPIRE, SESSION_KINDS, "session", "code" },
	{ "unauthorized", F_UNAUTHORIZED, AUTH_KINDS, "any", "" },
	{ "corrupt", F_CORRUPT, FINAL_KINDS, "any", "" },
	{ "stall", F_STALL, ALL_KINDS, "chunk", "seconds" },
	{ "drop", F_DROP, ALL_KINDS, "any", "" },
};

static const struct pr_fault_group groups[] = {
	{ "session", SESSION_KINDS },
};

const char *const kind_names[K_COUNT] = {
	"media", "multipart", "initiate", "chunk", "query", "cancel",
	"metadata", "download", "delete", "token", "metadata_token", "other",
};

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
parse(const cJSON *spec, const struct pr_fault_kind *k, void *fault, char *why, size_t whylen)
{
	struct fault *f = fault;
	const cJSON *c;
	double sec;

	f->kind = (enum fault_kind)k->bit;
	f->code = f->kind == F_EXPIRE ? 404 : 503;
	f->retry_after = -1;
	f->bytes = -1;
	f->after_bytes = -1;
	f->seconds = 10;
	if (int_field(spec, "after_bytes", 0, (long long)1 << 50, &f->after_bytes, why, whylen) < 0 ||
	    int_field(spec, "retry_after", 0, 86400, &f->retry_after, why, whylen) < 0 ||
	    int_field(spec, "bytes", 0, (long long)1 << 50, &f->bytes, why, whylen) < 0 ||
	    int_field(spec, "keep", 0, (long long)1 << 50, &f->keep, why, whylen) < 0)
		return -1;
	if (pr_json_get(spec, "code")) {
		long long code = 0;

		if (int_field(spec, "code", 200, 599, &code, why, whylen) < 0)
			return -1;
		if (f->kind == F_EXPIRE && code != 404 && code != 410) {
			snprintf(why, whylen, "an expire fault answers 404 or 410");
			return -1;
		}
		f->code = (int)code;
	}
	if ((c = pr_json_get(spec, "persist"))) {
		if (!cJSON_IsBool(c)) {
			snprintf(why, whylen, "\"persist\" must be true or false");
			return -1;
		}
		f->persist = cJSON_IsTrue(c);
	}
	if ((c = pr_json_get(spec, "seconds"))) {
		if (!pr_json_is_number(c) || !((sec = strtod(c->valuestring, NULL)) >= 0) ||
		    sec > 3600 || !isfinite(sec)) {
			snprintf(why, whylen, "\"seconds\" must be a number from 0 to 3600");
			return -1;
		}
		f->seconds = sec;
	}
	return 0;
}

static const struct pr_faultset_conf conf = {
	.kinds = kinds,
	.nkinds = sizeof kinds / sizeof kinds[0],
	.requests = kind_names,
	.nrequests = K_COUNT,
	.groups = groups,
	.ngroups = sizeof groups / sizeof groups[0],
	.fields = "after_bytes",
	.size = sizeof(struct fault),
	.times_why = "\"times\" must be a whole number from -1 to 1000000000",
	.zero_why = "\"times\" must be at least 1, or -1 for ever",
	.parse = parse,
};

struct pr_faultset faults = { &conf, &S.lock, NULL };

int
faults_add(const cJSON *spec, char *why, size_t whylen)
{
	return pr_faultset_add(&faults, spec, why, whylen);
}

/* A fault from an offset on strikes only once the body is known to
 * reach past it. */
static bool
reached(const void *fault, const void *arg)
{
	const struct fault *f = fault;
	long long end = *(const long long *)arg;

	return f->after_bytes < 0 || (end >= 0 && end > f->after_bytes);
}

bool
fault_take(struct req *r, unsigned kinds_mask, enum kind k, long long end,
    struct fault *out)
{
	bool hit;

	pthread_mutex_lock(&S.lock);
	if ((hit = pr_faultset_take_locked(&faults, kinds_mask, k, reached, &end, out,
	    r->faults, sizeof r->faults)))
		S.n.faults_fired++;
	pthread_mutex_unlock(&S.lock);
	return hit;
}
