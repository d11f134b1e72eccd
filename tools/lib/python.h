/*
 * Values as Python prints them (python.c): ComfyUI's messages are Python
 * f-strings over str() and repr() of values, and aiohttp's bodies are
 * json.dumps. The validator and the ComfyUI stand-in use these to say
 * exactly what the real server says.
 */
#ifndef PR_PYTHON_H
#define PR_PYTHON_H

#include <stdbool.h>

#include "buf.h"
#include "json.h"

/*
 * A cJSON node seen as the Python value json.loads makes of it. Numbers
 * are raw text: an integer literal is a Python int, anything with a
 * fraction or exponent a float. Values this file makes are raw text in
 * json.dumps form, where a float always shows '.', 'e', "Infinity" or
 * "NaN", so the kind survives. A NULL pointer is None too (a linked input
 * as VALIDATE_INPUTS sees it).
 */
enum py_kind { PY_NONE, PY_BOOL, PY_INT, PY_FLOAT, PY_STR, PY_LIST, PY_DICT };

enum py_kind pr_py_kind(const cJSON *v);
/* type(v).__name__: "int", "str", "NoneType", ... */
const char *pr_py_type_name(const cJSON *v);
/* float(v) of a number. */
double pr_py_float_of(const cJSON *v);
/* The digits of an integer literal, or NULL. */
const char *pr_py_int_text(const cJSON *v);
/* A float as a raw number in json.dumps's spelling. */
cJSON *pr_py_json_float(double v);
/* repr() of a string: quotes and escapes as Python chooses them. */
void pr_py_repr_str(struct pr_buf *b, const char *s);
/* str(v) and repr(v), as new strings. */
char *pr_py_str(const cJSON *v);
char *pr_py_repr(const cJSON *v);
/* str(v) as a JSON string node. */
cJSON *pr_py_str_json(const cJSON *v);
/* json.dumps(json.loads(v)): numbers in Python's spelling. A new tree. */
cJSON *pr_py_json(const cJSON *v);
/* Python truthiness. */
bool pr_py_truthy(const cJSON *v);

/* repr() of a float: "1.0", "0.85", "1e+20". Appends to b. */
void pr_python_float(struct pr_buf *b, double v);
/* json.dumps(v) as aiohttp sends a body: ", " and ": " separators,
 * non-ASCII as \u escapes, raw numbers verbatim. Appends to b. */
void pr_python_json(struct pr_buf *b, const cJSON *v);

#endif
