/* SHA-256 (OpenSSL), for cache keys and file checks. */
#ifndef PR_HASH_H
#define PR_HASH_H

#include <stddef.h>

#define PR_SHA256_HEX 65

struct pr_sha256;

struct pr_sha256 *pr_sha256_new(void);
void pr_sha256_add(struct pr_sha256 *h, const void *p, size_t n);
/* Writes 64 hex digits and a NUL, and frees h. */
void pr_sha256_done(struct pr_sha256 *h, char hex[PR_SHA256_HEX]);

/* Of a file's content, read in pieces. 0, or -1 with errno. */
int pr_sha256_file(const char *path, char hex[PR_SHA256_HEX], long long *size);

#endif
