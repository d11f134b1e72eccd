#ifndef PR_UTF8_H
#define PR_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if the bytes there
 * are not valid UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
size_t pr_utf8_seq(const unsigned char *s, size_t avail);

/* Offset of the first invalid byte, or len when all of s is valid. */
size_t pr_utf8_check(const char *s, size_t len);

/* The code point at *p, which must be valid UTF-8 (checked before);
 * advances *p past it. */
uint32_t pr_utf8_next(const char **p);

/* Encodes code point cp (valid, not a surrogate) into out; returns length. */
size_t pr_utf8_encode(unsigned long cp, char out[4]);

#endif
