/*
 * Values as Python prints them: ComfyUI's error messages are Python
 * f-strings and str()/repr() of values, and aiohttp sends bodies made by
 * json.dumps. Matching them byte for byte is what lets the stand-in answer
 * like the real server and the validator say what ComfyUI says.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "json.h"
#include "python.h"
#include "utf8.h"



enum py_kind
pr_py_kind(const cJSON *v)
{
	if (!v || cJSON_IsNull(v))
		return PY_NONE;
	if (cJSON_IsBool(v))
		return PY_BOOL;
	if (cJSON_IsRaw(v))
		return v->valuestring && !strpbrk(v->valuestring, ".eEIN") ? PY_INT : PY_FLOAT;
	if (cJSON_IsNumber(v))
		return PY_FLOAT;
	if (cJSON_IsString(v))
		return PY_STR;
	if (cJSON_IsArray(v))
		return PY_LIST;
	return PY_DICT;
}

const char *
pr_py_type_name(const cJSON *v)
{
	static const char *const names[] = { "NoneType", "bool", "int", "float", "str", "list", "dict" };

	return names[pr_py_kind(v)];
}

double
pr_py_float_of(const cJSON *v)
{
	const char *s;

	if (cJSON_IsNumber(v))
		return v->valuedouble;
	s = v->valuestring;
	if (strcmp(s, "Infinity") == 0)
		return INFINITY;
	if (strcmp(s, "-Infinity") == 0)
		return -INFINITY;
	if (strcmp(s, "NaN") == 0)
		return NAN;
	return strtod(s, NULL);
}

/* An int's digits: JSON writes zero as "0" or "-0", Python as "0". */
const char *
pr_py_int_text(const cJSON *v)
{
	return strcmp(v->valuestring, "-0") == 0 ? "0" : v->valuestring;
}

/* Shortest digits that read back as v (v finite and > 0), as Python's
 * repr finds them; value = 0.DIGITS x 10^decpt. */
static void
float_digits(double v, char digits[20], int *decpt)
{
	char tmp[40];
	char *p, *e;
	size_t n = 0;

	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	e = strchr(tmp, 'e');
	for (p = tmp; p < e; p++)
		if (*p != '.')
			digits[n++] = *p;
	while (n > 1 && digits[n - 1] == '0')
		n--;
	digits[n] = '\0';
	*decpt = atoi(e + 1) + 1;
}

void
pr_python_float(struct pr_buf *b, double v)
{
	char digits[20];
	int decpt, n;

	if (isnan(v)) {
		pr_buf_adds(b, "nan");
		return;
	}
	if (signbit(v)) {
		pr_buf_addc(b, '-');
		v = -v;
	}
	if (isinf(v)) {
		pr_buf_adds(b, "inf");
		return;
	}
	if (v == 0) {
		pr_buf_adds(b, "0.0");
		return;
	}
	float_digits(v, digits, &decpt);
	n = (int)strlen(digits);
	/* float_repr_style 'short': exponent form outside 1e-4 <= |v| < 1e16 */
	if (decpt <= -4 || decpt > 16) {
		pr_buf_addc(b, digits[0]);
		if (n > 1) {
			pr_buf_addc(b, '.');
			pr_buf_adds(b, digits + 1);
		}
		pr_buf_printf(b, "e%c%02d", decpt - 1 < 0 ? '-' : '+', abs(decpt - 1));
	} else if (decpt <= 0) {
		pr_buf_adds(b, "0.");
		for (int i = 0; i < -decpt; i++)
			pr_buf_addc(b, '0');
		pr_buf_adds(b, digits);
	} else if (decpt >= n) {
		pr_buf_adds(b, digits);
		for (int i = n; i < decpt; i++)
			pr_buf_addc(b, '0');
		pr_buf_adds(b, ".0");
	} else {
		pr_buf_add(b, digits, (size_t)decpt);
		pr_buf_addc(b, '.');
		pr_buf_adds(b, digits + decpt);
	}
}

/* json.dumps of a float: repr, except the non-finite ones. */
cJSON *
pr_py_json_float(double v)
{
	struct pr_buf b = PR_BUF_INIT;
	cJSON *r;

	if (isnan(v))
		pr_buf_adds(&b, "NaN");
	else if (isinf(v))
		pr_buf_adds(&b, v < 0 ? "-Infinity" : "Infinity");
	else
		pr_python_float(&b, v);
	/* Not JSON text for the non-finite ones, but what Python sends. */
	r = pr_json_number_text(b.data);
	pr_buf_free(&b);
	return r;
}


/* str.isprintable() for one character: what repr() leaves unescaped.
 * Covers the control, format, separator and private-use characters;
 * unassigned code points count as printable here (Python escapes them). */
static bool
py_printable(uint32_t c)
{
	if (c < 0x20 || c == 0x7f)
		return false;
	if (c < 0x7f)
		return true;
	if (c < 0xa0)
		return false;
	switch (c) {
	case 0xa0: case 0xad: case 0x61c: case 0x6dd: case 0x70f: case 0x1680:
	case 0x180e: case 0x2028: case 0x2029: case 0x202f: case 0x205f:
	case 0x3000: case 0xfeff:
		return false;
	}
	if ((c >= 0x600 && c <= 0x605) || (c >= 0x2000 && c <= 0x200f) ||
	    (c >= 0x202a && c <= 0x202e) || (c >= 0x2060 && c <= 0x206f) ||
	    (c >= 0xd800 && c <= 0xf8ff) || (c >= 0xfff9 && c <= 0xfffb) ||
	    (c & 0xfffe) == 0xfffe || (c >= 0xe0000 && c <= 0xe007f) || c >= 0xf0000)
		return false;
	return true;
}

/* repr() of a str: single quotes unless the text has one and no double. */
void
pr_py_repr_str(struct pr_buf *b, const char *s)
{
	char q = strchr(s, '\'') && !strchr(s, '"') ? '"' : '\'';

	pr_buf_addc(b, q);
	while (*s) {
		const char *start = s;
		uint32_t c = pr_utf8_next(&s);

		if (c == (uint32_t)q || c == '\\') {
			pr_buf_addc(b, '\\');
			pr_buf_addc(b, (char)c);
		} else if (c == '\t') {
			pr_buf_adds(b, "\\t");
		} else if (c == '\n') {
			pr_buf_adds(b, "\\n");
		} else if (c == '\r') {
			pr_buf_adds(b, "\\r");
		} else if (py_printable(c)) {
			pr_buf_add(b, start, (size_t)(s - start));
		} else if (c <= 0xff) {
			pr_buf_printf(b, "\\x%02x", (unsigned)c);
		} else if (c <= 0xffff) {
			pr_buf_printf(b, "\\u%04x", (unsigned)c);
		} else {
			pr_buf_printf(b, "\\U%08x", (unsigned)c);
		}
	}
	pr_buf_addc(b, q);
}

/* str(v), or repr(v) when repr is set; they differ only for a str. */
static void
py_write(struct pr_buf *b, const cJSON *v, bool repr)
{
	const cJSON *c;

	switch (pr_py_kind(v)) {
	case PY_NONE: pr_buf_adds(b, "None"); return;
	case PY_BOOL: pr_buf_adds(b, cJSON_IsTrue(v) ? "True" : "False"); return;
	case PY_INT: pr_buf_adds(b, pr_py_int_text(v)); return;
	case PY_FLOAT: pr_python_float(b, pr_py_float_of(v)); return;
	case PY_STR:
		if (repr)
			pr_py_repr_str(b, v->valuestring);
		else
			pr_buf_adds(b, v->valuestring);
		return;
	case PY_LIST:
		pr_buf_addc(b, '[');
		for (c = v->child; c; c = c->next) {
			py_write(b, c, true);
			if (c->next)
				pr_buf_adds(b, ", ");
		}
		pr_buf_addc(b, ']');
		return;
	case PY_DICT:
		pr_buf_addc(b, '{');
		for (c = v->child; c; c = c->next) {
			pr_py_repr_str(b, c->string ? c->string : "");
			pr_buf_adds(b, ": ");
			py_write(b, c, true);
			if (c->next)
				pr_buf_adds(b, ", ");
		}
		pr_buf_addc(b, '}');
		return;
	}
}

char *
pr_py_str(const cJSON *v)
{
	struct pr_buf b = PR_BUF_INIT;

	py_write(&b, v, false);
	return pr_buf_steal(&b);
}

/* str(v) as a JSON string: what str() makes of an input. */
cJSON *
pr_py_str_json(const cJSON *v)
{
	char *s = pr_py_str(v);
	cJSON *r = pr_json_string(s);

	free(s);
	return r;
}

char *
pr_py_repr(const cJSON *v)
{
	struct pr_buf b = PR_BUF_INIT;

	py_write(&b, v, true);
	return pr_buf_steal(&b);
}

/* json.dumps(json.loads(v)): numbers in Python's spelling ("-0" -> "0",
 * "1E5" -> "100000.0", "1e999" -> "Infinity"). A new tree. */
cJSON *
pr_py_json(const cJSON *v)
{
	cJSON *r;
	const cJSON *c;

	switch (pr_py_kind(v)) {
	case PY_NONE: return pr_json_null();
	case PY_BOOL: return pr_json_bool(cJSON_IsTrue(v));
	case PY_INT: return pr_json_number_text(pr_py_int_text(v));
	case PY_FLOAT: return pr_py_json_float(pr_py_float_of(v));
	case PY_STR: return pr_json_string(v->valuestring);
	case PY_LIST:
		r = pr_json_array();
		for (c = v->child; c; c = c->next)
			cJSON_AddItemToArray(r, pr_py_json(c));
		return r;
	case PY_DICT:
		r = pr_json_object();
		for (c = v->child; c; c = c->next)
			pr_json_set(r, c->string ? c->string : "", pr_py_json(c));
		return r;
	}
	return pr_json_null();
}

/* Python truthiness, for the VALIDATE_INPUTS rules that test "not x". */
bool
pr_py_truthy(const cJSON *v)
{
	switch (pr_py_kind(v)) {
	case PY_NONE: return false;
	case PY_BOOL: return cJSON_IsTrue(v);
	case PY_INT: return strcmp(pr_py_int_text(v), "0") != 0;
	case PY_FLOAT: return pr_py_float_of(v) != 0;
	case PY_STR: return v->valuestring[0] != '\0';
	case PY_LIST:
	case PY_DICT: return v->child != NULL;
	}
	return false;
}


/* ------------------------------------------------- json.dumps(body) */

/* json.dumps with its defaults, as aiohttp's json_response sends a body:
 * ", " and ": " separators, non-ASCII as \u escapes. */
void
pr_python_json(struct pr_buf *b, const cJSON *v)
{
	const cJSON *c;

	switch (v->type & 0xff) {
	case cJSON_False: pr_buf_adds(b, "false"); return;
	case cJSON_True: pr_buf_adds(b, "true"); return;
	case cJSON_NULL: pr_buf_adds(b, "null"); return;
	case cJSON_Raw: pr_buf_adds(b, v->valuestring); return;
	case cJSON_Number: {
		cJSON *f = pr_py_json_float(v->valuedouble);

		pr_buf_adds(b, f->valuestring);
		cJSON_Delete(f);
		return;
	}
	case cJSON_String: {
		const char *s = v->valuestring;

		pr_buf_addc(b, '"');
		while (*s) {
			uint32_t u = pr_utf8_next(&s);

			switch (u) {
			case '"': pr_buf_adds(b, "\\\""); break;
			case '\\': pr_buf_adds(b, "\\\\"); break;
			case '\n': pr_buf_adds(b, "\\n"); break;
			case '\r': pr_buf_adds(b, "\\r"); break;
			case '\t': pr_buf_adds(b, "\\t"); break;
			case '\b': pr_buf_adds(b, "\\b"); break;
			case '\f': pr_buf_adds(b, "\\f"); break;
			default:
				if (u >= 0x20 && u < 0x7f)
					pr_buf_addc(b, (char)u);
				else if (u <= 0xffff)
					pr_buf_printf(b, "\\u%04x", (unsigned)u);
				else
					pr_buf_printf(b, "\\u%04x\\u%04x", (unsigned)(0xd800 + ((u - 0x10000) >> 10)),
					    (unsigned)(0xdc00 + ((u - 0x10000) & 0x3ff)));
			}
		}
		pr_buf_addc(b, '"');
		return;
	}
	case cJSON_Array:
		pr_buf_addc(b, '[');
		for (c = v->child; c; c = c->next) {
			pr_python_json(b, c);
			if (c->next)
				pr_buf_adds(b, ", ");
		}
		pr_buf_addc(b, ']');
		return;
	case cJSON_Object:
		pr_buf_addc(b, '{');
		for (c = v->child; c; c = c->next) {
			cJSON key = { 0 };

			key.type = cJSON_String;
			key.valuestring = c->string ? c->string : (char *)"";
			pr_python_json(b, &key);
			pr_buf_adds(b, ": ");
			pr_python_json(b, c);
			if (c->next)
				pr_buf_adds(b, ", ");
		}
		pr_buf_addc(b, '}');
		return;
	}
	pr_buf_adds(b, "null");
}
