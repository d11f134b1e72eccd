/*
 * Faults armed on request, as the HTTP stand-ins (fake-gcs, fake-runpod)
 * take them: each is a JSON object naming its "kind", the request kinds
 * it strikes ("on": a word or a list of them, "any" for all) and how many
 * times ("times", default 1, -1 for ever). The set checks what they
 * share and lists each as armed, defaults filled and times counting down;
 * each stand-in describes its kinds in a table and parses its own fields.
 */
#ifndef PR_FAULTSET_H
#define PR_FAULTSET_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "json.h"

struct pr_fault_kind {
	const char *name;
	unsigned bit;           /* the stand-in's own value for it: one bit */
	unsigned may;           /* mask of 1 << request kind: what it can strike */
	const char *on;         /* its default "on" */
	const char *fields;     /* its own fields, space separated */
};

/* An "on" word for several request kinds, like fake-gcs's "session". */
struct pr_fault_group {
	const char *word;
	unsigned mask;
};

struct pr_faultset_conf {
	const struct pr_fault_kind *kinds;      /* in the order messages list them */
	size_t nkinds;
	const char *const *requests;            /* request kind names, by value */
	int nrequests;
	const struct pr_fault_group *groups;
	size_t ngroups;
	const char *fields;     /* fields of every kind besides kind, times, on */
	size_t size;            /* of the stand-in's fault, handed to parse */
	int quote_max;          /* bytes of an unknown name quoted; 0: all */
	/* Why "times" is refused: not a whole number from -1 to 1000000000,
	 * and 0. The stand-ins word these differently. */
	const char *times_why;
	const char *zero_why;
	const char *empty_why;  /* an empty list is refused; NULL: arms nothing */
	/* Fills the fault (zeroed) for kind k: its defaults, then its fields
	 * from spec, in the order they are checked. -1 with why. */
	int (*parse)(const cJSON *spec, const struct pr_fault_kind *k, void *fault,
	    char *why, size_t whylen);
	/* NULL, or adds what the listing shows of fault to spec (defaults). */
	void (*list)(cJSON *spec, const void *fault);
};

struct pr_armed;

/* Statically initialised: { &conf, &lock }. The lock may guard more. */
struct pr_faultset {
	const struct pr_faultset_conf *conf;
	pthread_mutex_t *lock;
	struct pr_armed *head;  /* in arming order */
};

/* Arms one fault object or an array of them, all or none; -1 with why. */
int pr_faultset_add(struct pr_faultset *set, const cJSON *spec, char *why, size_t whylen);
/* The armed faults as a JSON array (the caller's). */
cJSON *pr_faultset_list(struct pr_faultset *set);
void pr_faultset_clear(struct pr_faultset *set);
/* With set->lock held: takes one shot of the first armed fault of one of
 * kinds (a mask of bits) that strikes request kind req and that match
 * (NULL: any) accepts, copying it to out and appending its name to the
 * comma-separated names. false if none. */
bool pr_faultset_take_locked(struct pr_faultset *set, unsigned kinds, int req,
    bool (*match)(const void *fault, const void *arg), const void *arg,
    void *out, char *names, size_t nameslen);

#endif
