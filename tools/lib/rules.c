#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "file.h"
#include "rules.h"
#include "workflow.h"

#define RULES_MAX ((size_t)16 << 20)

struct rule {
	size_t index;        /* 1-based, as users count */
	size_t line;
	const char *node;    /* selector: id ... */
	const char *title;   /* ... or exact _meta.title */
	bool all, optional, create, delete_node;
	const cJSON *when, *set, *del, *stage, *collect, *derive;
};

struct pr_rules {
	char *path;
	cJSON *doc;          /* the rules point into it */
	struct rule *rule;
	size_t n;
	int64_t frame_multiplier;
};

/* ---- loading ---- */

static int
load_fail(const struct pr_rules *R, const struct rule *r, char *err, size_t errlen,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
load_fail(const struct pr_rules *R, const struct rule *r, char *err, size_t errlen,
    const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (r)
		snprintf(err, errlen, "%s:%zu: rule %zu: %s", R->path, r->line, r->index, msg);
	else
		snprintf(err, errlen, "%s: %s", R->path, msg);
	return -1;
}

static bool
is_string_list(const cJSON *v)
{
	const cJSON *c;

	if (cJSON_IsString(v))
		return true;
	if (!cJSON_IsArray(v) || !v->child)
		return false;
	for (c = v->child; c; c = c->next)
		if (!cJSON_IsString(c))
			return false;
	return true;
}

static bool
one_of(const char *s, const char *a, const char *b)
{
	return strcmp(s, a) == 0 || strcmp(s, b) == 0;
}

static int
check_when(const struct pr_rules *R, const struct rule *r, char *err, size_t errlen)
{
	static const char *const pairs[][3] = {
		{ "pass", "high", "low" },
		{ "chunk", "first", "later" },
		{ "combine", "first", "later" },
		{ "kind", "render", "combine" },
	};
	const cJSON *c;
	size_t i;

	if (!cJSON_IsObject(r->when))
		return load_fail(R, r, err, errlen, "\"when\" must be an object");
	for (c = r->when->child; c; c = c->next) {
		for (i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
			if (strcmp(c->string, pairs[i][0]) != 0)
				continue;
			if (!cJSON_IsString(c) || !one_of(c->valuestring, pairs[i][1], pairs[i][2]))
				return load_fail(R, r, err, errlen, "when.%s must be \"%s\" or \"%s\"",
				    pairs[i][0], pairs[i][1], pairs[i][2]);
			break;
		}
		if (i < sizeof pairs / sizeof pairs[0])
			continue;
		if (strcmp(c->string, "has") == 0 || strcmp(c->string, "lacks") == 0) {
			if (!is_string_list(c))
				return load_fail(R, r, err, errlen,
				    "when.%s must be a var name or a list of them", c->string);
			continue;
		}
		return load_fail(R, r, err, errlen, "unknown condition \"%s\" in \"when\" "
		    "(known: pass, chunk, combine, kind, has, lacks)", c->string);
	}
	return 0;
}

/* Checks that obj is an object whose members named in keys[] are strings,
 * with the first nreq of them required. */
static int
check_fields(const struct pr_rules *R, const struct rule *r, const char *what,
    const cJSON *obj, const char *const *keys, size_t nkeys, size_t nreq,
    char *err, size_t errlen)
{
	const cJSON *c;
	size_t i;

	if (!cJSON_IsObject(obj))
		return load_fail(R, r, err, errlen, "\"%s\" must be an object", what);
	for (i = 0; i < nreq; i++)
		if (!pr_json_get(obj, keys[i]))
			return load_fail(R, r, err, errlen, "\"%s\" needs \"%s\"", what, keys[i]);
	for (c = obj->child; c; c = c->next) {
		for (i = 0; i < nkeys; i++)
			if (strcmp(c->string, keys[i]) == 0)
				break;
		if (i == nkeys)
			return load_fail(R, r, err, errlen, "unknown key \"%s\" in \"%s\"",
			    c->string, what);
		/* derive.frame may be a number; everything else is text. */
		if (!cJSON_IsString(c) && !(strcmp(c->string, "frame") == 0 && pr_json_is_number(c)))
			return load_fail(R, r, err, errlen, "%s.%s must be a string", what, c->string);
	}
	return 0;
}

static int
bool_field(const struct pr_rules *R, struct rule *r, const cJSON *c, bool *out,
    char *err, size_t errlen)
{
	if (!cJSON_IsBool(c))
		return load_fail(R, r, err, errlen, "\"%s\" must be true or false", c->string);
	*out = cJSON_IsTrue(c);
	return 0;
}

static int
load_rule(const struct pr_rules *R, struct rule *r, const cJSON *obj, char *err,
    size_t errlen)
{
	static const char *const stage_keys[] = { "input", "path", "as" };
	static const char *const collect_keys[] = { "role", "path" };
	static const char *const derive_keys[] = { "from", "frame", "path", "role" };
	const cJSON *c;

	if (!cJSON_IsObject(obj))
		return load_fail(R, r, err, errlen, "a rule must be an object, found %s",
		    pr_json_type_name(obj));
	for (c = obj->child; c; c = c->next) {
		const char *k = c->string;

		if (strcmp(k, "node") == 0 || strcmp(k, "title") == 0) {
			if (!cJSON_IsString(c) || !*c->valuestring)
				return load_fail(R, r, err, errlen, "\"%s\" must be a non-empty string", k);
			if (k[0] == 'n')
				r->node = c->valuestring;
			else
				r->title = c->valuestring;
		} else if (strcmp(k, "all") == 0) {
			if (bool_field(R, r, c, &r->all, err, errlen) < 0)
				return -1;
		} else if (strcmp(k, "optional") == 0) {
			if (bool_field(R, r, c, &r->optional, err, errlen) < 0)
				return -1;
		} else if (strcmp(k, "create") == 0) {
			if (bool_field(R, r, c, &r->create, err, errlen) < 0)
				return -1;
		} else if (strcmp(k, "delete_node") == 0) {
			if (!cJSON_IsTrue(c))
				return load_fail(R, r, err, errlen, "\"delete_node\" must be true");
			r->delete_node = true;
		} else if (strcmp(k, "when") == 0) {
			r->when = c;
		} else if (strcmp(k, "set") == 0) {
			if (!cJSON_IsObject(c) || !c->child)
				return load_fail(R, r, err, errlen,
				    "\"set\" must be an object of input names and values");
			r->set = c;
		} else if (strcmp(k, "delete") == 0) {
			if (!is_string_list(c))
				return load_fail(R, r, err, errlen,
				    "\"delete\" must be an input name or a list of them");
			r->del = c;
		} else if (strcmp(k, "stage") == 0) {
			r->stage = c;
			if (check_fields(R, r, k, c, stage_keys, 3, 2, err, errlen) < 0)
				return -1;
		} else if (strcmp(k, "collect") == 0) {
			r->collect = c;
			if (check_fields(R, r, k, c, collect_keys, 2, 2, err, errlen) < 0)
				return -1;
		} else if (strcmp(k, "derive") == 0) {
			r->derive = c;
			if (check_fields(R, r, k, c, derive_keys, 4, 4, err, errlen) < 0)
				return -1;
		} else if (strcmp(k, "comment") != 0) {
			return load_fail(R, r, err, errlen, "unknown key \"%s\" (known: node, title, "
			    "all, when, set, create, delete, delete_node, stage, collect, derive, "
			    "optional, comment)", k);
		}
	}
	if (r->node && r->title)
		return load_fail(R, r, err, errlen, "give \"node\" or \"title\", not both");
	if (r->all && !r->title)
		return load_fail(R, r, err, errlen, "\"all\" goes with \"title\"");
	if (r->when && check_when(R, r, err, errlen) < 0)
		return -1;
	if (!r->set && !r->del && !r->delete_node && !r->stage && !r->collect && !r->derive)
		return load_fail(R, r, err, errlen, "the rule does nothing (no set, delete, "
		    "delete_node, stage, collect or derive)");
	if ((r->set || r->del || r->delete_node || r->stage || r->collect) &&
	    !r->node && !r->title)
		return load_fail(R, r, err, errlen, "the rule edits a node but names none "
		    "(give \"node\" or \"title\")");
	return 0;
}

static int
load_top(struct pr_rules *R, const cJSON **list, char *err, size_t errlen)
{
	const cJSON *c;

	if (cJSON_IsArray(R->doc)) {
		*list = R->doc;
		return 0;
	}
	if (!cJSON_IsObject(R->doc))
		return load_fail(R, NULL, err, errlen,
		    "a rules file is an object with \"rules\" (or an array of rules)");
	for (c = R->doc->child; c; c = c->next) {
		if (strcmp(c->string, "rules") == 0) {
			if (!cJSON_IsArray(c))
				return load_fail(R, NULL, err, errlen, "\"rules\" must be an array");
			*list = c;
		} else if (strcmp(c->string, "frame_multiplier") == 0) {
			if (pr_json_to_i64(c, &R->frame_multiplier) < 0 || R->frame_multiplier < 1)
				return load_fail(R, NULL, err, errlen,
				    "\"frame_multiplier\" must be a whole number >= 1");
		} else if (strcmp(c->string, "description") != 0 &&
		    strcmp(c->string, "comment") != 0) {
			return load_fail(R, NULL, err, errlen, "unknown key \"%s\" (known: "
			    "description, frame_multiplier, rules)", c->string);
		}
	}
	if (!*list)
		return load_fail(R, NULL, err, errlen, "no \"rules\" array");
	return 0;
}

struct pr_rules *
pr_rules_load(const char *path, int *status, char *err, size_t errlen)
{
	struct pr_buf text = PR_BUF_INIT;
	struct pr_json_locs locs = { 0 };
	struct pr_json_error e;
	struct pr_rules *R = pr_xcalloc(1, sizeof *R);
	const cJSON *list = NULL, *c;

	*status = PR_EXIT_USAGE;
	R->path = pr_xstrdup(path);
	if (pr_file_read(path, RULES_MAX, &text) < 0) {
		snprintf(err, errlen, "%s: %s", path, errno == EFBIG ? "rules file too large" :
		    strerror(errno));
		goto fail;
	}
	R->doc = pr_json_parse(text.data, text.len, &e, &locs);
	if (!R->doc) {
		snprintf(err, errlen, "%s:%zu: column %zu: invalid JSON: %s", path, e.line,
		    e.col, e.msg);
		goto fail;
	}
	if (load_top(R, &list, err, errlen) < 0)
		goto fail;
	R->n = (size_t)cJSON_GetArraySize(list);
	R->rule = pr_xcalloc(R->n, sizeof *R->rule);
	R->n = 0;
	for (c = list->child; c; c = c->next) {
		struct rule *r = &R->rule[R->n++];

		r->index = R->n;
		r->line = pr_json_line(&locs, c);
		if (!r->line)
			r->line = pr_json_line(&locs, list);
		if (load_rule(R, r, c, err, errlen) < 0)
			goto fail;
	}
	pr_buf_free(&text);
	pr_json_locs_free(&locs);
	return R;
fail:
	pr_buf_free(&text);
	pr_json_locs_free(&locs);
	pr_rules_free(R);
	return NULL;
}

void
pr_rules_free(struct pr_rules *R)
{
	if (!R)
		return;
	cJSON_Delete(R->doc);
	free(R->rule);
	free(R->path);
	free(R);
}

int64_t
pr_rules_frame_multiplier(const struct pr_rules *R)
{
	return R->frame_multiplier;
}

/* ---- applying ---- */

struct ctx {
	const struct pr_rules *R;
	const struct rule *rule;
	const char *node;      /* node being edited, for messages */
	const cJSON *job, *vars;
	const char *job_id;
	cJSON *wf;
	cJSON *deleted;        /* {node id: rule index} */
	struct pr_patched *out;
	FILE *explain;
	char *err;
	size_t errlen;
};

static int
fail(struct ctx *C, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(struct ctx *C, const char *fmt, ...)
{
	char msg[320], where[160] = "";
	const struct rule *r = C->rule;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (r && r->node)
		snprintf(where, sizeof where, " (node \"%.60s\")", r->node);
	else if (r && r->title)
		snprintf(where, sizeof where, " (title \"%.60s\")", r->title);
	if (r)
		snprintf(C->err, C->errlen, "%s:%zu: rule %zu%s: job %s: %s", C->R->path,
		    r->line, r->index, where, C->job_id, msg);
	else
		snprintf(C->err, C->errlen, "%s: job %s: %s", C->R->path, C->job_id, msg);
	return -1;
}

static void
explain(struct ctx *C, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
explain(struct ctx *C, const char *fmt, ...)
{
	va_list ap;

	if (!C->explain)
		return;
	fprintf(C->explain, "%s: rule %zu: ", C->job_id, C->rule->index);
	va_start(ap, fmt);
	vfprintf(C->explain, fmt, ap);
	va_end(ap);
	fputc('\n', C->explain);
}

/* A short rendering of a value for --explain. Caller frees. */
static char *
brief(const cJSON *v)
{
	char *s = pr_json_print(v, 0);

	if (strlen(s) > 100)
		strcpy(s + 96, "...");
	return s;
}

/* The job's var: from "vars", else a top-level job field. NULL if absent
 * or null. */
static const cJSON *
lookup(const struct ctx *C, const char *name, size_t len)
{
	const cJSON *c, *objs[2] = { C->vars, C->job };
	size_t i;

	for (i = 0; i < 2; i++) {
		for (c = cJSON_IsObject(objs[i]) ? objs[i]->child : NULL; c; c = c->next) {
			if (strlen(c->string) == len && memcmp(c->string, name, len) == 0 &&
			    !cJSON_IsNull(c))
				return c;
		}
	}
	return NULL;
}

static bool
has_var(const struct ctx *C, const char *name)
{
	return lookup(C, name, strlen(name)) != NULL;
}

static bool
all_vars(const struct ctx *C, const cJSON *names, bool want)
{
	const cJSON *c;

	if (cJSON_IsString(names))
		return has_var(C, names->valuestring) == want;
	for (c = names->child; c; c = c->next)
		if (has_var(C, c->valuestring) != want)
			return false;
	return true;
}

static bool
field_is(const cJSON *job, const char *key, const char *want)
{
	const char *v = pr_json_get_string(job, key);

	return v && strcmp(v, want) == 0;
}

/* first: chunk 0 / combine 1; later: beyond. A job without the field
 * matches neither. */
static bool
position_is(const cJSON *job, const char *key, int64_t first, const char *want)
{
	int64_t v;

	if (pr_json_to_i64(pr_json_get(job, key), &v) < 0)
		return false;
	return strcmp(want, "first") == 0 ? v == first : v > first;
}

/* Whether the rule's conditions hold; if not, why (for --explain). */
static bool
when_holds(const struct ctx *C, char *why, size_t whylen)
{
	const cJSON *c;

	if (!C->rule->when)
		return true;
	for (c = C->rule->when->child; c; c = c->next) {
		const char *k = c->string, *v = c->valuestring;
		bool ok;

		if (strcmp(k, "pass") == 0 || strcmp(k, "kind") == 0)
			ok = field_is(C->job, k, v);
		else if (strcmp(k, "chunk") == 0)
			ok = field_is(C->job, "kind", "render") && position_is(C->job, "chunk", 0, v);
		else if (strcmp(k, "combine") == 0)
			ok = field_is(C->job, "kind", "combine") && position_is(C->job, "n", 1, v);
		else
			ok = all_vars(C, c, strcmp(k, "has") == 0);
		if (!ok) {
			char *want = pr_json_print(c, 0);

			snprintf(why, whylen, "not %s %s", k, want);
			free(want);
			return false;
		}
	}
	return true;
}

static bool
var_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '_';
}

/* If s is exactly "${name}", the length of name (at s + 2); else 0. */
static size_t
whole_var(const char *s)
{
	size_t n = 0;

	if (s[0] != '$' || s[1] != '{')
		return 0;
	while (var_char(s[2 + n]))
		n++;
	return n && s[2 + n] == '}' && s[3 + n] == '\0' ? n : 0;
}

static int
unknown_var(struct ctx *C, const char *name, size_t len)
{
	return fail(C, "unknown variable \"${%.*s}\" (not in the job's vars)", (int)len, name);
}

static int
expand_text(struct ctx *C, const char *s, struct pr_buf *b)
{
	const cJSON *v;
	size_t n;

	while (*s) {
		if (s[0] == '$' && s[1] == '$') {
			pr_buf_addc(b, '$');
			s += 2;
			continue;
		}
		if (s[0] != '$' || s[1] != '{') {
			pr_buf_addc(b, *s++);
			continue;
		}
		for (n = 0; var_char(s[2 + n]); n++)
			;
		if (!n || s[2 + n] != '}')
			return fail(C, "bad variable reference in \"%.80s\" (write ${name}, or $$ for "
			    "a literal $)", s);
		if (!(v = lookup(C, s + 2, n)))
			return unknown_var(C, s + 2, n);
		if (cJSON_IsString(v) || cJSON_IsRaw(v))
			pr_buf_adds(b, v->valuestring);
		else if (cJSON_IsBool(v))
			pr_buf_adds(b, cJSON_IsTrue(v) ? "true" : "false");
		else if (cJSON_IsNumber(v))
			pr_json_write(b, v, 0);
		else
			return fail(C, "variable \"%.*s\" is %s, which cannot go into text",
			    (int)n, s + 2, pr_json_type_name(v));
		s += 3 + n;
	}
	return 0;
}

/* A copy of v with variables substituted in every string, once. */
static cJSON *
subst(struct ctx *C, const cJSON *v)
{
	const cJSON *c, *var;
	cJSON *copy, *item;
	size_t n;

	if (cJSON_IsString(v)) {
		struct pr_buf b = PR_BUF_INIT;

		if ((n = whole_var(v->valuestring))) {
			if (!(var = lookup(C, v->valuestring + 2, n))) {
				unknown_var(C, v->valuestring + 2, n);
				return NULL;
			}
			return pr_json_copy(var);
		}
		if (expand_text(C, v->valuestring, &b) < 0) {
			pr_buf_free(&b);
			return NULL;
		}
		copy = pr_json_string(b.data ? b.data : "");
		pr_buf_free(&b);
		return copy;
	}
	if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
		return pr_json_copy(v);
	copy = cJSON_IsArray(v) ? pr_json_array() : pr_json_object();
	for (c = v->child; c; c = c->next) {
		if (!(item = subst(C, c))) {
			cJSON_Delete(copy);
			return NULL;
		}
		if (c->string)
			cJSON_AddItemToObject(copy, c->string, item);
		else
			cJSON_AddItemToArray(copy, item);
	}
	return copy;
}

/* A substituted string field of an action object. */
static char *
subst_string(struct ctx *C, const cJSON *obj, const char *key, const char *what)
{
	const cJSON *src = pr_json_get(obj, key);
	cJSON *v;
	char *s;

	if (!src)
		return NULL;
	if (!(v = subst(C, src)))
		return NULL;
	if (!cJSON_IsString(v) || !*v->valuestring) {
		fail(C, "%s.%s must come out as a non-empty string, not %s", what, key,
		    pr_json_type_name(v));
		cJSON_Delete(v);
		return NULL;
	}
	s = pr_xstrdup(v->valuestring);
	cJSON_Delete(v);
	return s;
}

/* Files a job writes stay under --out. */
static int
check_out_path(struct ctx *C, const char *what, const char *path)
{
	const char *p = path;

	if (path[0] == '/')
		return fail(C, "%s \"%s\" must be relative to --out", what, path);
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 2 && p[0] == '.' && p[1] == '.') || (n == 1 && p[0] == '.'))
			return fail(C, "%s \"%s\" must not have empty, \".\" or \"..\" parts",
			    what, path);
		p += n;
		if (*p == '/' && !*++p)
			return fail(C, "%s \"%s\" names a directory", what, path);
	}
	return 0;
}

static cJSON *
node_inputs(struct ctx *C, const char *id)
{
	return pr_workflow_inputs(C->wf, id);
}

static int
missing_input(struct ctx *C, const char *id, const char *input)
{
	cJSON *node = pr_workflow_node(C->wf, id);
	char *list = pr_workflow_input_list(node);

	fail(C, "node %s (%s) has no input \"%s\" (inputs: %s)", id,
	    pr_workflow_class(node), input, list);
	free(list);
	return -1;
}

/* Sets one input; a missing input is an error unless the rule creates
 * inputs or is optional (then 1 = skipped). */
static int
put_input(struct ctx *C, const char *id, const char *input, cJSON *v)
{
	cJSON *inputs = node_inputs(C, id);
	char why[200], *s;

	if (pr_workflow_is_link_shaped(v) && pr_workflow_link_check(v, why, sizeof why) < 0) {
		cJSON_Delete(v);
		return fail(C, "value for %s.%s: %s", id, input, why);
	}
	if (!pr_json_get(inputs, input) && !C->rule->create) {
		cJSON_Delete(v);
		if (C->rule->optional) {
			explain(C, "skipped: node %s has no input \"%s\" (optional)", id, input);
			return 1;
		}
		return missing_input(C, id, input);
	}
	s = brief(v);
	explain(C, "set %s.%s = %s", id, input, s);
	free(s);
	pr_json_set(inputs, input, v);
	return 0;
}

static int
do_set(struct ctx *C, const char *id)
{
	const cJSON *c;
	cJSON *v;

	for (c = C->rule->set->child; c; c = c->next) {
		if (!(v = subst(C, c)))
			return -1;
		if (put_input(C, id, c->string, v) < 0)
			return -1;
	}
	return 0;
}

static int
do_delete(struct ctx *C, const char *id)
{
	const cJSON *names = C->rule->del, *c;
	cJSON *inputs = node_inputs(C, id);

	for (c = cJSON_IsString(names) ? names : names->child; c;
	    c = cJSON_IsString(names) ? NULL : c->next) {
		if (!pr_json_get(inputs, c->valuestring)) {
			if (C->rule->optional) {
				explain(C, "skipped: node %s has no input \"%s\" (optional)", id,
				    c->valuestring);
				continue;
			}
			return missing_input(C, id, c->valuestring);
		}
		cJSON_DeleteItemFromObjectCaseSensitive(inputs, c->valuestring);
		explain(C, "delete input %s.%s", id, c->valuestring);
	}
	return 0;
}

static int
add_stage(struct ctx *C, const char *path, const char *as)
{
	const cJSON *c;
	cJSON *e;

	for (c = C->out->stage->child; c; c = c->next) {
		const char *p = pr_json_get_string(c, "path"), *a = pr_json_get_string(c, "as");

		if (strcmp(a, as) != 0)
			continue;
		if (strcmp(p, path) == 0)
			return 0;
		return fail(C, "two different files staged as \"%s\": \"%s\" and \"%s\"", as,
		    p, path);
	}
	e = pr_json_object();
	pr_json_set_string(e, "path", path);
	pr_json_set_string(e, "as", as);
	cJSON_AddItemToArray(C->out->stage, e);
	return 0;
}

static int
do_stage(struct ctx *C, const char *id)
{
	const cJSON *st = C->rule->stage, *video;
	char *input = NULL, *path = NULL, *as = NULL;
	const char *base;
	int rc = -1;

	if (!(input = subst_string(C, st, "input", "stage")) ||
	    !(path = subst_string(C, st, "path", "stage")))
		goto out;
	if (pr_json_get(st, "as")) {
		if (!(as = subst_string(C, st, "as", "stage")))
			goto out;
	} else {
		/* Deterministic server-side names: prompt-runner/<video>/<file>. */
		base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
		video = lookup(C, "video", 5);
		if (!*base) {
			fail(C, "stage.path \"%s\" names a directory", path);
			goto out;
		}
		if (!cJSON_IsString(video)) {
			fail(C, "stage needs the job's \"video\" to name the file on the server");
			goto out;
		}
		as = pr_xmalloc(strlen(video->valuestring) + strlen(base) + 16);
		sprintf(as, "prompt-runner/%s/%s", video->valuestring, base);
	}
	/* put_input() says 1 when an optional rule skips a missing input. */
	if ((rc = put_input(C, id, input, pr_json_string(as))) != 0) {
		rc = rc < 0 ? -1 : 0;
		goto out;
	}
	explain(C, "stage %s as %s", path, as);
	rc = add_stage(C, path, as);
out:
	free(input);
	free(path);
	free(as);
	return rc;
}

static int
do_collect(struct ctx *C, const char *id)
{
	char *role = NULL, *path = NULL;
	const cJSON *c;
	cJSON *e;
	int rc = -1;

	if (!(role = subst_string(C, C->rule->collect, "role", "collect")) ||
	    !(path = subst_string(C, C->rule->collect, "path", "collect")))
		goto out;
	if (check_out_path(C, "collect.path", path) < 0)
		goto out;
	for (c = C->out->collect->child; c; c = c->next) {
		if (strcmp(pr_json_get_string(c, "path"), path) == 0) {
			fail(C, "two outputs collected to \"%s\"", path);
			goto out;
		}
	}
	e = pr_json_object();
	pr_json_set_string(e, "node", id);
	pr_json_set_string(e, "role", role);
	pr_json_set_string(e, "path", path);
	cJSON_AddItemToArray(C->out->collect, e);
	explain(C, "collect node %s (%s) -> %s", id, role, path);
	rc = 0;
out:
	free(role);
	free(path);
	return rc;
}

static int
do_derive(struct ctx *C)
{
	const cJSON *d = C->rule->derive;
	char *from = NULL, *path = NULL, *role = NULL;
	cJSON *frame = NULL, *e;
	int64_t k;
	int rc = -1;

	if (!(from = subst_string(C, d, "from", "derive")) ||
	    !(path = subst_string(C, d, "path", "derive")) ||
	    !(role = subst_string(C, d, "role", "derive")) ||
	    !(frame = subst(C, pr_json_get(d, "frame"))))
		goto out;
	if (pr_json_to_i64(frame, &k) < 0 || k < 0) {
		fail(C, "derive.frame must come out as a whole number >= 0");
		goto out;
	}
	if (check_out_path(C, "derive.path", path) < 0 ||
	    check_out_path(C, "derive.from", from) < 0)
		goto out;
	e = pr_json_object();
	pr_json_set_string(e, "from", from);
	pr_json_set_int(e, "frame", k);
	pr_json_set_string(e, "path", path);
	pr_json_set_string(e, "role", role);
	cJSON_AddItemToArray(C->out->derive, e);
	explain(C, "derive frame %lld of %s -> %s (%s)", (long long)k, from, path, role);
	rc = 0;
out:
	free(from);
	free(path);
	free(role);
	cJSON_Delete(frame);
	return rc;
}

static void
do_delete_node(struct ctx *C, const char *id)
{
	cJSON_DeleteItemFromObjectCaseSensitive(C->wf, id);
	pr_json_set(C->deleted, id, pr_json_int((int64_t)C->rule->index));
	explain(C, "delete node %s", id);
}

/* The ids the rule edits, copied (a node may be deleted on the way).
 * Returns the count; 0 = nothing to edit (optional), -1 = error. */
static long
select_nodes(struct ctx *C, char ***ids)
{
	const struct rule *r = C->rule;
	struct pr_buf names = PR_BUF_INIT;
	const cJSON *n;
	size_t count = 0;

	*ids = NULL;
	if (r->node) {
		if (!pr_workflow_node(C->wf, r->node)) {
			if (r->optional) {
				explain(C, "skipped: no node %s (optional)", r->node);
				return 0;
			}
			if (pr_json_get(C->deleted, r->node))
				return fail(C, "node %s was deleted by an earlier rule", r->node);
			return fail(C, "node %s is not in the workflow", r->node);
		}
		*ids = pr_xmalloc(sizeof **ids);
		(*ids)[0] = pr_xstrdup(r->node);
		return 1;
	}
	for (n = C->wf->child; n; n = n->next) {
		const char *t = pr_workflow_title(n);

		if (!t || strcmp(t, r->title) != 0)
			continue;
		*ids = pr_xrealloc(*ids, (count + 1) * sizeof **ids);
		(*ids)[count++] = pr_xstrdup(n->string);
		pr_buf_printf(&names, "%s%s", count > 1 ? ", " : "", n->string);
	}
	if (count == 0) {
		pr_buf_free(&names);
		if (r->optional) {
			explain(C, "skipped: no node titled \"%s\" (optional)", r->title);
			return 0;
		}
		return fail(C, "no node has the title \"%s\"", r->title);
	}
	if (count > 1 && !r->all) {
		fail(C, "the title \"%s\" matches nodes %s: select one with \"node\", or "
		    "edit them all with \"all\": true", r->title, names.data);
		while (count)
			free((*ids)[--count]);
		free(*ids);
		*ids = NULL;
		pr_buf_free(&names);
		return -1;
	}
	pr_buf_free(&names);
	return (long)count;
}

static int
apply_rule(struct ctx *C)
{
	const struct rule *r = C->rule;
	char **ids = NULL;
	long n, i;
	int rc = 0;

	char why[160];

	if (!when_holds(C, why, sizeof why)) {
		explain(C, "skipped: %s", why);
		return 0;
	}
	if (r->node || r->title) {
		if ((n = select_nodes(C, &ids)) < 0)
			return -1;
	} else {
		n = 0;
	}
	for (i = 0; i < n; i++) {
		if ((r->set && do_set(C, ids[i]) < 0) ||
		    (r->del && do_delete(C, ids[i]) < 0) ||
		    (r->stage && do_stage(C, ids[i]) < 0) ||
		    (r->collect && do_collect(C, ids[i]) < 0)) {
			rc = -1;
			break;
		}
		if (r->delete_node)
			do_delete_node(C, ids[i]);
	}
	/* A derive needs no node, but an optional rule whose node is missing
	 * is skipped whole. */
	if (rc == 0 && r->derive && (n > 0 || (!r->node && !r->title)))
		rc = do_derive(C);
	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	return rc;
}

/* After all rules: every link must still point at a node, every collected
 * node must still exist, every derive must read a collected file. */
static int
check_result(struct ctx *C)
{
	const cJSON *node, *in, *d, *c, **sorted;
	char why[200];
	size_t n;
	int rc = 0;

	C->rule = NULL;
	sorted = pr_workflow_sorted(C->wf, &n);
	for (node = C->wf->child; node && rc == 0; node = node->next) {
		for (in = pr_json_get(node, "inputs")->child; in; in = in->next) {
			const cJSON *by;
			const char *target;
			int64_t idx;

			if (!pr_workflow_is_link_shaped(in))
				continue;
			if (pr_workflow_link_check(in, why, sizeof why) < 0) {
				rc = fail(C, "node %s input \"%s\": %s", node->string, in->string,
				    why);
				break;
			}
			target = in->child->valuestring;
			if (pr_workflow_find(sorted, n, target) < n)
				continue;
			by = pr_json_get(C->deleted, target);
			if (by && pr_json_to_i64(by, &idx) == 0) {
				C->rule = &C->R->rule[idx - 1];
				rc = fail(C, "deletes node %s, but node %s input \"%s\" still "
				    "links to it; delete or rewire that input in the same job's "
				    "rules", target, node->string, in->string);
			} else {
				rc = fail(C, "node %s input \"%s\" links to node %s, which is not "
				    "in the workflow", node->string, in->string, target);
			}
			break;
		}
	}
	free(sorted);
	if (rc < 0)
		return rc;
	for (c = C->out->collect->child; c; c = c->next) {
		const char *id = pr_json_get_string(c, "node");

		if (!pr_workflow_node(C->wf, id))
			return fail(C, "collects the output of node %s, which was deleted", id);
	}
	for (d = C->out->derive->child; d; d = d->next) {
		const char *from = pr_json_get_string(d, "from");

		for (c = C->out->collect->child; c; c = c->next)
			if (strcmp(pr_json_get_string(c, "path"), from) == 0)
				break;
		if (!c)
			return fail(C, "derives from \"%s\", which the job does not collect", from);
	}
	return 0;
}

int
pr_rules_apply(const struct pr_rules *R, const cJSON *workflow, const cJSON *job,
    FILE *explain_to, struct pr_patched *out, char *err, size_t errlen)
{
	struct ctx C = { 0 };
	size_t i;
	int rc = 0;

	memset(out, 0, sizeof *out);
	out->workflow = pr_json_copy(workflow);
	out->stage = pr_json_array();
	out->collect = pr_json_array();
	out->derive = pr_json_array();
	C.R = R;
	C.job = job;
	C.vars = pr_json_get(job, "vars");
	C.job_id = pr_json_get_string(job, "id");
	if (!C.job_id)
		C.job_id = "(no id)";
	C.wf = out->workflow;
	C.deleted = pr_json_object();
	C.out = out;
	C.explain = explain_to;
	C.err = err;
	C.errlen = errlen;
	for (i = 0; i < R->n && rc == 0; i++) {
		C.rule = &R->rule[i];
		rc = apply_rule(&C);
	}
	if (rc == 0)
		rc = check_result(&C);
	cJSON_Delete(C.deleted);
	if (rc < 0)
		pr_patched_free(out);
	return rc;
}

void
pr_patched_free(struct pr_patched *p)
{
	cJSON_Delete(p->workflow);
	cJSON_Delete(p->stage);
	cJSON_Delete(p->collect);
	cJSON_Delete(p->derive);
	memset(p, 0, sizeof *p);
}
