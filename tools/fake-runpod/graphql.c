/*
 * POST /graphql: one operation with one field, found by a small scanner
 * rather than a GraphQL parser:
 *
 *   [query|mutation [Name] [(variable definitions)]] {
 *       [alias:] field(input: {podId: "ID"} | input: $var) [{ selection }]
 *   }
 *
 * podId may also be a $variable. Fields: podStop and podTerminate
 * (mutations), pod (a query). Errors come back as HTTP 200 with an
 * "errors" array and "data": null, as RunPod's do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake.h"
#include "http.h"

#define NAME_MAX_LEN 64

struct lex {
	const char *p;
	char err[200];
};

struct op {
	bool mutation;
	char field[NAME_MAX_LEN + 1];
	char alias[NAME_MAX_LEN + 1];
	char input_var[NAME_MAX_LEN + 1];   /* input: $var */
	char id_var[NAME_MAX_LEN + 1];      /* podId: $var */
	char id[NAME_MAX_LEN + 1];          /* podId: "ID" */
	bool has_input;
};

static void
skip(struct lex *l)
{
	for (;;) {
		if (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r' || *l->p == ',')
			l->p++;
		else if (*l->p == '#')
			while (*l->p && *l->p != '\n')
				l->p++;
		else
			return;
	}
}

static bool
name_start(char c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
fail(struct lex *l, const char *msg)
{
	if (!l->err[0])
		snprintf(l->err, sizeof l->err, "Syntax Error: %s", msg);
	return -1;
}

/* A name into out; -1 when there is none (or it is too long). */
static int
name(struct lex *l, char out[NAME_MAX_LEN + 1])
{
	size_t n = 0;

	skip(l);
	if (!name_start(*l->p))
		return fail(l, "expected a name");
	while (name_start(l->p[n]) || (l->p[n] >= '0' && l->p[n] <= '9'))
		n++;
	if (n > NAME_MAX_LEN)
		return fail(l, "name too long");
	memcpy(out, l->p, n);
	out[n] = '\0';
	l->p += n;
	return 0;
}

static bool
peek(struct lex *l, char c)
{
	skip(l);
	return *l->p == c;
}

static int
expect(struct lex *l, char c)
{
	char msg[32];

	if (!peek(l, c)) {
		snprintf(msg, sizeof msg, "expected \"%c\"", c);
		return fail(l, msg);
	}
	l->p++;
	return 0;
}

/* A string literal with simple escapes (pod ids need no more). */
static int
string_lit(struct lex *l, char out[NAME_MAX_LEN + 1])
{
	size_t n = 0;
	char c;

	if (expect(l, '"') < 0)
		return -1;
	while ((c = *l->p) != '"') {
		if (c == '\0' || c == '\n')
			return fail(l, "unterminated string");
		if (c == '\\') {
			c = *++l->p;
			if (c == '\0' || !strchr("\"\\/", c))
				return fail(l, "unsupported escape in a string");
		}
		if (n == NAME_MAX_LEN)
			return fail(l, "string too long");
		out[n++] = c;
		l->p++;
	}
	l->p++;
	out[n] = '\0';
	return 0;
}

/* Skips a balanced (...) or {...} whose opener is next; strings inside
 * may hold brackets. */
static int
skip_group(struct lex *l, char open, char close)
{
	int depth = 0;

	if (expect(l, open) < 0)
		return -1;
	for (depth = 1; depth > 0; l->p++) {
		if (*l->p == '\0')
			return fail(l, "unbalanced brackets");
		if (*l->p == '"') {
			for (l->p++; *l->p && *l->p != '"'; l->p++)
				if (*l->p == '\\' && l->p[1])
					l->p++;
			if (!*l->p)
				return fail(l, "unterminated string");
		} else if (*l->p == '#') {
			while (l->p[1] && l->p[1] != '\n')
				l->p++;
		} else if (*l->p == open) {
			depth++;
		} else if (*l->p == close) {
			depth--;
		}
	}
	return 0;
}

/* A string or a $variable (its name into var). */
static int
string_or_var(struct lex *l, char str[NAME_MAX_LEN + 1], char var[NAME_MAX_LEN + 1])
{
	if (peek(l, '$')) {
		l->p++;
		return name(l, var);
	}
	return string_lit(l, str);
}

/* (input: {podId: ...} | input: $var) */
static int
arguments(struct lex *l, struct op *o)
{
	char arg[NAME_MAX_LEN + 1], field[NAME_MAX_LEN + 1];

	if (expect(l, '(') < 0)
		return -1;
	while (!peek(l, ')')) {
		if (name(l, arg) < 0 || expect(l, ':') < 0)
			return -1;
		if (strcmp(arg, "input") != 0) {
			snprintf(l->err, sizeof l->err, "Unknown argument \"%s\" on field \"%s\".",
			    arg, o->field);
			return -1;
		}
		o->has_input = true;
		if (peek(l, '$')) {
			l->p++;
			if (name(l, o->input_var) < 0)
				return -1;
			continue;
		}
		if (expect(l, '{') < 0)
			return -1;
		while (!peek(l, '}')) {
			if (name(l, field) < 0 || expect(l, ':') < 0)
				return -1;
			if (strcmp(field, "podId") != 0) {
				snprintf(l->err, sizeof l->err, "Field \"%s\" is not defined by the "
				    "input type of \"%s\".", field, o->field);
				return -1;
			}
			if (string_or_var(l, o->id, o->id_var) < 0)
				return -1;
		}
		l->p++;
	}
	l->p++;
	return 0;
}

static int
parse_query(struct lex *l, struct op *o)
{
	char word[NAME_MAX_LEN + 1];

	skip(l);
	if (name_start(*l->p)) {
		if (name(l, word) < 0)
			return -1;
		if (strcmp(word, "mutation") == 0)
			o->mutation = true;
		else if (strcmp(word, "query") != 0)
			return fail(l, "expected query, mutation or \"{\"");
		skip(l);
		if (name_start(*l->p) && name(l, word) < 0)
			return -1;
		if (peek(l, '(') && skip_group(l, '(', ')') < 0)
			return -1;
	}
	if (expect(l, '{') < 0 || name(l, o->field) < 0)
		return -1;
	if (peek(l, ':')) {
		l->p++;
		memcpy(o->alias, o->field, sizeof o->alias);
		if (name(l, o->field) < 0)
			return -1;
	}
	if (peek(l, '(') && arguments(l, o) < 0)
		return -1;
	if (peek(l, '{') && skip_group(l, '{', '}') < 0)
		return -1;
	if (!peek(l, '}')) {
		snprintf(l->err, sizeof l->err, "fake-runpod serves one field per request");
		return -1;
	}
	l->p++;
	skip(l);
	if (*l->p) {
		snprintf(l->err, sizeof l->err, "fake-runpod serves one operation per request");
		return -1;
	}
	return 0;
}

/* The pod id from the literal or the variables; -1 and why. */
static int
resolve_id(struct op *o, const cJSON *vars, char *why, size_t whylen)
{
	const cJSON *input = NULL;
	const char *id;

	if (o->input_var[0]) {
		input = pr_json_get(vars, o->input_var);
		if (!cJSON_IsObject(input)) {
			snprintf(why, whylen, "Variable \"$%s\" of required type \"%s!\" was "
			    "not provided.", o->input_var, strcmp(o->field, "pod") == 0 ?
			    "PodFilter" : strcmp(o->field, "podStop") == 0 ? "PodStopInput" :
			    "PodTerminateInput");
			return -1;
		}
		id = pr_json_get_string(input, "podId");
	} else if (o->id_var[0]) {
		id = pr_json_get_string(vars, o->id_var);
	} else {
		id = o->has_input && o->id[0] ? o->id : NULL;
	}
	if (!id || !*id) {
		snprintf(why, whylen, "Field \"podId\" of required type \"String!\" was not "
		    "provided.");
		return -1;
	}
	if (strlen(id) > NAME_MAX_LEN) {
		snprintf(why, whylen, "podId is too long");
		return -1;
	}
	if (id != o->id)
		snprintf(o->id, sizeof o->id, "%s", id);
	return 0;
}

/* {"errors": [{"message": msg[, "path": [field]]}], "data": null} */
static void
errors(struct req *r, int code, const char *msg, const char *path)
{
	cJSON *o = pr_json_object(), *list = pr_json_array(), *e = pr_json_object(), *pa;

	pr_json_set_string(e, "message", msg);
	if (path) {
		pa = pr_json_array();
		cJSON_AddItemToArray(pa, pr_json_string(path));
		cJSON_AddItemToObject(e, "path", pa);
	}
	cJSON_AddItemToArray(list, e);
	cJSON_AddItemToObject(o, "errors", list);
	cJSON_AddItemToObject(o, "data", pr_json_null());
	pr_httpd_json(&r->http, code, NULL, o);
	cJSON_Delete(o);
}

/* Runs a parsed operation: answers data, or errors with path. */
static void
execute(struct req *r, struct op *o)
{
	const char *key = o->alias[0] ? o->alias : o->field;
	char msg[200];
	struct fault f;
	struct pod *p;
	cJSON *top, *data, *v = NULL;

	snprintf(r->pod, sizeof r->pod, "%s", o->id);
	if (fault_take(r, F_GRAPHQL_ERROR, K_GRAPHQL, &f)) {
		errors(r, 200, f.message, key);
		return;
	}
	pthread_mutex_lock(&S.lock);
	p = pod_find(o->id);
	if (!p || p->status == ST_TERMINATED) {
		pthread_mutex_unlock(&S.lock);
		errors(r, 200, "pod not found", key);
		return;
	}
	if (strcmp(o->field, "pod") == 0) {
		v = pod_json(p);
	} else if (strcmp(o->field, "podStop") == 0) {
		if (p->network) {
			pthread_mutex_unlock(&S.lock);
			snprintf(msg, sizeof msg, "pod %s has a network volume: it cannot be "
			    "stopped, only terminated", o->id);
			errors(r, 200, msg, key);
			return;
		}
		if (!fault_take_locked(r, F_IGNORE, K_GRAPHQL, &f)) {
			pod_change(p, ST_EXITED);
			S.n.stops++;
		}
		v = pr_json_object();
		pr_json_set_string(v, "id", p->id);
		pr_json_set_string(v, "desiredStatus", "EXITED");
	} else {
		if (!fault_take_locked(r, F_IGNORE, K_GRAPHQL, &f)) {
			pod_change(p, ST_TERMINATED);
			S.n.terminations++;
		}
		v = pr_json_null();
	}
	pthread_mutex_unlock(&S.lock);
	top = pr_json_object();
	data = pr_json_object();
	cJSON_AddItemToObject(data, key, v);
	cJSON_AddItemToObject(top, "data", data);
	pr_httpd_json(&r->http, 200, NULL, top);
	cJSON_Delete(top);
}

void
route_graphql(struct req *r)
{
	struct pr_buf body = PR_BUF_INIT;
	struct pr_json_error e;
	struct lex l = { 0 };
	struct op o;
	const cJSON *vars;
	const char *query;
	cJSON *req = NULL;
	char why[320];
	int rc;

	memset(&o, 0, sizeof o);
	if (strcmp(r->http.method, "POST") != 0) {
		errors(r, 405, "fake-runpod takes GraphQL requests by POST only", NULL);
		goto out;
	}
	if ((rc = pr_httpd_body_all(&r->http, BODY_MAX, &body)) == -1)
		goto out;
	if (rc == -2) {
		errors(r, 413, "the body is over 1 MiB", NULL);
		goto out;
	}
	if (!(req = pr_json_parse(body.data, body.len, &e, NULL))) {
		snprintf(why, sizeof why, "the body is not JSON: line %zu column %zu: %s",
		    e.line, e.col, e.msg);
		errors(r, 400, why, NULL);
		goto out;
	}
	vars = pr_json_get(req, "variables");
	if (!cJSON_IsObject(req) || !(query = pr_json_get_string(req, "query")) ||
	    (vars && !cJSON_IsObject(vars) && !cJSON_IsNull(vars))) {
		errors(r, 400, "expected {\"query\": STRING, \"variables\": OBJECT}", NULL);
		goto out;
	}
	l.p = query;
	rc = parse_query(&l, &o);
	if (o.field[0])
		snprintf(r->op, sizeof r->op, "%s", o.field);
	if (rc < 0) {
		errors(r, 200, l.err, NULL);
		goto out;
	}
	if (strcmp(o.field, o.mutation ? "podStop" : "pod") != 0 &&
	    !(o.mutation && strcmp(o.field, "podTerminate") == 0)) {
		snprintf(why, sizeof why, "Cannot query field \"%s\" on type \"%s\".", o.field,
		    o.mutation ? "Mutation" : "Query");
		errors(r, 200, why, NULL);
		goto out;
	}
	if (resolve_id(&o, cJSON_IsObject(vars) ? vars : NULL, why, sizeof why) < 0) {
		errors(r, 200, why, NULL);
		goto out;
	}
	execute(r, &o);
out:
	cJSON_Delete(req);
	pr_buf_free(&body);
}
