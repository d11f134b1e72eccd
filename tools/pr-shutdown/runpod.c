/*
 * Stopping a RunPod pod (PEERS §5): the REST API first (what runpodctl
 * itself now uses), then GraphQL (whose errors come with HTTP 200 and an
 * "errors" array), then runpodctl, which the pod has installed with its
 * own key. No answer is believed on its own word: a "stopped" pod must
 * show the state asked for before we say so (runpod-python #450: a call
 * answered 200 and did nothing).
 */
/* explicit_bzero(3) */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash.h"
#include "shutdown.h"

#define ANSWER_MAX (1024 * 1024)

/* One call with the key in a header: never in the URL, never shown. */
static int
call(struct pod *p, const char *method, const char *url, const char *body,
    struct pr_http_response *r)
{
	char auth[1024];
	const char *hdrs[] = { auth, "Content-Type: application/json", NULL };
	struct pr_http_call c = {
		.method = method, .path = url, .url = true, .headers = hdrs,
		.data = body, .data_len = body ? strlen(body) : 0, .max = ANSWER_MAX,
		.idempotent = strcmp(method, "GET") == 0,
	};
	int rc;

	snprintf(auth, sizeof auth, "Authorization: Bearer %s", p->key);
	if (!body)
		hdrs[1] = NULL;
	rc = pr_http_call(p->http, &c, r);
	explicit_bzero(auth, sizeof auth);
	pr_crash_point("answered");
	return rc;
}

/* What a REST or GraphQL pod object says: state, price, volume. */
static void
take_pod(struct pod *p, const cJSON *pod)
{
	const char *s = pr_json_get_string(pod, "desiredStatus");
	const cJSON *cost = pr_json_get(pod, "costPerHr");
	const cJSON *vol = pr_json_get(pod, "networkVolumeId");
	double price;

	if (s)
		snprintf(p->status, sizeof p->status, "%s", s);
	if (pr_json_to_double(cost, &price) == 0)
		p->cost_per_hr = price;
	if (vol && cJSON_IsString(vol) && *vol->valuestring)
		p->network_volume = true;
}

/* The API's own words for a refusal, one line. */
static void
refusal(const struct pr_http_response *r, const char *what, char *err, size_t len)
{
	struct pr_json_error e;
	cJSON *j = pr_json_parse(r->body.data, r->body.len, &e, NULL);
	const char *msg = pr_json_get_string(j, "error");

	if (!msg)
		msg = pr_json_get_string(cJSON_GetArrayItem(pr_json_get(j, "errors"), 0), "message");
	if (!msg)
		msg = pr_json_get_string(j, "message");
	snprintf(err, len, "%s: HTTP %ld%s%.200s", what, r->status, msg ? ": " : "", msg ? msg : "");
	cJSON_Delete(j);
}

/* GET /pods/ID: 1 when it answered (gone: 404), 0 when it could not. */
static int
rest_look(struct pod *p, bool *gone)
{
	struct pr_http_response r = { 0 };
	struct pr_json_error e;
	char *url = pr_xasprintf("%s/pods/%s", p->rest, p->id);
	cJSON *j;
	int ok = 0;

	*gone = false;
	if (call(p, "GET", url, NULL, &r) == 0) {
		if (r.status == 200 && (j = pr_json_parse(r.body.data, r.body.len, &e, NULL))) {
			take_pod(p, j);
			cJSON_Delete(j);
			ok = 1;
		} else if (r.status == 404) {
			*gone = true;
			ok = 1;
		}
	}
	pr_http_response_free(&r);
	free(url);
	return ok;
}

/* A GraphQL request: 0 with data in *data (the caller frees *all), or -1
 * with err: a transport failure, a status, or errors under HTTP 200. */
static int
graphql(struct pod *p, const char *query, const char *field, cJSON **all,
    const cJSON **data, char *err, size_t len)
{
	struct pr_http_response r = { 0 };
	struct pr_json_error e;
	struct pr_buf b = PR_BUF_INIT;
	cJSON *req = pr_json_object(), *vars = pr_json_object(), *input = pr_json_object();
	cJSON *j = NULL;
	int rc = -1;

	pr_json_set_string(input, "podId", p->id);
	pr_json_set(vars, "input", input);
	pr_json_set_string(req, "query", query);
	pr_json_set(req, "variables", vars);
	pr_json_write(&b, req, 0);
	if (call(p, "POST", p->graphql, b.data, &r) < 0) {
		snprintf(err, len, "GraphQL %s: %s", field, r.err);
	} else if (r.status != 200) {
		refusal(&r, "GraphQL", err, len);
	} else if (!(j = pr_json_parse(r.body.data, r.body.len, &e, NULL))) {
		snprintf(err, len, "GraphQL %s: the answer is not JSON", field);
	} else if (cJSON_GetArraySize(pr_json_get(j, "errors")) > 0) {
		refusal(&r, "GraphQL", err, len);
	} else if (!cJSON_IsObject(pr_json_get(j, "data"))) {
		snprintf(err, len, "GraphQL %s: the answer has no data", field);
	} else {
		*data = pr_json_get(pr_json_get(j, "data"), field);
		*all = j;
		j = NULL;
		rc = 0;
	}
	cJSON_Delete(j);
	cJSON_Delete(req);
	pr_buf_free(&b);
	pr_http_response_free(&r);
	return rc;
}

static int
graphql_look(struct pod *p, bool *gone)
{
	const cJSON *pod = NULL;
	cJSON *all = NULL;
	char err[256];

	*gone = false;
	if (graphql(p, "query Pod($input: PodFilter!) { pod(input: $input) "
	    "{ id desiredStatus costPerHr } }", "pod", &all, &pod, err, sizeof err) < 0)
		return 0;
	if (cJSON_IsNull(pod) || !pod)
		*gone = true;
	else
		take_pod(p, pod);
	cJSON_Delete(all);
	return 1;
}

bool
pod_look(struct pod *p)
{
	bool gone;

	if (!p->key)
		return false;
	if (!rest_look(p, &gone) && !graphql_look(p, &gone))
		return false;
	if (gone)
		snprintf(p->status, sizeof p->status, "TERMINATED");
	return true;
}

/* Waits for the state asked for: EXITED, or (terminate) gone. */
static bool
confirmed(struct pod *p, bool terminate)
{
	double until = pr_monotonic() + p->confirm_time;
	bool gone;
	int seen;

	if (!p->key)
		return true;   /* runpodctl's word is all there is */
	for (;;) {
		seen = rest_look(p, &gone) || graphql_look(p, &gone);
		if (seen && gone && terminate)
			snprintf(p->status, sizeof p->status, "TERMINATED");
		if (seen && (terminate ? gone || strcmp(p->status, "TERMINATED") == 0 :
		    strcmp(p->status, "EXITED") == 0 || strcmp(p->status, "TERMINATED") == 0))
			return true;
		if (pr_monotonic() >= until)
			return false;
		pr_sleep(0.5);
	}
}

static int
by_rest(struct pod *p, bool terminate, char *err, size_t len)
{
	struct pr_http_response r = { 0 };
	char *url = terminate ? pr_xasprintf("%s/pods/%s", p->rest, p->id) :
	    pr_xasprintf("%s/pods/%s/stop", p->rest, p->id);
	int rc = -1;

	if (call(p, terminate ? "DELETE" : "POST", url, terminate ? NULL : "{}", &r) < 0) {
		snprintf(err, len, "REST: %s", r.err);
	} else if (r.status == 200 || r.status == 204) {
		rc = 0;
	} else {
		refusal(&r, "REST", err, len);
		if (strstr(r.body.data, "network volume"))
			p->network_volume = true;
	}
	pr_http_response_free(&r);
	free(url);
	return rc;
}

static int
by_graphql(struct pod *p, bool terminate, char *err, size_t len)
{
	const cJSON *data = NULL;
	cJSON *all = NULL;

	if (graphql(p, terminate ?
	    "mutation Terminate($input: PodTerminateInput!) { podTerminate(input: $input) }" :
	    "mutation Stop($input: PodStopInput!) { podStop(input: $input) { id desiredStatus } }",
	    terminate ? "podTerminate" : "podStop", &all, &data, err, len) < 0) {
		if (strstr(err, "network volume"))
			p->network_volume = true;
		return -1;
	}
	if (data)
		take_pod(p, data);
	cJSON_Delete(all);
	return 0;
}

static int
by_runpodctl(struct pod *p, bool terminate, char *err, size_t len)
{
	char *argv[] = { "runpodctl", terminate ? "remove" : "stop", "pod", (char *)p->id, NULL };
	struct pr_buf out = PR_BUF_INIT, cerr = PR_BUF_INIT;
	int st;

	st = pr_run(argv, &out, 64 * 1024, &cerr);
	if (st < 0)
		snprintf(err, len, "runpodctl: %s", strerror(errno));
	else if (st != 0)
		snprintf(err, len, "runpodctl: exit status %d: %.200s", st,
		    cerr.len ? cerr.data : "");
	pr_buf_free(&out);
	pr_buf_free(&cerr);
	return st == 0 ? 0 : -1;
}

int
pod_stop(struct pod *p, bool terminate, char *err, size_t len)
{
	static const struct {
		const char *name;
		int (*run)(struct pod *, bool, char *, size_t);
		bool needs_key;
	} ways[] = {
		{ "rest", by_rest, true },
		{ "graphql", by_graphql, true },
		{ "runpodctl", by_runpodctl, false },
	};
	struct pr_buf why = PR_BUF_INIT;
	char one[400];
	size_t i;

	for (i = 0; i < sizeof ways / sizeof ways[0]; i++) {
		if (ways[i].needs_key && !p->key)
			continue;
		if (ways[i].run(p, terminate, one, sizeof one) == 0) {
			if (confirmed(p, terminate)) {
				p->via = ways[i].name;
				pr_buf_free(&why);
				return 0;
			}
			snprintf(one, sizeof one, "%s: answered, but the pod is still %s after %g s",
			    ways[i].name, p->status[0] ? p->status : "there", p->confirm_time);
		}
		pr_warn("%s", one);
		pr_buf_printf(&why, "%s%s", why.len ? "; " : "", one);
		/* Nothing else will stop it either. */
		if (p->network_volume && !terminate)
			break;
	}
	if (p->network_volume && !terminate)
		snprintf(err, len, "pod %s has a network volume: it cannot be stopped, only "
		    "terminated (--terminate)", p->id);
	else
		snprintf(err, len, "could not %s pod %s: %s", terminate ? "terminate" : "stop",
		    p->id, why.len ? why.data : "no RUNPOD_API_KEY and no runpodctl");
	pr_buf_free(&why);
	return -1;
}
