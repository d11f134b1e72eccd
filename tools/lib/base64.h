/* Base64 (RFC 4648): the standard alphabet with padding, for GCS's crc32c
 * and md5Hash; the URL alphabet without padding, for JWTs. */
#ifndef PR_BASE64_H
#define PR_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/* Characters pr_base64_encode writes for n bytes, with its NUL. */
#define PR_BASE64_LEN(n) (((n) + 2) / 3 * 4 + 1)

/* Writes the encoding and a NUL into out (PR_BASE64_LEN(n) bytes);
 * returns its length. url: '-' '_' and no '=' padding. */
size_t pr_base64_encode(const void *p, size_t n, char *out, bool url);

/* Decodes either alphabet, padding optional, into out (at least
 * len / 4 * 3 + 3 bytes); returns the byte count, or -1 on a character
 * outside the alphabet or a bad length. */
long pr_base64_decode(const char *s, size_t len, void *out);

#endif
