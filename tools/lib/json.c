#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json.h"
#include "utf8.h"

struct parser {
	const char *p, *end;
	const char *line_start;
	size_t line;
	int depth;
	struct pr_json_error *err;
	struct pr_json_locs *locs;
	struct pr_buf scratch;
};

static cJSON *parse_value(struct parser *P);
static void fail_at(struct parser *P, const char *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
fail_at(struct parser *P, const char *at, const char *fmt, ...)
{
	va_list ap;

	if (P->err->msg[0])
		return;
	P->err->line = P->line;
	P->err->col = (size_t)(at - P->line_start) + 1;
	va_start(ap, fmt);
	vsnprintf(P->err->msg, sizeof P->err->msg, fmt, ap);
	va_end(ap);
}

static cJSON *
checked(cJSON *v)
{
	if (!v)
		pr_die(PR_EXIT_INFRA, "out of memory building JSON");
	return v;
}

static void
skip_ws(struct parser *P)
{
	while (P->p < P->end) {
		char c = *P->p;

		if (c == '\n') {
			P->line++;
			P->line_start = P->p + 1;
		} else if (c != ' ' && c != '\t' && c != '\r') {
			break;
		}
		P->p++;
	}
}

static void
note_loc(struct parser *P, const cJSON *node)
{
	struct pr_json_locs *L = P->locs;

	if (!L)
		return;
	if (L->n == L->cap) {
		L->cap = L->cap ? L->cap * 2 : 32;
		L->v = pr_xrealloc(L->v, L->cap * sizeof *L->v);
	}
	L->v[L->n].node = node;
	L->v[L->n].line = P->line;
	L->n++;
}

static int
hex4(const char *p, unsigned long *out)
{
	unsigned long v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned long)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned long)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned long)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* Decodes the string literal at P->p (on the opening quote) into
 * P->scratch. */
static int
parse_string(struct parser *P)
{
	const char *start = P->p, *run;
	unsigned long cp, lo;
	char enc[4];
	size_t n;

	pr_buf_reset(&P->scratch);
	P->p++;
	for (;;) {
		run = P->p;
		while (P->p < P->end && *P->p != '"' && *P->p != '\\' &&
		    (unsigned char)*P->p >= 0x20 && (unsigned char)*P->p < 0x80)
			P->p++;
		pr_buf_add(&P->scratch, run, (size_t)(P->p - run));
		if (P->p >= P->end) {
			fail_at(P, start, "unterminated string");
			return -1;
		}
		unsigned char c = (unsigned char)*P->p;

		if (c == '"') {
			P->p++;
			return 0;
		}
		if (c == 0) {
			fail_at(P, P->p, "NUL byte in string");
			return -1;
		}
		if (c < 0x20) {
			fail_at(P, P->p, "unescaped control character 0x%02x in string", c);
			return -1;
		}
		if (c >= 0x80) {
			n = pr_utf8_seq((const unsigned char *)P->p, (size_t)(P->end - P->p));
			if (!n) {
				fail_at(P, P->p, "invalid UTF-8 in string");
				return -1;
			}
			pr_buf_add(&P->scratch, P->p, n);
			P->p += n;
			continue;
		}
		/* backslash */
		if (P->end - P->p < 2) {
			fail_at(P, start, "unterminated string");
			return -1;
		}
		switch (P->p[1]) {
		case '"': pr_buf_addc(&P->scratch, '"'); break;
		case '\\': pr_buf_addc(&P->scratch, '\\'); break;
		case '/': pr_buf_addc(&P->scratch, '/'); break;
		case 'b': pr_buf_addc(&P->scratch, '\b'); break;
		case 'f': pr_buf_addc(&P->scratch, '\f'); break;
		case 'n': pr_buf_addc(&P->scratch, '\n'); break;
		case 'r': pr_buf_addc(&P->scratch, '\r'); break;
		case 't': pr_buf_addc(&P->scratch, '\t'); break;
		case 'u':
			if (P->end - P->p < 6 || hex4(P->p + 2, &cp) < 0) {
				fail_at(P, P->p, "bad \\u escape");
				return -1;
			}
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				fail_at(P, P->p, "unpaired surrogate in \\u escape");
				return -1;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (P->end - P->p < 12 || P->p[6] != '\\' || P->p[7] != 'u' ||
				    hex4(P->p + 8, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff) {
					fail_at(P, P->p, "unpaired surrogate in \\u escape");
					return -1;
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				P->p += 6;
			}
			if (cp == 0) {
				fail_at(P, P->p, "\\u0000 (NUL) in a string is not supported");
				return -1;
			}
			pr_buf_add(&P->scratch, enc, pr_utf8_encode(cp, enc));
			P->p += 4;
			break;
		default:
			fail_at(P, P->p, "bad escape '\\%c' in string", P->p[1]);
			return -1;
		}
		P->p += 2;
	}
}

/* Length of the number literal at s, or 0 if s does not start with one. */
static size_t
number_len(const char *s, const char *end)
{
	const char *p = s;

	if (p < end && *p == '-')
		p++;
	if (p >= end)
		return 0;
	if (*p == '0') {
		p++;
	} else if (*p >= '1' && *p <= '9') {
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	} else {
		return 0;
	}
	if (p < end && *p == '.') {
		p++;
		if (p >= end || *p < '0' || *p > '9')
			return 0;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || *p < '0' || *p > '9')
			return 0;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	return (size_t)(p - s);
}

bool
pr_json_number_valid(const char *s, size_t len)
{
	return len > 0 && number_len(s, s + len) == len;
}

static cJSON *
parse_number(struct parser *P)
{
	size_t n = number_len(P->p, P->end);
	const char *q;

	if (!n) {
		fail_at(P, P->p, "invalid number");
		return NULL;
	}
	q = P->p + n;
	/* "01" or "1x": the literal must end where a token can end. */
	if (q < P->end && (*q == '.' || *q == 'e' || *q == 'E' ||
	    (*q >= '0' && *q <= '9') || *q == '+' || *q == '-' ||
	    (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z'))) {
		fail_at(P, P->p, "invalid number");
		return NULL;
	}
	pr_buf_reset(&P->scratch);
	pr_buf_add(&P->scratch, P->p, n);
	P->p = q;
	return checked(cJSON_CreateRaw(P->scratch.data));
}

static int
literal(struct parser *P, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(P->end - P->p) >= n && memcmp(P->p, word, n) == 0) {
		P->p += n;
		return 0;
	}
	return -1;
}

static int
cmp_keys(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
check_duplicates(struct parser *P, const cJSON *obj, size_t count,
    size_t obj_line)
{
	const cJSON *c;
	char **keys;
	size_t i = 0;
	int rc = 0;

	if (count < 2)
		return 0;
	keys = pr_xmalloc(count * sizeof *keys);
	for (c = obj->child; c; c = c->next)
		keys[i++] = c->string;
	qsort(keys, count, sizeof *keys, cmp_keys);
	for (i = 1; i < count; i++) {
		if (strcmp(keys[i - 1], keys[i]) == 0) {
			fail_at(P, P->p, "duplicate key \"%.60s\" in the object that starts on line %zu",
			    keys[i], obj_line);
			rc = -1;
			break;
		}
	}
	free(keys);
	return rc;
}

static cJSON *
parse_object(struct parser *P)
{
	cJSON *obj = checked(cJSON_CreateObject()), *v;
	size_t count = 0, line = P->line;
	char *key;

	note_loc(P, obj);
	P->p++;
	skip_ws(P);
	if (P->p < P->end && *P->p == '}') {
		P->p++;
		return obj;
	}
	for (;;) {
		skip_ws(P);
		if (P->p >= P->end || *P->p != '"') {
			fail_at(P, P->p, "expected a string key in object");
			goto fail;
		}
		if (parse_string(P) < 0)
			goto fail;
		key = pr_xstrndup(P->scratch.data, P->scratch.len);
		skip_ws(P);
		if (P->p >= P->end || *P->p != ':') {
			free(key);
			fail_at(P, P->p, "expected ':' after object key");
			goto fail;
		}
		P->p++;
		v = parse_value(P);
		if (!v) {
			free(key);
			goto fail;
		}
		if (!cJSON_AddItemToObject(obj, key, v))
			pr_die(PR_EXIT_INFRA, "out of memory building JSON");
		free(key);
		count++;
		skip_ws(P);
		if (P->p < P->end && *P->p == ',') {
			P->p++;
			continue;
		}
		if (P->p < P->end && *P->p == '}') {
			P->p++;
			break;
		}
		fail_at(P, P->p, "expected ',' or '}' in object");
		goto fail;
	}
	if (check_duplicates(P, obj, count, line) < 0)
		goto fail;
	return obj;
fail:
	cJSON_Delete(obj);
	return NULL;
}

static cJSON *
parse_array(struct parser *P)
{
	cJSON *arr = checked(cJSON_CreateArray()), *v;

	note_loc(P, arr);
	P->p++;
	skip_ws(P);
	if (P->p < P->end && *P->p == ']') {
		P->p++;
		return arr;
	}
	for (;;) {
		v = parse_value(P);
		if (!v)
			goto fail;
		if (!cJSON_AddItemToArray(arr, v))
			pr_die(PR_EXIT_INFRA, "out of memory building JSON");
		skip_ws(P);
		if (P->p < P->end && *P->p == ',') {
			P->p++;
			continue;
		}
		if (P->p < P->end && *P->p == ']') {
			P->p++;
			return arr;
		}
		fail_at(P, P->p, "expected ',' or ']' in array");
		goto fail;
	}
fail:
	cJSON_Delete(arr);
	return NULL;
}

static cJSON *
parse_value(struct parser *P)
{
	cJSON *v;
	char c;

	skip_ws(P);
	if (P->p >= P->end) {
		fail_at(P, P->p, "unexpected end of input");
		return NULL;
	}
	c = *P->p;
	switch (c) {
	case '{':
	case '[':
		if (++P->depth > PR_JSON_MAX_DEPTH) {
			fail_at(P, P->p, "nested deeper than %d levels", PR_JSON_MAX_DEPTH);
			return NULL;
		}
		v = c == '{' ? parse_object(P) : parse_array(P);
		P->depth--;
		return v;
	case '"':
		if (parse_string(P) < 0)
			return NULL;
		return checked(cJSON_CreateString(P->scratch.data));
	case 't':
		if (literal(P, "true") == 0)
			return checked(cJSON_CreateTrue());
		break;
	case 'f':
		if (literal(P, "false") == 0)
			return checked(cJSON_CreateFalse());
		break;
	case 'n':
		if (literal(P, "null") == 0)
			return checked(cJSON_CreateNull());
		break;
	case '\0':
		fail_at(P, P->p, "NUL byte");
		return NULL;
	default:
		if (c == '-' || (c >= '0' && c <= '9'))
			return parse_number(P);
		break;
	}
	if ((unsigned char)c >= 0x80 &&
	    !pr_utf8_seq((const unsigned char *)P->p, (size_t)(P->end - P->p)))
		fail_at(P, P->p, "invalid UTF-8");
	else
		fail_at(P, P->p, "unexpected character '%c'", (unsigned char)c < 0x80 && c >= 0x20 ? c : '?');
	return NULL;
}

/* By address: a lookup per node of a big workflow must not scan them all
 * (200 000 nodes took a minute). */
static int
cmp_locs(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct pr_json_loc *)a)->node;
	uintptr_t y = (uintptr_t)((const struct pr_json_loc *)b)->node;

	return x < y ? -1 : x > y;
}

cJSON *
pr_json_parse(const char *text, size_t len, struct pr_json_error *err,
    struct pr_json_locs *locs)
{
	struct parser P = { 0 };
	cJSON *v;

	err->msg[0] = '\0';
	err->line = err->col = 0;
	P.p = P.line_start = text;
	P.end = text + len;
	P.line = 1;
	P.err = err;
	P.locs = locs;
	/* Editors on Windows add a BOM; RFC 8259 lets a parser ignore it. */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		P.p = P.line_start = text + 3;
	v = parse_value(&P);
	if (v) {
		skip_ws(&P);
		if (P.p < P.end) {
			fail_at(&P, P.p, "unexpected text after the JSON value");
			cJSON_Delete(v);
			v = NULL;
		}
	}
	pr_buf_free(&P.scratch);
	if (!v && locs)
		locs->n = 0;
	if (locs && locs->n > 1)
		qsort(locs->v, locs->n, sizeof *locs->v, cmp_locs);
	return v;
}

size_t
pr_json_line(const struct pr_json_locs *locs, const cJSON *node)
{
	struct pr_json_loc key = { node, 0 }, *found;

	if (!locs || !locs->n)
		return 0;
	found = bsearch(&key, locs->v, locs->n, sizeof *locs->v, cmp_locs);
	return found ? found->line : 0;
}

void
pr_json_locs_free(struct pr_json_locs *locs)
{
	free(locs->v);
	memset(locs, 0, sizeof *locs);
}

void
pr_json_write_string(struct pr_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;

	pr_buf_addc(b, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		const char *esc = NULL;

		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default:
			if (c >= 0x20)
				continue;
		}
		pr_buf_add(b, run, (size_t)(s - run));
		if (esc) {
			pr_buf_adds(b, esc);
		} else {
			char u[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };

			pr_buf_add(b, u, sizeof u);
		}
		run = s + 1;
	}
	pr_buf_add(b, run, (size_t)(s - run));
	pr_buf_addc(b, '"');
}

static void
newline_indent(struct pr_buf *b, int indent, int level)
{
	pr_buf_addc(b, '\n');
	for (int i = 0; i < indent * level; i++)
		pr_buf_addc(b, ' ');
}

static void
write_number(struct pr_buf *b, double d)
{
	/* Only numbers built with cJSON's own constructors get here. */
	if (!isfinite(d))
		pr_buf_adds(b, "null");
	else if (d == floor(d) && fabs(d) < 9007199254740992.0)
		pr_buf_printf(b, "%" PRId64, (int64_t)d);
	else
		pr_buf_printf(b, "%.17g", d);
}

static void
write_value(struct pr_buf *b, const cJSON *v, int indent, int level)
{
	const cJSON *c;

	switch (v->type & 0xff) {
	case cJSON_False: pr_buf_adds(b, "false"); return;
	case cJSON_True: pr_buf_adds(b, "true"); return;
	case cJSON_NULL: pr_buf_adds(b, "null"); return;
	case cJSON_Number: write_number(b, v->valuedouble); return;
	case cJSON_Raw: pr_buf_adds(b, v->valuestring ? v->valuestring : "null"); return;
	case cJSON_String: pr_json_write_string(b, v->valuestring ? v->valuestring : ""); return;
	case cJSON_Array:
	case cJSON_Object:
		break;
	default:
		pr_buf_adds(b, "null");
		return;
	}
	bool obj = cJSON_IsObject(v);

	pr_buf_addc(b, obj ? '{' : '[');
	for (c = v->child; c; c = c->next) {
		if (indent)
			newline_indent(b, indent, level + 1);
		if (obj) {
			pr_json_write_string(b, c->string ? c->string : "");
			pr_buf_adds(b, indent ? ": " : ":");
		}
		write_value(b, c, indent, level + 1);
		if (c->next)
			pr_buf_addc(b, ',');
	}
	if (indent && v->child)
		newline_indent(b, indent, level);
	pr_buf_addc(b, obj ? '}' : ']');
}

void
pr_json_write(struct pr_buf *b, const cJSON *v, int indent)
{
	write_value(b, v, indent, 0);
}

char *
pr_json_print(const cJSON *v, int indent)
{
	struct pr_buf b = PR_BUF_INIT;

	pr_json_write(&b, v, indent);
	return pr_buf_steal(&b);
}

cJSON *
pr_json_get(const cJSON *obj, const char *key)
{
	if (!cJSON_IsObject(obj))
		return NULL;
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

const char *
pr_json_get_string(const cJSON *obj, const char *key)
{
	const cJSON *v = pr_json_get(obj, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool
pr_json_is_number(const cJSON *v)
{
	return cJSON_IsNumber(v) || cJSON_IsRaw(v);
}

static int
integer_text(const cJSON *v)
{
	const char *s = v->valuestring;

	if (!s)
		return 0;
	if (*s == '-')
		s++;
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

int
pr_json_to_i64(const cJSON *v, int64_t *out)
{
	if (cJSON_IsRaw(v)) {
		char *end;
		long long x;

		if (!integer_text(v))
			return -1;
		errno = 0;
		x = strtoll(v->valuestring, &end, 10);
		if (errno || *end)
			return -1;
		*out = x;
		return 0;
	}
	if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
	    fabs(v->valuedouble) < 9007199254740992.0) {
		*out = (int64_t)v->valuedouble;
		return 0;
	}
	return -1;
}

int
pr_json_to_u64(const cJSON *v, uint64_t *out)
{
	if (cJSON_IsRaw(v)) {
		char *end;
		unsigned long long x;

		if (!integer_text(v) || v->valuestring[0] == '-')
			return -1;
		errno = 0;
		x = strtoull(v->valuestring, &end, 10);
		if (errno || *end)
			return -1;
		*out = x;
		return 0;
	}
	int64_t i;

	if (pr_json_to_i64(v, &i) < 0 || i < 0)
		return -1;
	*out = (uint64_t)i;
	return 0;
}

cJSON *
pr_json_int(int64_t v)
{
	char s[32];

	snprintf(s, sizeof s, "%" PRId64, v);
	return checked(cJSON_CreateRaw(s));
}

cJSON *
pr_json_uint(uint64_t v)
{
	char s[32];

	snprintf(s, sizeof s, "%" PRIu64, v);
	return checked(cJSON_CreateRaw(s));
}

cJSON *
pr_json_number_text(const char *text)
{
	return checked(cJSON_CreateRaw(text));
}

cJSON *
pr_json_object(void)
{
	return checked(cJSON_CreateObject());
}

cJSON *
pr_json_array(void)
{
	return checked(cJSON_CreateArray());
}

cJSON *
pr_json_string(const char *s)
{
	return checked(cJSON_CreateString(s));
}

cJSON *
pr_json_bool(bool b)
{
	return checked(cJSON_CreateBool(b));
}

cJSON *
pr_json_null(void)
{
	return checked(cJSON_CreateNull());
}

cJSON *
pr_json_copy(const cJSON *v)
{
	return checked(cJSON_Duplicate(v, 1));
}

void
pr_json_set_string(cJSON *obj, const char *key, const char *s)
{
	pr_json_set(obj, key, pr_json_string(s));
}

void
pr_json_set_int(cJSON *obj, const char *key, int64_t v)
{
	pr_json_set(obj, key, pr_json_int(v));
}

void
pr_json_set(cJSON *obj, const char *key, cJSON *v)
{
	if (cJSON_GetObjectItemCaseSensitive(obj, key)) {
		if (!cJSON_ReplaceItemInObjectCaseSensitive(obj, key, v))
			pr_die(PR_EXIT_INFRA, "out of memory building JSON");
	} else if (!cJSON_AddItemToObject(obj, key, v)) {
		pr_die(PR_EXIT_INFRA, "out of memory building JSON");
	}
}

const char *
pr_json_type_name(const cJSON *v)
{
	if (!v)
		return "nothing";
	switch (v->type & 0xff) {
	case cJSON_False:
	case cJSON_True: return "boolean";
	case cJSON_NULL: return "null";
	case cJSON_Number:
	case cJSON_Raw: return "number";
	case cJSON_String: return "string";
	case cJSON_Array: return "array";
	case cJSON_Object: return "object";
	}
	return "invalid value";
}

/* Recursive: a parsed value is at most PR_JSON_MAX_DEPTH deep. */
int
pr_json_depth(const cJSON *v)
{
	const cJSON *c;
	int d, max = 0;

	if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
		return 0;
	for (c = v->child; c; c = c->next)
		if ((d = pr_json_depth(c)) > max)
			max = d;
	return max + 1;
}

bool
pr_json_has_string(const cJSON *list, const char *s)
{
	const cJSON *c;

	for (c = cJSON_IsArray(list) ? list->child : NULL; c; c = c->next)
		if (cJSON_IsString(c) && strcmp(c->valuestring, s) == 0)
			return true;
	return false;
}

int
pr_json_to_double(const cJSON *v, double *out)
{
	char *end;

	if (cJSON_IsNumber(v)) {
		*out = v->valuedouble;
		return 0;
	}
	if (!cJSON_IsRaw(v) || !v->valuestring)
		return -1;
	/* Parsed numbers keep their text: read it in C locale form. */
	*out = strtod(v->valuestring, &end);
	return *end ? -1 : 0;
}
