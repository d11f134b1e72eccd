/*
 * Exact JSON on top of cJSON's tree.
 *
 * cJSON stores numbers as doubles and prints them lossily (a ComfyUI seed
 * of 2^64-1 would come back as 1.8446744073709552e+19). So our own strict
 * parser builds the cJSON tree with every number kept as its literal text
 * in a cJSON_Raw node, and our own printer writes it back verbatim. Key
 * order and all Unicode are kept. Numbers created by the tools are raw
 * nodes too (pr_json_int and friends), so nothing is ever rounded.
 */
#ifndef PR_JSON_H
#define PR_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "buf.h"

/* Deeper documents are refused with a clear error instead of risking the
 * stack in the recursive walks of cJSON and our printer. */
#define PR_JSON_MAX_DEPTH 512

struct pr_json_error {
	size_t line;   /* 1-based, within the parsed text */
	size_t col;    /* 1-based byte column */
	char msg[192];
};

/* Where each object and array began, for messages that name a line.
 * Sorted by node once parsed, so a lookup stays cheap in a workflow of
 * 200 000 nodes. */
struct pr_json_loc {
	const cJSON *node;
	size_t line;
};

struct pr_json_locs {
	struct pr_json_loc *v;
	size_t n, cap;
};

/*
 * Parses exactly one JSON value filling all of text[0, len) (surrounding
 * whitespace allowed). Strict RFC 8259: no trailing garbage, no leading
 * zeros, valid UTF-8, no duplicate object keys, no NUL characters (C
 * strings cannot hold them). Returns NULL and fills *err on failure. When
 * locs is not NULL it receives the line of every object and array.
 */
cJSON *pr_json_parse(const char *text, size_t len, struct pr_json_error *err,
    struct pr_json_locs *locs);

size_t pr_json_line(const struct pr_json_locs *locs, const cJSON *node);
void pr_json_locs_free(struct pr_json_locs *locs);

/* Appends v to b: compact (indent 0) or pretty with that many spaces, in
 * the layout of JSON.stringify(v, null, indent), which is how ComfyUI
 * saves workflows. */
void pr_json_write(struct pr_buf *b, const cJSON *v, int indent);
/* Same, as a new string the caller frees. */
char *pr_json_print(const cJSON *v, int indent);

/* Appends s as a JSON string literal. */
void pr_json_write_string(struct pr_buf *b, const char *s);

/* Case-sensitive member lookup (cJSON_GetObjectItem ignores case). */
cJSON *pr_json_get(const cJSON *obj, const char *key);
/* The member's string value, or NULL when absent or not a string. */
const char *pr_json_get_string(const cJSON *obj, const char *key);

bool pr_json_is_number(const cJSON *v);
/* Exact integers: 0 on success, -1 if v is not an integer in range. */
int pr_json_to_i64(const cJSON *v, int64_t *out);
int pr_json_to_u64(const cJSON *v, uint64_t *out);
/* Any number, as a double (prices, rates: not identities). 0 or -1. */
int pr_json_to_double(const cJSON *v, double *out);

cJSON *pr_json_int(int64_t v);
cJSON *pr_json_uint(uint64_t v);
/* A number from its literal text, which must be valid JSON number text. */
cJSON *pr_json_number_text(const char *text);
/* Whether s is a JSON number literal. */
bool pr_json_number_valid(const char *s, size_t len);

/* Constructors that never return NULL: running out of memory ends the
 * program with status 3. */
cJSON *pr_json_object(void);
cJSON *pr_json_array(void);
cJSON *pr_json_string(const char *s);
cJSON *pr_json_bool(bool b);
cJSON *pr_json_null(void);
cJSON *pr_json_copy(const cJSON *v);
void pr_json_set_string(cJSON *obj, const char *key, const char *s);
void pr_json_set_int(cJSON *obj, const char *key, int64_t v);

/* Replaces (or adds) obj[key] with v, keeping the member's position. */
void pr_json_set(cJSON *obj, const char *key, cJSON *v);

/* Levels of nesting of v: 0 for a scalar, 1 for [] or {}, 2 for [[]]. */
int pr_json_depth(const cJSON *v);

/* Whether list (an array) holds the string s. */
bool pr_json_has_string(const cJSON *list, const char *s);

/* Short name of v's type for messages: "string", "number", ... */
const char *pr_json_type_name(const cJSON *v);

#endif
