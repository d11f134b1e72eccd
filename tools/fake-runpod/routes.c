/*
 * Which request is which, what every request goes through (counters,
 * faults at the head, the API key), the REST pod routes, the log, and the
 * control endpoint under /fake/, which is neither counted, logged nor
 * authenticated.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fake.h"
#include "fakectl.h"
#include "http.h"
#include "urlcode.h"


void
rest_error(struct req *r, int code, const char *fmt, ...)
{
	cJSON *o = pr_json_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pr_json_set_string(o, "error", msg);
	pr_httpd_json(&r->http, code, NULL, o);
	cJSON_Delete(o);
}

/* ---- which request ---- */

/* The kind; *id gets the pod id of a /v1/pods/ID path, *allowed is false
 * for a known path with the wrong method. */
static enum kind
classify(struct req *r, char *id, size_t idlen, bool *allowed)
{
	const char *rest, *slash, *m = r->http.method;
	size_t n;

	*allowed = true;
	if (strcmp(r->http.path, "/graphql") == 0)
		return K_GRAPHQL;
	if (strncmp(r->http.path, "/v1/pods/", 9) != 0)
		return K_OTHER;
	rest = r->http.path + 9;
	slash = strchr(rest, '/');
	n = slash ? (size_t)(slash - rest) : strlen(rest);
	if (n == 0 || n >= idlen)
		return K_OTHER;
	memcpy(id, rest, n);
	id[n] = '\0';
	if (!slash) {
		if (strcmp(m, "GET") == 0)
			return K_REST_GET;
		if (strcmp(m, "DELETE") == 0)
			return K_REST_DELETE;
	} else if (strcmp(slash, "/stop") == 0 || strcmp(slash, "/start") == 0) {
		if (strcmp(m, "POST") == 0)
			return slash[3] == 'o' ? K_REST_STOP : K_REST_START;
	} else {
		return K_OTHER;
	}
	*allowed = false;
	return K_OTHER;
}

/* ---- the API key ---- */

static bool
key_eq(const char *given, const char *key)
{
	size_t n = strlen(given), m = strlen(key), i;
	unsigned char d = n != m;

	for (i = 0; i < n && i < m; i++)
		d |= (unsigned char)(given[i] ^ key[i]);
	return d == 0;
}

/* Every credential given must be the key, and one must be given: the
 * header on both APIs, ?api_key= on GraphQL. */
static bool
authorized(struct req *r)
{
	const char *h = pr_httpd_header(&r->http, "Authorization"), *tok;
	char *q = NULL;
	bool ok = true;
	int given = 0;

	if (!S.set.key)
		return true;
	if (h) {
		given++;
		if (strncasecmp(h, "Bearer ", 7) == 0) {
			for (tok = h + 7; *tok == ' '; tok++)
				;
			ok = ok && key_eq(tok, S.set.key);
		} else {
			ok = false;
		}
	}
	if (r->kind == K_GRAPHQL) {
		switch (pr_httpd_query(&r->http, "api_key", &q)) {
		case 1: given++; ok = ok && key_eq(q, S.set.key); break;
		case -1: given++; ok = false; break;
		default: break;
		}
		free(q);
	}
	if (given > 0 && ok)
		return true;
	pthread_mutex_lock(&S.lock);
	S.n.unauthorized++;
	pthread_mutex_unlock(&S.lock);
	if (r->kind == K_GRAPHQL) {
		cJSON *o = pr_json_object(), *list = pr_json_array(), *e = pr_json_object();

		pr_json_set_string(e, "message", given ? "Unauthorized: invalid API key" :
		    "Unauthorized: an API key is required");
		cJSON_AddItemToArray(list, e);
		cJSON_AddItemToObject(o, "errors", list);
		cJSON_AddItemToObject(o, "data", pr_json_null());
		pr_httpd_json(&r->http, 401, NULL, o);
		cJSON_Delete(o);
	} else {
		rest_error(r, 401, given ? "invalid API key" : "an API key is required "
		    "(Authorization: Bearer KEY)");
	}
	return false;
}

/* ---- faults at the head ---- */

/* true when the fault answered the request (or hung up). */
static bool
head_fault(struct req *r)
{
	struct fault f;

	if (!fault_take(r, F_DROP | F_TIMEOUT | F_STATUS, r->kind, &f))
		return false;
	switch (f.kind) {
	case F_DROP:
		pr_httpd_hang_up(&r->http);
		return true;
	case F_TIMEOUT:
		pr_httpd_nap(f.seconds);
		if (pr_httpd_stopping()) {
			pr_httpd_hang_up(&r->http);
			return true;
		}
		return false;
	case F_STATUS:
		if (r->kind == K_GRAPHQL) {
			cJSON *o = pr_json_object(), *list = pr_json_array(), *e = pr_json_object();
			char msg[96];

			snprintf(msg, sizeof msg, "injected fault: HTTP %d", f.code);
			pr_json_set_string(e, "message", msg);
			cJSON_AddItemToArray(list, e);
			cJSON_AddItemToObject(o, "errors", list);
			cJSON_AddItemToObject(o, "data", pr_json_null());
			pr_httpd_json(&r->http, f.code, NULL, o);
			cJSON_Delete(o);
		} else {
			rest_error(r, f.code, "injected fault: HTTP %d", f.code);
		}
		return true;
	default:
		return false;
	}
}

/* ---- REST ---- */

static void
rest_pod(struct req *r, const char *id)
{
	static const char *const ops[K_COUNT] = { "get", "stop", "terminate", "start" };
	struct fault f;
	struct pod *p;
	cJSON *o = NULL;
	int code = 200;

	snprintf(r->op, sizeof r->op, "%s", ops[r->kind]);
	pthread_mutex_lock(&S.lock);
	p = pod_find(id);
	if (!p || p->status == ST_TERMINATED) {
		pthread_mutex_unlock(&S.lock);
		rest_error(r, 404, "pod not found");
		return;
	}
	if (r->kind == K_REST_STOP && p->network) {
		pthread_mutex_unlock(&S.lock);
		rest_error(r, 400, "pod %s has a network volume: it cannot be stopped, only "
		    "terminated", id);
		return;
	}
	switch (r->kind) {
	case K_REST_STOP:
	case K_REST_START:
		if (!fault_take_locked(r, F_IGNORE, r->kind, &f)) {
			pod_change(p, r->kind == K_REST_STOP ? ST_EXITED : ST_RUNNING);
			S.n.stops += r->kind == K_REST_STOP;
		}
		o = pod_json(p);
		pr_json_set_string(o, "desiredStatus", r->kind == K_REST_STOP ? "EXITED" : "RUNNING");
		break;
	case K_REST_DELETE:
		if (!fault_take_locked(r, F_IGNORE, r->kind, &f)) {
			pod_change(p, ST_TERMINATED);
			S.n.terminations++;
		}
		code = 204;
		break;
	default:
		o = pod_json(p);
		break;
	}
	pthread_mutex_unlock(&S.lock);
	if (o)
		pr_httpd_json(&r->http, code, NULL, o);
	else
		pr_httpd_send(&r->http, code, NULL, NULL, NULL, 0);
	cJSON_Delete(o);
}

/* ---- the control endpoint ---- */

static cJSON *
state_json(void)
{
	cJSON *s = pr_json_object(), *req = pr_json_object();
	int k;

	pthread_mutex_lock(&S.lock);
	cJSON_AddItemToObject(s, "pods", pods_state());
	for (k = 0; k < K_COUNT; k++)
		pr_json_set_int(req, kind_names[k], S.n.requests[k]);
	cJSON_AddItemToObject(s, "requests", req);
	pr_json_set_int(s, "unauthorized", S.n.unauthorized);
	pr_json_set_int(s, "faults_fired", S.n.faults_fired);
	pr_json_set_int(s, "stops", S.n.stops);
	pr_json_set_int(s, "terminations", S.n.terminations);
	pthread_mutex_unlock(&S.lock);
	return s;
}

/* POST /fake/pods: {"id": ID, "desiredStatus": S, "volume": "network"|null}. */
static int
put_pod(const cJSON *v, char *why, size_t whylen)
{
	const cJSON *vol, *c;
	const char *id, *st;
	int status = ST_RUNNING;

	if (!cJSON_IsObject(v)) {
		snprintf(why, whylen, "expected an object {\"id\", \"desiredStatus\", \"volume\"}");
		return -1;
	}
	cJSON_ArrayForEach(c, v)
		if (strcmp(c->string, "id") != 0 && strcmp(c->string, "desiredStatus") != 0 &&
		    strcmp(c->string, "volume") != 0) {
			snprintf(why, whylen, "unknown field \"%.40s\"", c->string);
			return -1;
		}
	if (!(id = pr_json_get_string(v, "id")) || !pod_id_ok(id)) {
		snprintf(why, whylen, "\"id\" must be 1 to 64 letters, digits, '_' or '-'");
		return -1;
	}
	if (pr_json_get(v, "desiredStatus") && (!(st = pr_json_get_string(v, "desiredStatus")) ||
	    (status = status_parse(st)) < 0)) {
		snprintf(why, whylen, "\"desiredStatus\" must be RUNNING, EXITED or TERMINATED");
		return -1;
	}
	vol = pr_json_get(v, "volume");
	if (vol && !cJSON_IsNull(vol) && !(cJSON_IsString(vol) &&
	    strcmp(vol->valuestring, "network") == 0)) {
		snprintf(why, whylen, "\"volume\" must be \"network\" or null");
		return -1;
	}
	pthread_mutex_lock(&S.lock);
	pod_put(id, (enum status)status, vol && cJSON_IsString(vol));
	pthread_mutex_unlock(&S.lock);
	return 0;
}

/* /fake/ requests and the request log, as every HTTP stand-in keeps them. */
static const struct pr_fakectl ctl = {
	&S.lock, &S.n, sizeof S.n, &S.log, &faults, state_json,
};

static void
control(struct req *r)
{
	static const char *const paths[] = {
		"/fake/state", "/fake/state/clear", "/fake/log", "/fake/log/clear",
		"/fake/faults", "/fake/faults/clear", "/fake/pods",
	};
	struct pr_buf body = PR_BUF_INIT;
	struct pr_json_error e;
	bool get = strcmp(r->http.method, "GET") == 0, post = strcmp(r->http.method, "POST") == 0;
	const char *p = r->http.path;
	cJSON *v;
	char why[256];
	size_t i;
	int rc;

	v = pr_fakectl_answer(&ctl, r->http.method, p);
	if (!v && post && (strcmp(p, "/fake/faults") == 0 || strcmp(p, "/fake/pods") == 0)) {
		if ((rc = pr_httpd_body_all(&r->http, BODY_MAX, &body)) == -1)
			goto out;
		if (rc == -2) {
			rest_error(r, 413, "the body is over 1 MiB");
			goto out;
		}
		if (!(v = pr_json_parse(body.data, body.len, &e, NULL))) {
			rest_error(r, 400, "line %zu column %zu: %s", e.line, e.col, e.msg);
			goto out;
		}
		rc = p[6] == 'f' ? faults_add(v, why, sizeof why) : put_pod(v, why, sizeof why);
		cJSON_Delete(v);
		v = NULL;
		if (rc < 0) {
			rest_error(r, 400, "%s", why);
			goto out;
		}
		if (p[6] == 'f') {
			v = pr_faultset_list(&faults);
		} else {
			pthread_mutex_lock(&S.lock);
			v = pods_state();
			pthread_mutex_unlock(&S.lock);
		}
	} else if (!v && get && strcmp(p, "/fake/pods") == 0) {
		pthread_mutex_lock(&S.lock);
		v = pods_state();
		pthread_mutex_unlock(&S.lock);
	} else if (!v) {
		for (i = 0; i < sizeof paths / sizeof paths[0]; i++)
			if (strcmp(p, paths[i]) == 0)
				break;
		if (i < sizeof paths / sizeof paths[0])
			rest_error(r, 405, "method %s is not allowed on %s", r->http.method, p);
		else
			rest_error(r, 404, "not found");
		goto out;
	}
	pr_httpd_json(&r->http, 200, NULL, v);
out:
	cJSON_Delete(v);
	pr_buf_free(&body);
}

/* ---- the log ---- */

void
log_request(struct req *r)
{
	cJSON *e;
	char *path, num[32];

	if (!r->log)
		return;
	r->log = false;
	e = pr_json_object();
	/* The key is never logged, wherever it comes. */
	path = pr_redact_query(r->http.target, "api_key");
	snprintf(num, sizeof num, "%.3f", r->t);
	cJSON_AddItemToObject(e, "t", pr_json_number_text(num));
	pr_json_set_string(e, "method", r->http.method);
	pr_json_set_string(e, "path", path);
	pr_json_set_string(e, "kind", kind_names[r->kind]);
	cJSON_AddItemToObject(e, "operation", r->op[0] ? pr_json_string(r->op) : pr_json_null());
	cJSON_AddItemToObject(e, "pod", r->pod[0] ? pr_json_string(r->pod) : pr_json_null());
	cJSON_AddItemToObject(e, "status", r->http.status ? pr_json_int(r->http.status) :
	    pr_json_null());
	cJSON_AddItemToObject(e, "fault", r->faults[0] ? pr_json_string(r->faults) : pr_json_null());
	if (S.set.verbose)
		fprintf(stderr, "fake-runpod: %s %s %s%s%s%s%s -> %s%d%s%s\n", r->http.method, path,
		    kind_names[r->kind], r->op[0] ? " " : "", r->op, r->pod[0] ? " pod " : "",
		    r->pod, r->http.status ? "" : "no answer ", r->http.status,
		    r->faults[0] ? ", fault " : "", r->faults);
	pr_fakectl_log(&ctl, e);
	free(path);
}

/* ---- every request ---- */

void
route(struct pr_httpd_req *hr)
{
	struct req *r = (struct req *)hr;
	char id[72];
	bool allowed;

	r->kind = K_OTHER;
	if (strcmp(r->http.path, "/fake") == 0 || strncmp(r->http.path, "/fake/", 6) == 0) {
		control(r);
		return;
	}
	r->t = pr_monotonic() - S.t0;
	r->log = true;
	r->kind = classify(r, id, sizeof id, &allowed);
	if (r->kind != K_OTHER && r->kind != K_GRAPHQL)
		snprintf(r->pod, sizeof r->pod, "%s", id);
	pthread_mutex_lock(&S.lock);
	S.n.requests[r->kind]++;
	pthread_mutex_unlock(&S.lock);

	if (r->http.chunked) {
		r->http.close = true;
		rest_error(r, 411, "a Content-Length is needed (chunked bodies are not taken)");
		goto out;
	}
	if (head_fault(r))
		goto out;
	if ((r->kind != K_OTHER || strcmp(r->http.path, "/v1") == 0 ||
	    strncmp(r->http.path, "/v1/", 4) == 0) && !authorized(r))
		goto out;
	switch (r->kind) {
	case K_GRAPHQL:
		route_graphql(r);
		break;
	case K_OTHER:
		if (!allowed)
			rest_error(r, 405, "method %s is not allowed on %s", r->http.method,
			    r->http.path);
		else
			rest_error(r, 404, "not found");
		break;
	default:
		rest_pod(r, id);
		break;
	}
out:
	log_request(r);
}
