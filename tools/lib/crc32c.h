/*
 * CRC-32C (Castagnoli), the checksum Google Cloud Storage keeps for every
 * object: the object's "crc32c" field is the base64 of the 4 bytes, big
 * endian.
 */
#ifndef PR_CRC32C_H
#define PR_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Start with crc = 0; feed the pieces in order. */
uint32_t pr_crc32c(uint32_t crc, const void *p, size_t n);

/* Of a file's content, read in pieces. 0, or -1 with errno. */
int pr_crc32c_file(const char *path, uint32_t *crc, long long *size);

/* The GCS form: base64 of the big-endian bytes, 8 characters and a NUL. */
void pr_crc32c_base64(uint32_t crc, char out[9]);

#endif
