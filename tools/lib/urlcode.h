/*
 * Percent-encoding as the stand-ins meet it in request targets, and
 * hiding a credential carried in a query before a target is logged.
 */
#ifndef PR_URLCODE_H
#define PR_URLCODE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* n bytes of s with %XX decoded ('+' is a space when plus); NULL when a
 * % is malformed or decodes to a NUL. The caller frees it. */
char *pr_pct_decode(const char *s, size_t n, bool plus);
/* Appends s with everything but unreserved characters as %XX. */
void pr_pct_encode(struct pr_buf *b, const char *s);
/* target with the value of every parameter called name (right after a
 * '?' or '&') replaced by an ellipsis: for logs, when the value is a
 * credential. The caller frees it. */
char *pr_redact_query(const char *target, const char *name);

#endif
