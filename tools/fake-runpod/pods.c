/*
 * The pods: a list in creation order under S.lock. A change accepted by a
 * stop, start or terminate is applied at once, or after --stop-delay
 * seconds; it is applied lazily, whenever the pod is looked at.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake.h"

const char *const status_names[3] = { "RUNNING", "EXITED", "TERMINATED" };

bool
pod_id_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

int
status_parse(const char *s)
{
	int i;

	for (i = 0; i < 3; i++)
		if (strcmp(s, status_names[i]) == 0)
			return i;
	return -1;
}

void
pod_put(const char *id, enum status st, bool network)
{
	struct pod *p, **pp;

	for (pp = &S.pods; (p = *pp); pp = &p->next)
		if (strcmp(p->id, id) == 0)
			break;
	if (!p) {
		p = pr_xcalloc(1, sizeof *p);
		p->id = pr_xstrdup(id);
		*pp = p;
	}
	p->status = st;
	p->pending = false;
	p->network = network;
	p->changed = pr_wall();
}

static void
settle(struct pod *p)
{
	if (p->pending && pr_monotonic() >= p->due) {
		p->pending = false;
		if (p->status != p->target) {
			p->status = p->target;
			p->changed = pr_wall();
		}
	}
}

struct pod *
pod_find(const char *id)
{
	struct pod *p;

	for (p = S.pods; p; p = p->next)
		if (strcmp(p->id, id) == 0) {
			settle(p);
			return p;
		}
	return NULL;
}

void
pod_change(struct pod *p, enum status to)
{
	/* A later change replaces one still pending, but a terminate is final. */
	if (p->pending && p->target == ST_TERMINATED)
		return;
	p->pending = true;
	p->target = to;
	p->due = pr_monotonic() + S.set.stop_delay;
	if (S.set.stop_delay <= 0)
		settle(p);
}

/* Like RunPod's: "Exited by User: Tue Nov 24 2026 10:00:00 GMT+0000 (...)". */
static void
change_text(const struct pod *p, char *out, size_t n)
{
	static const char *const verbs[3] = { "Rented", "Exited", "Terminated" };
	time_t t = (time_t)p->changed;
	struct tm tm;
	char when[64];

	gmtime_r(&t, &tm);
	strftime(when, sizeof when, "%a %b %d %Y %H:%M:%S", &tm);
	snprintf(out, n, "%s by User: %s GMT+0000 (Coordinated Universal Time)",
	    verbs[p->status], when);
}

cJSON *
pod_json(const struct pod *p)
{
	cJSON *o = pr_json_object();
	char buf[160];

	pr_json_set_string(o, "id", p->id);
	snprintf(buf, sizeof buf, "pod-%s", p->id);
	pr_json_set_string(o, "name", buf);
	pr_json_set_string(o, "desiredStatus", status_names[p->status]);
	cJSON_AddItemToObject(o, "costPerHr", pr_json_number_text(S.set.price));
	pr_json_set_int(o, "gpuCount", 1);
	pr_json_set_string(o, "imageName", "runpod/pytorch");
	change_text(p, buf, sizeof buf);
	pr_json_set_string(o, "lastStatusChange", buf);
	if (p->network) {
		snprintf(buf, sizeof buf, "vol-%s", p->id);
		pr_json_set_string(o, "networkVolumeId", buf);
	} else {
		cJSON_AddItemToObject(o, "networkVolumeId", pr_json_null());
	}
	return o;
}

cJSON *
pods_state(void)
{
	cJSON *list = pr_json_array(), *o;
	struct pod *p;

	for (p = S.pods; p; p = p->next) {
		settle(p);
		o = pr_json_object();
		pr_json_set_string(o, "id", p->id);
		pr_json_set_string(o, "desiredStatus", status_names[p->status]);
		cJSON_AddItemToObject(o, "volume", p->network ? pr_json_string("network") :
		    pr_json_null());
		cJSON_AddItemToObject(o, "pending", p->pending ?
		    pr_json_string(status_names[p->target]) : pr_json_null());
		cJSON_AddItemToArray(list, o);
	}
	return list;
}

int
pod_option(const char *arg, char *why, size_t whylen)
{
	char *copy = pr_xstrdup(arg), *st, *vol;
	int status = ST_RUNNING, rc = -1;

	if ((st = strchr(copy, ':'))) {
		*st++ = '\0';
		if ((vol = strchr(st, ':')))
			*vol++ = '\0';
	} else {
		vol = NULL;
	}
	if (!pod_id_ok(copy)) {
		snprintf(why, whylen, "a pod id is 1 to 64 letters, digits, '_' or '-'");
		goto out;
	}
	if (st && *st && (status = status_parse(st)) < 0) {
		snprintf(why, whylen, "the status is RUNNING, EXITED or TERMINATED");
		goto out;
	}
	if (vol && *vol && strcmp(vol, "network") != 0) {
		snprintf(why, whylen, "the volume is \"network\" or nothing");
		goto out;
	}
	pthread_mutex_lock(&S.lock);
	pod_put(copy, (enum status)status, vol && *vol);
	pthread_mutex_unlock(&S.lock);
	rc = 0;
out:
	free(copy);
	return rc;
}

void
pods_free(void)
{
	struct pod *p;

	while ((p = S.pods)) {
		S.pods = p->next;
		free(p->id);
		free(p);
	}
}
