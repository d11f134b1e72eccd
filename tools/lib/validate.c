/*
 * Prompt validation as ComfyUI 0.3.64 does it: execution.py validate_prompt
 * and validate_inputs, comfy_execution/validation.py validate_node_input,
 * and the VALIDATE_INPUTS functions of the nodes our facts name.
 *
 * The answers must be the real server's, byte for byte, so this works on
 * Python's terms throughout: values are read the way json.loads reads them
 * (integers exact and unbounded, other numbers doubles), converted with
 * int()/float()/str()/bool() semantics, compared the way Python compares
 * int with float (exactly), and printed with str()/repr() and json.dumps.
 * Where Python raises an exception the real validator turns into an error
 * entry (KeyError for a link to a missing node, TypeError, ...), this
 * "raises" too: a function returns -1 with a struct exc describing it,
 * and the caller that Python's try/except sits in catches it.
 *
 * No global mutable state: the ComfyUI stand-in validates from several
 * threads at once.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "err.h"
#include "json.h"
#include "python.h"
#include "utf8.h"
#include "validate.h"


/* Python's own limit stops a deep chain of links with RecursionError at
 * about this depth; stopping here also keeps our stack bounded. */
#define MAX_DEPTH 900

/* Python's int() refuses longer digit strings (sys.int_info). */
#define MAX_INT_DIGITS 4300

static bool
is_x_key(const char *k)
{
	return k && k[0] == 'x' && k[1] == '-';
}

/* ------------------------------------------------------ exact numbers */

/* A Python number: an int as sign and digits (exact, any size), a float
 * as a double. bool counts as int, as in Python. */
struct num {
	bool is_int, neg;
	const char *mag;
	double d;
};

static bool
num_of(const cJSON *v, struct num *n)
{
	const char *s;

	switch (pr_py_kind(v)) {
	case PY_BOOL:
		n->is_int = true;
		n->neg = false;
		n->mag = cJSON_IsTrue(v) ? "1" : "0";
		return true;
	case PY_INT:
		s = pr_py_int_text(v);
		n->is_int = true;
		n->neg = *s == '-';
		n->mag = s + n->neg;
		return true;
	case PY_FLOAT:
		n->is_int = false;
		n->d = pr_py_float_of(v);
		return true;
	default:
		return false;
	}
}

static int
int_cmp(const struct num *a, const struct num *b)
{
	size_t la = strlen(a->mag), lb = strlen(b->mag);
	int c;

	if (a->neg != b->neg)
		return a->neg ? -1 : 1;
	if (la != lb)
		c = la < lb ? -1 : 1;
	else
		c = strcmp(a->mag, b->mag), c = (c > 0) - (c < 0);
	return a->neg ? -c : c;
}

/* int vs float the way Python does it: exactly, never through a double
 * (2**64 - 1 < 2.0**64 is True). 2 means unordered (NaN). */
static int
int_float_cmp(const struct num *a, double d)
{
	char text[400];
	struct num fl = { true, false, NULL, 0 };
	double f;
	int c;

	if (isnan(d))
		return 2;
	if (isinf(d))
		return d > 0 ? -1 : 1;
	f = floor(d);
	/* glibc prints an integral double's exact digits */
	snprintf(text, sizeof text, "%.0f", f);
	fl.neg = text[0] == '-';
	fl.mag = text + fl.neg;
	if (strcmp(fl.mag, "0") == 0)
		fl.neg = false;
	c = int_cmp(a, &fl);
	if (c != 0)
		return c;
	return d > f ? -1 : 0;
}

static int
num_cmp(const struct num *a, const struct num *b)
{
	int c;

	if (a->is_int && b->is_int)
		return int_cmp(a, b);
	if (a->is_int)
		return int_float_cmp(a, b->d);
	if (b->is_int) {
		c = int_float_cmp(b, a->d);
		return c == 2 ? 2 : -c;
	}
	if (isnan(a->d) || isnan(b->d))
		return 2;
	return (a->d > b->d) - (a->d < b->d);
}

/* Python ==, for combo membership (1 == 1.0 == True). */
static bool
py_eq(const cJSON *a, const cJSON *b)
{
	struct num na, nb;
	const cJSON *c;
	enum py_kind k = pr_py_kind(a);

	if (num_of(a, &na) && num_of(b, &nb))
		return num_cmp(&na, &nb) == 0;
	if (k != pr_py_kind(b))
		return false;
	switch (k) {
	case PY_NONE:
		return true;
	case PY_STR:
		return strcmp(a->valuestring, b->valuestring) == 0;
	case PY_LIST:
		if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
			return false;
		for (c = a->child, b = b->child; c; c = c->next, b = b->next)
			if (!py_eq(c, b))
				return false;
		return true;
	case PY_DICT:
		if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
			return false;
		for (c = a->child; c; c = c->next) {
			const cJSON *o = pr_json_get(b, c->string);

			if (!o || !py_eq(c, o))
				return false;
		}
		return true;
	default:
		return false;
	}
}

/* ---------------------------------------------------------- exceptions */

/* A Python exception on its way up: its class, str(exception), and the
 * traceback line of the frame that raised it. */
struct exc {
	const char *type;
	const char *where;
	char *msg;
};

#define TB(line, func, code) \
	"  File \"/srv/ComfyUI/execution.py\", line " #line ", in " func "\n    " code "\n"

static const char TB_OUTPUT[] = TB(1010, "validate_prompt",
    "m = await validate_inputs(prompt_id, prompt, o, validated)");
static const char TB_INNER[] = TB(808, "validate_inputs",
    "r = await validate_inputs(prompt_id, prompt, o_id, validated)");
static const char TB_NODE[] = TB(788, "validate_inputs",
    "o_class_type = prompt[o_id]['class_type']");
static const char TB_SLOT[] = TB(790, "validate_inputs",
    "received_type = r[val[1]]");
static const char TB_INPUTS[] = TB(733, "validate_inputs",
    "inputs = prompt[unique_id]['inputs']");
static const char TB_LOOKUP[] = TB(767, "validate_inputs",
    "if x not in inputs:");
static const char TB_RANGE[] = TB(880, "validate_inputs",
    "if \"min\" in extra_info and val < extra_info[\"min\"]:");
static const char TB_CUSTOM[] = TB(935, "validate_inputs",
    "ret = await _async_map_node_over_list(prompt_id, unique_id, obj_class, "
    "input_filtered, validate_function_name, v3_data=v3_data)");
static const char TB_DEPTH[] = TB(725, "validate_inputs",
    "async def validate_inputs(prompt_id, prompt, item, validated):");

static int
raise_exc(struct exc *ex, const char *type, const char *where, char *msg)
{
	ex->type = type;
	ex->where = where;
	ex->msg = msg;
	return -1;
}

static void
exc_free(struct exc *ex)
{
	free(ex->msg);
	ex->msg = NULL;
}

static cJSON *
traceback(const char *caller, const struct exc *ex)
{
	cJSON *tb = pr_json_array();

	cJSON_AddItemToArray(tb, pr_json_string(caller));
	cJSON_AddItemToArray(tb, pr_json_string(ex->where));
	return tb;
}

/* Python's a OP b for the orderings the validator and the VALIDATE_INPUTS
 * rules use: 1 true, 0 false, -1 raised (TypeError as Python's). */
static int
py_order(const cJSON *a, const cJSON *b, const char *op, const char *where, struct exc *ex)
{
	struct num na, nb;
	int c;

	if (num_of(a, &na) && num_of(b, &nb)) {
		c = num_cmp(&na, &nb);
		if (c == 2)
			return 0;
	} else if (pr_py_kind(a) == PY_STR && pr_py_kind(b) == PY_STR) {
		c = strcmp(a->valuestring, b->valuestring);
		c = (c > 0) - (c < 0);
	} else {
		return raise_exc(ex, "TypeError", where,
		    pr_xasprintf("'%s' not supported between instances of '%s' and '%s'",
		        op, pr_py_type_name(a), pr_py_type_name(b)));
	}
	if (strcmp(op, "<") == 0)
		return c < 0;
	if (strcmp(op, ">") == 0)
		return c > 0;
	return c <= 0;
}

/* --------------------------------------------------------- conversions */

static bool
py_isspace(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 ||
	    c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
	    c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/* s without Python's str.strip() whitespace: [*start, *end). */
static void
py_strip(const char *s, const char **start, const char **end)
{
	const char *p = s, *last = s;

	while (*p) {
		const char *q = p;

		if (!py_isspace(pr_utf8_next(&q)))
			break;
		p = q;
	}
	*start = p;
	for (const char *q = p; *q;) {
		if (!py_isspace(pr_utf8_next(&q)))
			last = q;
	}
	*end = last > p ? last : p;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Digits with single underscores between them (PEP 515), copied to out
 * without the underscores. Returns the end, or NULL when malformed. */
static const char *
digitpart(const char *p, const char *end, struct pr_buf *out, size_t *count)
{
	if (p >= end || !is_digit(*p))
		return NULL;
	while (p < end) {
		if (is_digit(*p)) {
			pr_buf_addc(out, *p++);
			(*count)++;
		} else if (*p == '_' && p + 1 < end && is_digit(p[1])) {
			p++;
		} else {
			break;
		}
	}
	return p;
}

/* int(s) for a str; 0, or -1 with the ValueError's message. (ASCII digits
 * only: Python also takes other Unicode decimal digits.) */
static int
parse_py_int(const char *s, struct pr_buf *out, char **msg)
{
	struct pr_buf digits = PR_BUF_INIT;
	const char *p, *end, *q;
	size_t count = 0;
	bool neg = false;

	py_strip(s, &p, &end);
	if (p < end && (*p == '+' || *p == '-'))
		neg = *p++ == '-';
	q = digitpart(p, end, &digits, &count);
	if (!q || q != end) {
		/* "%.200R": the repr cut to 200 characters */
		struct pr_buf r = PR_BUF_INIT;
		const char *c;
		int n = 0;

		pr_py_repr_str(&r, s);
		for (c = r.data; *c && n < 200; n++)
			pr_utf8_next(&c);
		*msg = pr_xasprintf("invalid literal for int() with base 10: %.*s", (int)(c - r.data), r.data);
		pr_buf_free(&r);
		pr_buf_free(&digits);
		return -1;
	}
	if (count > MAX_INT_DIGITS) {
		*msg = pr_xasprintf("Exceeds the limit (%d digits) for integer string conversion: "
		    "value has %zu digits; use sys.set_int_max_str_digits() to increase the limit",
		    MAX_INT_DIGITS, count);
		pr_buf_free(&digits);
		return -1;
	}
	p = digits.data;
	while (p[0] == '0' && p[1])
		p++;
	if (neg && strcmp(p, "0") != 0)
		pr_buf_addc(out, '-');
	pr_buf_adds(out, p);
	pr_buf_free(&digits);
	return 0;
}

static bool
word_is(const char *p, const char *end, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(end - p) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((p[i] | 0x20) != w[i])
			return false;
	return true;
}

/* float(s) for a str: Python's grammar (underscores, inf, nan). */
static bool
parse_py_float(const char *s, double *out)
{
	struct pr_buf t = PR_BUF_INIT;
	const char *p, *end;
	size_t count = 0;
	bool neg = false, ok = false;

	py_strip(s, &p, &end);
	if (p < end && (*p == '+' || *p == '-'))
		neg = *p++ == '-';
	if (word_is(p, end, "inf") || word_is(p, end, "infinity")) {
		*out = neg ? -INFINITY : INFINITY;
		return true;
	}
	if (word_is(p, end, "nan")) {
		*out = NAN;
		return true;
	}
	if (neg)
		pr_buf_addc(&t, '-');
	if (p < end && is_digit(*p))
		p = digitpart(p, end, &t, &count);
	if (p && p < end && *p == '.') {
		pr_buf_addc(&t, *p++);
		if (p < end && is_digit(*p))
			p = digitpart(p, end, &t, &count);
	}
	if (p && count > 0 && p < end && (*p == 'e' || *p == 'E')) {
		pr_buf_addc(&t, 'e');
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			pr_buf_addc(&t, *p++);
		p = digitpart(p, end, &t, &count);
	}
	if (p && p == end && count > 0) {
		*out = strtod(t.data, NULL);
		ok = true;
	}
	pr_buf_free(&t);
	return ok;
}

/* int(v): a new raw int, or NULL with *msg the exception's message. */
static cJSON *
py_int(const cJSON *v, char **msg)
{
	struct pr_buf b = PR_BUF_INIT;
	cJSON *r;
	double d;

	switch (pr_py_kind(v)) {
	case PY_BOOL:
		return pr_json_int(cJSON_IsTrue(v));
	case PY_INT:
		return pr_json_number_text(pr_py_int_text(v));
	case PY_FLOAT:
		d = pr_py_float_of(v);
		if (isnan(d)) {
			*msg = pr_xstrdup("cannot convert float NaN to integer");
			return NULL;
		}
		if (isinf(d)) {
			*msg = pr_xstrdup("cannot convert float infinity to integer");
			return NULL;
		}
		d = trunc(d);
		pr_buf_printf(&b, "%.0f", d == 0 ? 0.0 : d);
		break;
	case PY_STR:
		if (parse_py_int(v->valuestring, &b, msg) < 0) {
			pr_buf_free(&b);
			return NULL;
		}
		break;
	default:
		*msg = pr_xasprintf("int() argument must be a string, a bytes-like object or a real number, not '%s'",
		    pr_py_type_name(v));
		return NULL;
	}
	r = pr_json_number_text(b.data);
	pr_buf_free(&b);
	return r;
}

/* float(v), the same way. */
static cJSON *
py_float(const cJSON *v, char **msg)
{
	double d;

	switch (pr_py_kind(v)) {
	case PY_BOOL:
		return pr_py_json_float(cJSON_IsTrue(v) ? 1.0 : 0.0);
	case PY_INT:
		d = strtod(v->valuestring, NULL);
		if (isinf(d)) {
			*msg = pr_xstrdup("int too large to convert to float");
			return NULL;
		}
		return pr_py_json_float(d);
	case PY_FLOAT:
		return pr_py_json_float(pr_py_float_of(v));
	case PY_STR:
		if (!parse_py_float(v->valuestring, &d)) {
			char *r = pr_py_repr(v);

			*msg = pr_xasprintf("could not convert string to float: %s", r);
			free(r);
			return NULL;
		}
		return pr_py_json_float(d);
	default:
		*msg = pr_xasprintf("float() argument must be a string or a real number, not '%s'", pr_py_type_name(v));
		return NULL;
	}
}

/* ------------------------------------------------------ the validator */

/* One input of a class: required ones first, then optional, as listed. */
struct spec {
	const char *name;
	bool required;
	const cJSON *type;   /* spec[0]: "INT", a list of options, ... */
	const cJSON *extra;  /* spec[1] when the wire has it, else NULL */
};

/* validated[id] of execution.py: kept in insertion order, which is the
 * order node_errors gets its entries in. */
struct memo {
	char *id;
	bool valid;
	cJSON *reasons;
};

struct ctx {
	const cJSON *prompt, *info, *facts;
	const struct pr_validate_files *files;
	struct memo *memo;
	size_t nmemo, capmemo;
	/* nodes being validated, outermost first: a link back into one of
	 * them is a cycle */
	const char **stack;
	size_t depth, capstack;
};

static struct memo *
memo_find(struct ctx *c, const char *id)
{
	for (size_t i = 0; i < c->nmemo; i++)
		if (strcmp(c->memo[i].id, id) == 0)
			return &c->memo[i];
	return NULL;
}

/* validated[id] = (valid, reasons); takes reasons. */
static void
memo_set(struct ctx *c, const char *id, bool valid, cJSON *reasons)
{
	struct memo *m = memo_find(c, id);

	if (!m) {
		if (c->nmemo == c->capmemo) {
			c->capmemo = c->capmemo ? 2 * c->capmemo : 16;
			c->memo = pr_xrealloc(c->memo, c->capmemo * sizeof *c->memo);
		}
		m = &c->memo[c->nmemo++];
		m->id = pr_xstrdup(id);
	} else {
		cJSON_Delete(m->reasons);
	}
	m->valid = valid;
	m->reasons = reasons;
}

/* The x-bare dict exists only to carry x-files: on the wire the spec has
 * no dict at all. */
static const cJSON *
spec_extra(const cJSON *raw)
{
	const cJSON *e = cJSON_IsArray(raw) ? cJSON_GetArrayItem(raw, 1) : NULL;

	if (cJSON_IsObject(e) && cJSON_IsTrue(pr_json_get(e, "x-bare")))
		return NULL;
	return e;
}

static size_t
gather_specs(const cJSON *cls, struct spec **out)
{
	const cJSON *input = pr_json_get(cls, "input");
	const cJSON *req = pr_json_get(input, "required");
	const cJSON *opt = pr_json_get(input, "optional");
	size_t n = 0, cap = (size_t)cJSON_GetArraySize(req) + (size_t)cJSON_GetArraySize(opt);
	struct spec *s = pr_xcalloc(cap ? cap : 1, sizeof *s);
	const cJSON *c;

	for (int pass = 0; pass < 2; pass++) {
		const cJSON *group = pass == 0 ? req : opt;

		if (!cJSON_IsObject(group))
			continue;
		for (c = group->child; c; c = c->next) {
			/* a set union: a name in both counts once, as required */
			if (pass == 1 && pr_json_get(req, c->string))
				continue;
			s[n].name = c->string;
			s[n].required = pass == 0;
			s[n].type = cJSON_IsArray(c) ? c->child : c;
			s[n].extra = spec_extra(c);
			n++;
		}
	}
	*out = s;
	return n;
}

/* input_config in the error bodies: (type, extra_info) as object_info
 * has them, {} when the spec has no dict, our x- keys left out. */
static cJSON *
input_config(const struct spec *s)
{
	cJSON *r = pr_json_array();
	cJSON *e;

	cJSON_AddItemToArray(r, pr_py_json(s->type));
	if (cJSON_IsObject(s->extra)) {
		e = pr_json_object();
		for (const cJSON *c = s->extra->child; c; c = c->next)
			if (!is_x_key(c->string))
				pr_json_set(e, c->string, pr_py_json(c));
	} else if (s->extra) {
		e = pr_py_json(s->extra);
	} else {
		e = pr_json_object();
	}
	cJSON_AddItemToArray(r, e);
	return r;
}

static const cJSON *
extra_get(const struct spec *s, const char *key)
{
	return cJSON_IsObject(s->extra) ? pr_json_get(s->extra, key) : NULL;
}

static cJSON *
error_entry(const char *type, const char *message, const char *details)
{
	cJSON *e = pr_json_object();

	pr_json_set_string(e, "type", type);
	pr_json_set_string(e, "message", message);
	pr_json_set_string(e, "details", details);
	return e;
}

/* The reason recorded for an output node whose validation raised. */
static cJSON *
outer_reason(const struct exc *ex)
{
	cJSON *reasons = pr_json_array();
	cJSON *e = error_entry("exception_during_validation", "Exception when validating node", ex->msg);
	cJSON *x = pr_json_object();

	pr_json_set_string(x, "exception_type", ex->type);
	pr_json_set(x, "traceback", traceback(TB_OUTPUT, ex));
	pr_json_set(e, "extra_info", x);
	cJSON_AddItemToArray(reasons, e);
	return reasons;
}

/* The reason recorded for an upstream node whose validation raised: it
 * names the edge from the node that was validating it, not the fault. */
static cJSON *
inner_reason(const struct exc *ex, const struct spec *s, const cJSON *link)
{
	cJSON *reasons = pr_json_array();
	cJSON *e = error_entry("exception_during_inner_validation", "Exception when validating inner node", ex->msg);
	cJSON *x = pr_json_object();

	pr_json_set_string(x, "input_name", s->name);
	pr_json_set(x, "input_config", input_config(s));
	pr_json_set_string(x, "exception_message", ex->msg);
	pr_json_set_string(x, "exception_type", ex->type);
	pr_json_set(x, "traceback", traceback(TB_INNER, ex));
	pr_json_set(x, "linked_node", pr_py_json(link));
	pr_json_set(e, "extra_info", x);
	cJSON_AddItemToArray(reasons, e);
	return reasons;
}

/* "x not in inputs" then "inputs[x]" for whatever inputs is: 1 found
 * (*val set), 0 absent, -1 raised (inputs not a dict). */
static int
input_lookup(const cJSON *inputs, const char *name, const cJSON **val, struct exc *ex)
{
	const cJSON *c;

	switch (pr_py_kind(inputs)) {
	case PY_DICT:
		*val = pr_json_get(inputs, name);
		return *val != NULL;
	case PY_LIST:
		for (c = inputs->child; c; c = c->next)
			if (cJSON_IsString(c) && strcmp(c->valuestring, name) == 0)
				return raise_exc(ex, "TypeError", TB_LOOKUP,
				    pr_xstrdup("list indices must be integers or slices, not str"));
		return 0;
	case PY_STR:
		if (strstr(inputs->valuestring, name))
			return raise_exc(ex, "TypeError", TB_LOOKUP,
			    pr_xstrdup("string indices must be integers, not 'str'"));
		return 0;
	default:
		return raise_exc(ex, "TypeError", TB_LOOKUP,
		    pr_xasprintf("argument of type '%s' is not iterable", pr_py_type_name(inputs)));
	}
}

/* r[val[1]] on the linked class's RETURN_TYPES tuple: the position, or
 * -1 raised (Python indexes from the end for negative numbers). */
static int
slot_index(const cJSON *idx, int n, int *pos, struct exc *ex)
{
	long long i;
	char *end;

	switch (pr_py_kind(idx)) {
	case PY_BOOL:
		i = cJSON_IsTrue(idx);
		break;
	case PY_INT:
		errno = 0;
		i = strtoll(idx->valuestring, &end, 10);
		if (errno || *end)
			return raise_exc(ex, "IndexError", TB_SLOT,
			    pr_xstrdup("cannot fit 'int' into an index-sized integer"));
		break;
	default:
		return raise_exc(ex, "TypeError", TB_SLOT,
		    pr_xasprintf("tuple indices must be integers or slices, not %s", pr_py_type_name(idx)));
	}
	if (i < 0)
		i += n;
	if (i < 0 || i >= n)
		return raise_exc(ex, "IndexError", TB_SLOT, pr_xstrdup("tuple index out of range"));
	*pos = (int)i;
	return 0;
}


/*
 * One side's x-links rule: the type object's __ne__ override. ["*"] alone
 * is IO.ANY/AnyType/AlwaysEqualProxy, equal to everything. A longer list
 * is VHS's MultiInput: equal to "*" and to the types it lists (its "*"
 * entry records that "*" is accepted, not that anything is).
 */
static bool
rule_equal(const cJSON *rule, const cJSON *other)
{
	bool only_star = cJSON_GetArraySize(rule) > 0;

	for (const cJSON *c = rule->child; c; c = c->next)
		if (!cJSON_IsString(c) || strcmp(c->valuestring, "*") != 0)
			only_star = false;
	if (only_star)
		return true;
	if (!cJSON_IsString(other))
		return false;
	return strcmp(other->valuestring, "*") == 0 || pr_json_has_string(rule, other->valuestring);
}

/* The comma-separated types of s, trimmed, as a list of strings. */
static size_t
split_types(const char *s, char ***out)
{
	size_t n = 0;
	char **v = NULL;

	for (const char *p = s;; p++) {
		const char *q = strchr(p, ',');
		char *piece = pr_xstrndup(p, q ? (size_t)(q - p) : strlen(p));
		const char *a, *b;

		py_strip(piece, &a, &b);
		v = pr_xrealloc(v, (n + 1) * sizeof *v);
		v[n++] = pr_xstrndup(a, (size_t)(b - a));
		free(piece);
		if (!q)
			break;
		p = q;
	}
	*out = v;
	return n;
}

/*
 * validate_node_input(received_type, input_type), non-strict. Python
 * tries the output type's __ne__ first, the input type's when it is a
 * str subclass and the output type a plain str; without overrides equal
 * strings match, and comma lists match when they share a type.
 */
static bool
link_ok(const cJSON *received, const cJSON *input_type, const cJSON *out_rule, const cJSON *in_rule)
{
	bool ne, ok = false;
	char **a, **b;
	size_t na, nb;

	if (cJSON_IsArray(out_rule))
		ne = !rule_equal(out_rule, input_type);
	else if (cJSON_IsArray(in_rule))
		ne = !rule_equal(in_rule, received);
	else
		ne = !py_eq(received, input_type);
	if (!ne)
		return true;
	if (!cJSON_IsString(received) || !cJSON_IsString(input_type))
		return false;
	na = split_types(received->valuestring, &a);
	nb = split_types(input_type->valuestring, &b);
	for (size_t i = 0; i < na && !ok; i++)
		for (size_t j = 0; j < nb && !ok; j++)
			ok = strcmp(a[i], b[j]) == 0;
	for (size_t i = 0; i < na; i++)
		free(a[i]);
	for (size_t j = 0; j < nb; j++)
		free(b[j]);
	free(a);
	free(b);
	return ok;
}

/* The current value of each input, as validation rewrites them
 * (inputs[x] = val in Python): what VALIDATE_INPUTS then receives. */
struct cur {
	const char *name;
	const cJSON *val;
};

struct node_state {
	struct cur *cur;
	size_t ncur;
	cJSON *owned;  /* converted values, freed with the state */
};

static void
cur_set(struct node_state *st, const char *name, const cJSON *v)
{
	for (size_t i = 0; i < st->ncur; i++)
		if (strcmp(st->cur[i].name, name) == 0)
			st->cur[i].val = v;
}

/* VALIDATE_INPUTS's arguments as get_input_data builds them. */
struct arg {
	const char *name;
	const cJSON *val;  /* NULL: None */
};

static long
arg_index(const struct arg *av, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(av[i].name, name) == 0)
			return (long)i;
	return -1;
}

/* The argument's value; None when it is absent too. */
static const cJSON *
arg_get(const struct arg *av, size_t n, const char *name)
{
	long i = arg_index(av, n, name);

	return i < 0 ? NULL : av[i].val;
}

/* "x.png [output]" -> ("output", "x.png"): folder_paths.annotated_filepath,
 * which cuts the tag and the character before it, whatever it is. */
static char *
annotated(const char *s, const char **folder)
{
	static const char *const tags[][2] = {
		{ "[output]", "output" }, { "[input]", "input" }, { "[temp]", "temp" },
	};
	size_t n = strlen(s);

	*folder = NULL;
	for (size_t i = 0; i < 3; i++) {
		size_t t = strlen(tags[i][0]);

		if (n >= t && strcmp(s + n - t, tags[i][0]) == 0) {
			size_t keep = n - t;

			/* back one whole UTF-8 character */
			if (keep > 0) {
				keep--;
				while (keep > 0 && ((unsigned char)s[keep] & 0xc0) == 0x80)
					keep--;
			}
			*folder = tags[i][1];
			return pr_xstrndup(s, keep);
		}
	}
	return pr_xstrdup(s);
}

static bool
file_exists(const struct pr_validate_files *files, const char *folder, const char *path)
{
	return files && files->exists && files->exists(files->ctx, folder, path);
}

/* Python's class name in "Cls.VALIDATE_INPUTS() missing ...": the node
 * name except where a pack registers a class under another name. */
static const char *
python_class(const char *node)
{
	if (strcmp(node, "VHS_LoadVideo") == 0)
		return "LoadVideoUpload";
	if (strcmp(node, "VHS_LoadVideoPath") == 0)
		return "LoadVideoPath";
	return node;
}

/*
 * Runs the class's VALIDATE_INPUTS rule (x-validate.check). Returns 0 with
 * *fail NULL when it returns True, set to its message otherwise; -1 when
 * it raises.
 */
static int
run_check(const struct ctx *c, const cJSON *xval, const struct arg *av, size_t na,
    char **fail, struct exc *ex)
{
	const char *check = pr_json_get_string(xval, "check");
	const char *message = pr_json_get_string(xval, "message");
	const cJSON *args = pr_json_get(xval, "args");
	const char *first = cJSON_IsArray(args) && cJSON_IsString(args->child) ? args->child->valuestring : "";
	const cJSON *v = arg_get(av, na, first);
	const char *folder;
	char *name, *s;
	bool ok;

	*fail = NULL;
	if (!check)
		return 0;
	if (!message)
		message = "Invalid file";
	if (strcmp(check, "annotated_file") == 0) {
		/* folder_paths.exists_annotated_filepath(value) */
		if (pr_py_kind(v) != PY_STR)
			return raise_exc(ex, "AttributeError", TB_CUSTOM,
			    pr_xasprintf("'%s' object has no attribute 'endswith'", pr_py_type_name(v)));
		name = annotated(v->valuestring, &folder);
		ok = file_exists(c->files, folder ? folder : "input", name);
		free(name);
		if (!ok)
			*fail = pr_xasprintf("%s: %s", message, v->valuestring);
	} else if (strcmp(check, "annotated_path") == 0) {
		/* Ib's LoadImageFromPath: None passes; anything failing inside
		 * its try block becomes one fixed message. The real message
		 * prints the resolved server path, which only the server knows:
		 * this prints the value. */
		if (pr_py_kind(v) == PY_NONE)
			return 0;
		if (pr_py_kind(v) != PY_STR) {
			*fail = pr_xstrdup("Error validating image path");
			return 0;
		}
		name = annotated(v->valuestring, &folder);
		ok = file_exists(c->files, folder ? folder : "input", name);
		free(name);
		if (!ok)
			*fail = pr_xasprintf("%s: %s", message, v->valuestring);
	} else if (strcmp(check, "file_path") == 0) {
		/* VHS validate_path(video, allow_none=True) */
		const char *p, *end, *sep;

		if (pr_py_kind(v) == PY_NONE)
			return 0;
		if (pr_py_kind(v) != PY_STR)
			return raise_exc(ex, "AttributeError", TB_CUSTOM,
			    pr_xasprintf("'%s' object has no attribute 'split'", pr_py_type_name(v)));
		s = v->valuestring;
		sep = strstr(s, "://");
		if (sep ? (sep - s == 4 && strncmp(s, "http", 4) == 0) || (sep - s == 5 && strncmp(s, "https", 5) == 0)
		        : strcmp(s, "http") == 0 || strcmp(s, "https") == 0)
			return 0;
		/* strip_path: whitespace, then one '"' at each end */
		py_strip(s, &p, &end);
		if (p < end && *p == '"')
			p++;
		if (end > p && end[-1] == '"')
			end--;
		name = pr_xstrndup(p, (size_t)(end - p));
		/* os.path.isfile(""): False, though "" names the directory */
		ok = *name && file_exists(c->files, "cwd", name);
		free(name);
		if (!ok)
			*fail = pr_xasprintf("%s: %s", message, s);
	} else if (strcmp(check, "cwd_path") == 0) {
		/* os.path.exists(file_path) against the server's directory */
		switch (pr_py_kind(v)) {
		case PY_STR:
			if (!*v->valuestring || !file_exists(c->files, "cwd", v->valuestring))
				*fail = pr_xasprintf("%s: %s", message, v->valuestring);
			break;
		case PY_INT:
		case PY_BOOL:
			/* a file descriptor to os.stat: not one of ours */
			s = pr_py_str(v);
			*fail = pr_xasprintf("%s: %s", message, s);
			free(s);
			break;
		default:
			return raise_exc(ex, "TypeError", TB_CUSTOM,
			    pr_xasprintf("stat: path should be string, bytes, os.PathLike or integer, not %s",
			        pr_py_type_name(v)));
		}
	} else if (strcmp(check, "tiles") == 0) {
		int r = py_order(arg_get(av, na, "tile_x"), arg_get(av, na, "tile_stride_x"), "<=", TB_CUSTOM, ex);

		if (r < 0)
			return -1;
		if (r) {
			*fail = pr_xstrdup("Tile width must be larger than the tile stride width.");
			return 0;
		}
		r = py_order(arg_get(av, na, "tile_y"), arg_get(av, na, "tile_stride_y"), "<=", TB_CUSTOM, ex);
		if (r < 0)
			return -1;
		if (r)
			*fail = pr_xstrdup("Tile height must be larger than the tile stride height.");
	} else if (strcmp(check, "not_empty") == 0) {
		/* CRT's SaveLatentWithPath; it then also creates the folder,
		 * which a validator that only answers must not do */
		if (!pr_py_truthy(arg_get(av, na, "folder_path")))
			*fail = pr_xstrdup("Folder path cannot be empty");
		else if (!pr_py_truthy(arg_get(av, na, "filename")))
			*fail = pr_xstrdup("Filename cannot be empty");
	}
	/* "always" and unknown rules return True */
	return 0;
}

static bool
is_link(const cJSON *v)
{
	enum py_kind k;

	if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !cJSON_IsString(v->child))
		return false;
	k = pr_py_kind(v->child->next);
	return k == PY_INT || k == PY_FLOAT || k == PY_BOOL;
}

static void
args_set(struct arg **av, size_t *na, const char *name, const cJSON *val)
{
	long i = arg_index(*av, *na, name);

	if (i >= 0) {
		(*av)[i].val = val;
		return;
	}
	*av = pr_xrealloc(*av, (*na + 1) * sizeof **av);
	(*av)[*na].name = name;
	(*av)[*na].val = val;
	(*na)++;
}

/*
 * The VALIDATE_INPUTS call at the end of validate_inputs: get_input_data
 * (links as None, hidden inputs added), filtered to the function's named
 * arguments (all of them with **kwargs), then one custom_validation_failed
 * per argument passed when it fails. 0, or -1 raised.
 */
static int
custom_validation(const struct ctx *c, const char *id, const char *class_type, const cJSON *cls,
    const cJSON *xval, const struct spec *specs, size_t nspecs, const cJSON *inputs,
    struct node_state *st, cJSON *errors, struct exc *ex)
{
	const cJSON *args = pr_json_get(xval, "args");
	bool varkw = cJSON_IsTrue(pr_json_get(xval, "varkw"));
	const cJSON *hidden = pr_json_get(pr_json_get(cls, "input"), "hidden");
	struct arg *all = NULL, *av = NULL;
	size_t nall = 0, na = 0;
	struct pr_buf missing = PR_BUF_INIT;
	int nmissing = 0, rc = 0;
	char *fail = NULL;

	if ((pr_py_kind(inputs) == PY_LIST || pr_py_kind(inputs) == PY_STR) && pr_py_truthy(inputs))
		/* "for x in inputs: inputs[x]" on a list or str */
		return raise_exc(ex, "TypeError", TB_CUSTOM, pr_xstrdup(pr_py_kind(inputs) == PY_LIST
		    ? "list indices must be integers or slices, not str"
		    : "string indices must be integers, not 'str'"));
	for (size_t i = 0; i < st->ncur; i++) {
		const char *x = st->cur[i].name;
		const cJSON *v = st->cur[i].val;
		const struct spec *s = NULL;

		for (size_t j = 0; j < nspecs && !s; j++)
			if (strcmp(specs[j].name, x) == 0)
				s = &specs[j];
		if (is_link(v) && !(s && pr_py_truthy(extra_get(s, "rawLink"))))
			args_set(&all, &nall, x, NULL);
		else if (s || pr_json_get(hidden, x))
			args_set(&all, &nall, x, v);
	}
	for (const cJSON *h = cJSON_IsObject(hidden) ? hidden->child : NULL; h; h = h->next) {
		const char *t = cJSON_IsString(h) ? h->valuestring : "";

		if (strcmp(t, "PROMPT") == 0) {
			cJSON *empty = pr_json_object();

			cJSON_AddItemToArray(st->owned, empty);
			args_set(&all, &nall, h->string, empty);
		} else if (strcmp(t, "UNIQUE_ID") == 0) {
			cJSON *uid = pr_json_string(id);

			cJSON_AddItemToArray(st->owned, uid);
			args_set(&all, &nall, h->string, uid);
		} else if (strcmp(t, "DYNPROMPT") == 0 || strcmp(t, "EXTRA_PNGINFO") == 0 ||
		    strcmp(t, "AUTH_TOKEN_COMFY_ORG") == 0 || strcmp(t, "API_KEY_COMFY_ORG") == 0) {
			args_set(&all, &nall, h->string, NULL);
		}
	}
	for (size_t i = 0; i < nall; i++)
		if (varkw || pr_json_has_string(args, all[i].name))
			args_set(&av, &na, all[i].name, all[i].val);

	/* f(**input_filtered) with a named argument missing: Python lists
	 * them as 'a', 'a' and 'b', or 'a', 'b', and 'c' */
	for (int pass = 0; pass < 2; pass++) {
		int k = 0;

		for (const cJSON *a = cJSON_IsArray(args) ? args->child : NULL; a; a = a->next) {
			if (!cJSON_IsString(a) || arg_index(av, na, a->valuestring) >= 0)
				continue;
			if (pass == 0) {
				nmissing++;
				continue;
			}
			if (k > 0)
				pr_buf_adds(&missing, nmissing == 2 ? " and " : k == nmissing - 1 ? ", and " : ", ");
			pr_buf_printf(&missing, "'%s'", a->valuestring);
			k++;
		}
		if (nmissing == 0)
			break;
	}
	if (nmissing) {
		rc = raise_exc(ex, "TypeError", TB_CUSTOM,
		    pr_xasprintf("%s.VALIDATE_INPUTS() missing %d required positional argument%s: %s",
		        python_class(class_type), nmissing, nmissing > 1 ? "s" : "", missing.data));
		goto out;
	}
	if (run_check(c, xval, av, na, &fail, ex) < 0) {
		rc = -1;
		goto out;
	}
	for (size_t i = 0; fail && i < na; i++) {
		char *details = pr_xasprintf("%s - %s", av[i].name, fail);
		cJSON *e = error_entry("custom_validation_failed", "Custom validation failed for node", details);
		cJSON *x = pr_json_object();

		pr_json_set_string(x, "input_name", av[i].name);
		pr_json_set(e, "extra_info", x);
		cJSON_AddItemToArray(errors, e);
		free(details);
	}
out:
	free(fail);
	free(all);
	free(av);
	pr_buf_free(&missing);
	return rc;
}

static int validate_node(struct ctx *c, const char *id, bool *valid, const cJSON **reasons,
    struct exc *ex);

/*
 * A linked input: the slot's type must fit, then the linked node is
 * validated in turn (an exception there is caught here and recorded on
 * that node). Returns 0, or -1 raised by this node's own lookups.
 */
static int
check_link(struct ctx *c, const char *class_type, const struct spec *s, const cJSON *val,
    const cJSON *args, cJSON *errors, bool *valid, struct exc *ex)
{
	const cJSON *oid = val->child, *onode, *outputs, *received;
	const char *oclass;
	const cJSON *out_rule = NULL, *in_rule;
	char key[24];
	int pos;

	if (cJSON_GetArraySize(val) != 2) {
		cJSON *e = error_entry("bad_linked_input",
		    "Bad linked input, must be a length-2 list of [node_id, slot_index]", s->name);
		cJSON *x = pr_json_object();

		pr_json_set_string(x, "input_name", s->name);
		pr_json_set(x, "input_config", input_config(s));
		pr_json_set(x, "received_value", pr_py_json(val));
		pr_json_set(e, "extra_info", x);
		cJSON_AddItemToArray(errors, e);
		return 0;
	}
	/* prompt[o_id]['class_type'] */
	switch (pr_py_kind(oid)) {
	case PY_STR:
		if (!(onode = pr_json_get(c->prompt, oid->valuestring)))
			return raise_exc(ex, "KeyError", TB_NODE, pr_py_repr(oid));
		break;
	case PY_LIST:
	case PY_DICT:
		return raise_exc(ex, "TypeError", TB_NODE, pr_xasprintf("unhashable type: '%s'", pr_py_type_name(oid)));
	default:
		return raise_exc(ex, "KeyError", TB_NODE, pr_py_repr(oid));
	}
	oclass = pr_json_get_string(onode, "class_type");
	outputs = pr_json_get(pr_json_get(c->info, oclass), "output");
	if (slot_index(oid->next, cJSON_GetArraySize(outputs), &pos, ex) < 0)
		return -1;
	received = cJSON_GetArrayItem(outputs, pos);
	snprintf(key, sizeof key, "%d", pos);
	out_rule = pr_json_get(pr_json_get(pr_json_get(pr_json_get(c->facts, oclass), "x-links"), "outputs"), key);
	in_rule = pr_json_get(pr_json_get(pr_json_get(pr_json_get(c->facts, class_type), "x-links"), "inputs"), s->name);
	/* a validator taking input_types checks types itself */
	if (!pr_json_has_string(args, "input_types") && !link_ok(received, s->type, out_rule, in_rule)) {
		char *r = pr_py_str(received), *t = pr_py_str(s->type);
		char *details = pr_xasprintf("%s, received_type(%s) mismatch input_type(%s)", s->name, r, t);
		cJSON *e = error_entry("return_type_mismatch", "Return type mismatch between linked nodes", details);
		cJSON *x = pr_json_object();

		pr_json_set_string(x, "input_name", s->name);
		pr_json_set(x, "input_config", input_config(s));
		pr_json_set(x, "received_type", pr_py_json(received));
		pr_json_set(x, "linked_node", pr_py_json(val));
		pr_json_set(e, "extra_info", x);
		cJSON_AddItemToArray(errors, e);
		free(r);
		free(t);
		free(details);
		return 0;
	}
	{
		struct exc sub = { 0 };
		bool ok;
		const cJSON *unused;

		if (validate_node(c, oid->valuestring, &ok, &unused, &sub) < 0) {
			memo_set(c, oid->valuestring, false, inner_reason(&sub, s, val));
			exc_free(&sub);
			ok = false;
		}
		if (!ok)
			*valid = false;
	}
	return 0;
}

/* A value error of the literal checks: {type, message, details,
 * extra_info: {input_name, input_config, received_value}}. */
static cJSON *
value_error(const char *type, const char *message, const char *details, const struct spec *s,
    cJSON *input_cfg, const cJSON *received)
{
	cJSON *e = error_entry(type, message, details);
	cJSON *x = pr_json_object();

	pr_json_set_string(x, "input_name", s->name);
	pr_json_set(x, "input_config", input_cfg);
	pr_json_set(x, "received_value", pr_py_json(received));
	pr_json_set(e, "extra_info", x);
	return e;
}

/*
 * A literal input: unwrap {"__value__": v}, convert by type, then (unless
 * VALIDATE_INPUTS takes it) the min, max and list checks. Returns 0, or -1
 * raised (an ordering Python cannot do).
 */
static int
check_literal(const struct spec *s, const cJSON *val, bool skip_checks, struct node_state *st,
    cJSON *errors, struct exc *ex)
{
	const char *type = cJSON_IsString(s->type) ? s->type->valuestring : "";
	const cJSON *v = val, *bound, *options = NULL;
	cJSON *conv = NULL;
	char *msg = NULL;
	int r;

	if (cJSON_IsObject(v) && pr_json_get(v, "__value__")) {
		v = pr_json_get(v, "__value__");
		cur_set(st, s->name, v);
	}
	if (strcmp(type, "INT") == 0)
		conv = py_int(v, &msg);
	else if (strcmp(type, "FLOAT") == 0)
		conv = py_float(v, &msg);
	else if (strcmp(type, "STRING") == 0)
		conv = pr_py_str_json(v);
	else if (strcmp(type, "BOOLEAN") == 0)
		conv = pr_json_bool(pr_py_truthy(v));
	if (msg) {
		char *sv = pr_py_str(v);
		char *details = pr_xasprintf("%s, %s, %s", s->name, sv, msg);
		char *m = pr_xasprintf("Failed to convert an input value to a %s value", type);
		cJSON *e = value_error("invalid_input_type", m, details, s, input_config(s), v);

		pr_json_set_string(pr_json_get(e, "extra_info"), "exception_message", msg);
		cJSON_AddItemToArray(errors, e);
		free(sv);
		free(details);
		free(m);
		free(msg);
		return 0;
	}
	if (conv) {
		cJSON_AddItemToArray(st->owned, conv);
		cur_set(st, s->name, conv);
		v = conv;
	}
	if (skip_checks)
		return 0;

	static const struct {
		const char *key, *op, *type, *what;
	} bounds[] = {
		{ "min", "<", "value_smaller_than_min", "smaller than min" },
		{ "max", ">", "value_bigger_than_max", "bigger than max" },
	};
	for (size_t i = 0; i < 2; i++) {
		if (!(bound = extra_get(s, bounds[i].key)))
			continue;
		if ((r = py_order(v, bound, bounds[i].op, TB_RANGE, ex)) < 0)
			return -1;
		if (r) {
			char *a = pr_py_str(v), *b = pr_py_str(bound);
			char *m = pr_xasprintf("Value %s %s of %s", a, bounds[i].what, b);

			cJSON_AddItemToArray(errors, value_error(bounds[i].type, m, s->name, s, input_config(s), v));
			free(a);
			free(b);
			free(m);
			return 0;
		}
	}

	if (cJSON_IsArray(s->type))
		options = s->type;
	else if (strcmp(type, "COMBO") == 0)
		options = extra_get(s, "options");
	if (options || strcmp(type, "COMBO") == 0) {
		int n = cJSON_GetArraySize(options);
		bool found = false;

		for (const cJSON *o = cJSON_IsArray(options) ? options->child : NULL; o && !found; o = o->next)
			found = py_eq(v, o);
		if (!found) {
			/* gigantic lists (scanned model files) are not sent back */
			char *list = n > 20 ? pr_xasprintf("(list of length %d)", n)
			                    : options ? pr_py_repr(options) : pr_xstrdup("[]");
			char *sv = pr_py_str(v);
			char *details = pr_xasprintf("%s: '%s' not in %s", s->name, sv, list);

			cJSON_AddItemToArray(errors, value_error("value_not_in_list", "Value not in list", details, s,
			    n > 20 ? pr_json_null() : input_config(s), v));
			free(list);
			free(sv);
			free(details);
		}
	}
	return 0;
}

/*
 * validate_inputs(item): 0 with the result (also left in the memo), or -1
 * when it raises (the caller records that).
 */
static int
validate_node(struct ctx *c, const char *id, bool *valid, const cJSON **reasons, struct exc *ex)
{
	const struct memo *m = memo_find(c, id);
	const cJSON *node, *inputs, *cls, *fcls, *xval, *args;
	const char *class_type;
	struct spec *specs = NULL;
	struct node_state st = { NULL, 0, NULL };
	size_t nspecs;
	bool varkw, ok = true;
	cJSON *errors;
	int rc = 0;

	if (m) {
		*valid = m->valid;
		*reasons = m->reasons;
		return 0;
	}
	/*
	 * A cycle: Python recurses until RecursionError, which the innermost
	 * caller records; every frame above then finishes and overwrites the
	 * record of its own node with (False, its own errors). The net effect
	 * is this: the node re-entered counts as invalid with no errors.
	 */
	for (size_t i = 0; i < c->depth; i++)
		if (strcmp(c->stack[i], id) == 0) {
			*valid = false;
			*reasons = NULL;
			return 0;
		}
	if (c->depth >= MAX_DEPTH)
		return raise_exc(ex, "RecursionError", TB_DEPTH, pr_xstrdup("maximum recursion depth exceeded"));

	node = pr_json_get(c->prompt, id);
	if (!(inputs = pr_json_get(node, "inputs")))
		return raise_exc(ex, "KeyError", TB_INPUTS, pr_xstrdup("'inputs'"));
	class_type = pr_json_get_string(node, "class_type");
	cls = pr_json_get(c->info, class_type);
	fcls = pr_json_get(c->facts, class_type);
	xval = pr_json_get(fcls, "x-validate");
	args = pr_json_get(xval, "args");
	varkw = cJSON_IsTrue(pr_json_get(xval, "varkw"));

	if (c->depth == c->capstack) {
		c->capstack = c->capstack ? 2 * c->capstack : 16;
		c->stack = pr_xrealloc(c->stack, c->capstack * sizeof *c->stack);
	}
	c->stack[c->depth++] = id;

	nspecs = gather_specs(cls, &specs);
	errors = pr_json_array();
	st.owned = pr_json_array();
	if (cJSON_IsObject(inputs)) {
		st.ncur = (size_t)cJSON_GetArraySize(inputs);
		st.cur = pr_xcalloc(st.ncur ? st.ncur : 1, sizeof *st.cur);
		size_t i = 0;
		for (const cJSON *x = inputs->child; x; x = x->next, i++) {
			st.cur[i].name = x->string;
			st.cur[i].val = x;
		}
	}

	for (size_t i = 0; i < nspecs; i++) {
		const struct spec *s = &specs[i];
		const cJSON *val;
		int r = input_lookup(inputs, s->name, &val, ex);

		if (r < 0)
			goto raised;
		if (r == 0) {
			if (s->required) {
				cJSON *e = error_entry("required_input_missing", "Required input is missing", s->name);
				cJSON *x = pr_json_object();

				pr_json_set_string(x, "input_name", s->name);
				pr_json_set(e, "extra_info", x);
				cJSON_AddItemToArray(errors, e);
			}
			continue;
		}
		if (cJSON_IsArray(val)) {
			if (check_link(c, class_type, s, val, args, errors, &ok, ex) < 0)
				goto raised;
			continue;
		}
		if (check_literal(s, val, varkw || pr_json_has_string(args, s->name), &st, errors, ex) < 0)
			goto raised;
	}
	if (xval && (cJSON_GetArraySize(args) > 0 || varkw) &&
	    custom_validation(c, id, class_type, cls, xval, specs, nspecs, inputs, &st, errors, ex) < 0)
		goto raised;

	ok = ok && cJSON_GetArraySize(errors) == 0;
	if (ok) {
		cJSON_Delete(errors);
		errors = pr_json_array();
	}
	memo_set(c, id, ok, errors);
	m = memo_find(c, id);
	*valid = m->valid;
	*reasons = m->reasons;
	goto out;
raised:
	cJSON_Delete(errors);
	rc = -1;
out:
	c->depth--;
	free(specs);
	free(st.cur);
	cJSON_Delete(st.owned);
	return rc;
}

/* ------------------------------------------------------ validate_prompt */

static void
set_error(struct pr_validation *out, const char *type, const char *message, const char *details)
{
	cJSON *e = error_entry(type, message, details);

	pr_json_set(e, "extra_info", pr_json_object());
	cJSON_Delete(out->error);
	out->error = e;
}

void
pr_validation_no_prompt(struct pr_validation *out)
{
	memset(out, 0, sizeof *out);
	set_error(out, "no_prompt", "No prompt provided", "No prompt provided");
	out->node_errors = pr_json_object();
}

/* What makes aiohttp answer 500: an exception outside the per-output
 * try blocks. details names the Python exception, for the log. */
static void
server_error(struct pr_validation *out, char *details)
{
	set_error(out, "server_error", "500 Internal Server Error", details);
	free(details);
}

/* "x in partial_execution_list": 1, 0, or -1 when Python would raise. */
static int
targeted(const cJSON *targets, const char *id)
{
	switch (pr_py_kind(targets)) {
	case PY_NONE:
		return 1;
	case PY_LIST:
		return pr_json_has_string(targets, id);
	case PY_STR:
		return strstr(targets->valuestring, id) != NULL;
	case PY_DICT:
		return pr_json_get(targets, id) != NULL;
	default:
		return -1;
	}
}

/* 'class_type' not in prompt[x], for a node of any JSON type: 1 present,
 * 0 absent, -1 TypeError. */
static int
has_class_type(const cJSON *node)
{
	switch (pr_py_kind(node)) {
	case PY_DICT: return pr_json_get(node, "class_type") != NULL;
	case PY_LIST: return pr_json_has_string(node, "class_type");
	case PY_STR: return strstr(node->valuestring, "class_type") != NULL;
	default: return -1;
	}
}

void
pr_validate_prompt(const cJSON *prompt, const cJSON *partial_targets,
    const cJSON *object_info, const cJSON *facts,
    const struct pr_validate_files *files, struct pr_validation *out)
{
	struct ctx c = { prompt, object_info, facts, files, NULL, 0, 0, NULL, 0, 0 };
	const cJSON *x;
	const char **outs = NULL;
	size_t nouts = 0, ngood = 0;
	struct pr_buf details = PR_BUF_INIT;

	out->error = NULL;
	out->node_errors = pr_json_object();
	out->outputs = pr_json_array();

	if (!cJSON_IsObject(prompt)) {
		/* "for x in prompt" finds nothing in an empty list or str */
		if ((cJSON_IsArray(prompt) || cJSON_IsString(prompt)) && !pr_py_truthy(prompt))
			set_error(out, "prompt_no_outputs", "Prompt has no outputs", "");
		else
			server_error(out, pr_xasprintf("TypeError: a prompt of type '%s'", pr_py_type_name(prompt)));
		return;
	}

	for (x = prompt->child; x; x = x->next) {
		int has = has_class_type(x);
		const cJSON *ct, *cls;
		char *d, *s;
		int t;

		if (has < 0) {
			server_error(out, pr_xasprintf("TypeError: argument of type '%s' is not iterable", pr_py_type_name(x)));
			goto done;
		}
		if (has == 0) {
			d = pr_xasprintf("Node ID '#%s'", x->string);
			set_error(out, "invalid_prompt",
			    "Cannot execute because a node is missing the class_type property.", d);
			free(d);
			goto done;
		}
		if (!cJSON_IsObject(x)) {
			server_error(out, pr_xasprintf("TypeError: indexing a node of type '%s'", pr_py_type_name(x)));
			goto done;
		}
		ct = pr_json_get(x, "class_type");
		if (cJSON_IsArray(ct) || cJSON_IsObject(ct)) {
			server_error(out, pr_xasprintf("TypeError: unhashable type: '%s'", pr_py_type_name(ct)));
			goto done;
		}
		cls = cJSON_IsString(ct) ? pr_json_get(object_info, ct->valuestring) : NULL;
		if (!cls) {
			s = pr_py_str(ct);
			d = pr_xasprintf("Node ID '#%s'", x->string);
			char *m = pr_xasprintf("Cannot execute because node %s does not exist.", s);

			set_error(out, "invalid_prompt", m, d);
			free(s);
			free(d);
			free(m);
			goto done;
		}
		if (!cJSON_IsTrue(pr_json_get(cls, "output_node")))
			continue;
		if ((t = targeted(partial_targets, x->string)) < 0) {
			server_error(out, pr_xasprintf("TypeError: argument of type '%s' is not iterable",
			    pr_py_type_name(partial_targets)));
			goto done;
		}
		if (t) {
			outs = pr_xrealloc(outs, (nouts + 1) * sizeof *outs);
			outs[nouts++] = x->string;
		}
	}
	if (nouts == 0) {
		set_error(out, "prompt_no_outputs", "Prompt has no outputs", "");
		goto done;
	}

	for (size_t i = 0; i < nouts; i++) {
		const char *o = outs[i];
		struct exc ex = { 0 };
		const cJSON *reasons;
		bool ok;

		if (validate_node(&c, o, &ok, &reasons, &ex) < 0) {
			memo_set(&c, o, false, outer_reason(&ex));
			exc_free(&ex);
			ok = false;
			reasons = memo_find(&c, o)->reasons;
		}
		if (ok) {
			cJSON_AddItemToArray(out->outputs, pr_json_string(o));
			ngood++;
			continue;
		}
		/* the text of the error names only the output's own reasons */
		for (const cJSON *r = reasons ? reasons->child : NULL; r; r = r->next) {
			const char *msg = pr_json_get_string(r, "message");
			const char *det = pr_json_get_string(r, "details");

			if (details.len)
				pr_buf_addc(&details, '\n');
			pr_buf_printf(&details, "%s: %s", msg ? msg : "", det ? det : "");
		}
		/* every failed node validated so far, this output's or not,
		 * gets this output as a dependent: execution.py's own quirk */
		for (size_t j = 0; j < c.nmemo; j++) {
			const struct memo *m = &c.memo[j];
			cJSON *ne;

			if (m->valid || cJSON_GetArraySize(m->reasons) == 0)
				continue;
			if (!(ne = pr_json_get(out->node_errors, m->id))) {
				ne = pr_json_object();
				pr_json_set(ne, "errors", pr_json_copy(m->reasons));
				pr_json_set(ne, "dependent_outputs", pr_json_array());
				pr_json_set_string(ne, "class_type",
				    pr_json_get_string(pr_json_get(prompt, m->id), "class_type"));
				pr_json_set(out->node_errors, m->id, ne);
			}
			cJSON_AddItemToArray(pr_json_get(ne, "dependent_outputs"), pr_json_string(o));
		}
	}
	if (ngood == 0)
		set_error(out, "prompt_outputs_failed_validation", "Prompt outputs failed validation",
		    details.data ? details.data : "");
done:
	if (out->error) {
		cJSON_Delete(out->outputs);
		out->outputs = pr_json_array();
	}
	for (size_t i = 0; i < c.nmemo; i++) {
		free(c.memo[i].id);
		cJSON_Delete(c.memo[i].reasons);
	}
	free(c.memo);
	free(c.stack);
	free(outs);
	pr_buf_free(&details);
}

void
pr_validation_free(struct pr_validation *v)
{
	cJSON_Delete(v->error);
	cJSON_Delete(v->node_errors);
	cJSON_Delete(v->outputs);
	v->error = v->node_errors = v->outputs = NULL;
}
