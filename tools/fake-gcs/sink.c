/*
 * Upload bytes on their way to disk, and their checksums: a temporary file
 * under ROOT/.tmp fed piece by piece (never the whole body in memory),
 * with CRC-32C and MD5 computed on the way, as GCS keeps them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base64.h"
#include "crc32c.h"
#include "fake.h"

static int
write_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	ssize_t k;

	while (n > 0) {
		k = write(fd, s, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		s += k;
		n -= (size_t)k;
	}
	return 0;
}

static EVP_MD_CTX *
md5_new(void)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();

	if (!m || EVP_DigestInit_ex(m, EVP_md5(), NULL) != 1)
		pr_die(PR_EXIT_INFRA, "cannot set up MD5");
	return m;
}

static void
md5_end(EVP_MD_CTX *m, unsigned char md5[16])
{
	unsigned char out[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(m, out, &n) != 1 || n != 16)
		pr_die(PR_EXIT_INFRA, "MD5 failed");
	memcpy(md5, out, 16);
	EVP_MD_CTX_free(m);
}

int
sink_open(struct sink *s)
{
	memset(s, 0, sizeof *s);
	s->path = pr_xasprintf("%s/.tmp/upload.XXXXXX", S.set.root);
	if ((s->fd = mkstemp(s->path)) < 0) {
		free(s->path);
		s->path = NULL;
		return -1;
	}
	/* Objects are files anyone may read, as they would be after cp. */
	fchmod(s->fd, 0644);
	s->md5 = md5_new();
	return 0;
}

int
sink_write(struct sink *s, const void *p, size_t n)
{
	if (write_all(s->fd, p, n) < 0)
		return -1;
	s->crc = pr_crc32c(s->crc, p, n);
	if (EVP_DigestUpdate(s->md5, p, n) != 1)
		pr_die(PR_EXIT_INFRA, "MD5 failed");
	s->size += (long long)n;
	return 0;
}

void
sink_close(struct sink *s, uint32_t *crc, unsigned char md5[16])
{
	close(s->fd);
	s->fd = -1;
	*crc = s->crc;
	md5_end(s->md5, md5);
	s->md5 = NULL;
}

void
sink_drop(struct sink *s)
{
	if (s->fd >= 0)
		close(s->fd);
	if (s->path)
		unlink(s->path);
	free(s->path);
	if (s->md5)
		EVP_MD_CTX_free(s->md5);
	memset(s, 0, sizeof *s);
	s->fd = -1;
}

int
digest_file(const char *path, uint32_t *crc, unsigned char md5[16], long long *size)
{
	unsigned char *buf = pr_xmalloc(1 << 16);
	EVP_MD_CTX *m;
	uint32_t c = 0;
	long long total = 0;
	ssize_t k;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		free(buf);
		return -1;
	}
	m = md5_new();
	while ((k = read(fd, buf, 1 << 16)) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			EVP_MD_CTX_free(m);
			close(fd);
			free(buf);
			return -1;
		}
		c = pr_crc32c(c, buf, (size_t)k);
		EVP_DigestUpdate(m, buf, (size_t)k);
		total += k;
	}
	close(fd);
	free(buf);
	md5_end(m, md5);
	*crc = c;
	if (size)
		*size = total;
	return 0;
}

int
corrupt_file(const char *path, long long size)
{
	unsigned char ch;
	int fd, rc = -1;

	if (size <= 0 || (fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
		return -1;
	if (pread(fd, &ch, 1, (off_t)(size / 2)) == 1) {
		ch ^= 0xff;
		if (pwrite(fd, &ch, 1, (off_t)(size / 2)) == 1)
			rc = 0;
	}
	close(fd);
	return rc;
}

void
md5_base64(const unsigned char md5[16], char out[25])
{
	pr_base64_encode(md5, 16, out, false);
}

/* Exactly n bytes of standard base64, or -1. */
static int
decode_exact(const char *s, unsigned char *out, size_t n)
{
	unsigned char tmp[32];
	size_t len = strlen(s);

	if (len != PR_BASE64_LEN(n) - 1 || pr_base64_decode(s, len, tmp) != (long)n ||
	    strpbrk(s, "-_"))
		return -1;
	memcpy(out, tmp, n);
	return 0;
}

int
hash_format(const char *want_crc, const char *want_md5, struct fail *f)
{
	unsigned char got[16];

	if (want_crc && decode_exact(want_crc, got, 4) < 0) {
		fail_set(f, 400, "invalid", "Invalid crc32c: \"%s\" is not base64 of 4 bytes.",
		    want_crc);
		return -1;
	}
	if (want_md5 && decode_exact(want_md5, got, 16) < 0) {
		fail_set(f, 400, "invalid", "Invalid md5Hash: \"%s\" is not base64 of 16 bytes.",
		    want_md5);
		return -1;
	}
	return 0;
}

int
check_hashes(const char *want_crc, const char *want_md5, uint32_t crc,
    const unsigned char md5[16], struct fail *f)
{
	unsigned char got[16], be[4] = {
		(unsigned char)(crc >> 24), (unsigned char)(crc >> 16),
		(unsigned char)(crc >> 8), (unsigned char)crc,
	};
	char have[25];

	if (hash_format(want_crc, want_md5, f) < 0)
		return -1;
	if (want_crc && (decode_exact(want_crc, got, 4), memcmp(got, be, 4) != 0)) {
		pr_crc32c_base64(crc, have);
		fail_set(f, 400, "invalid",
		    "Provided CRC32C \"%s\" doesn't match calculated CRC32C \"%s\".",
		    want_crc, have);
		return -1;
	}
	if (want_md5 && (decode_exact(want_md5, got, 16), memcmp(got, md5, 16) != 0)) {
		md5_base64(md5, have);
		fail_set(f, 400, "invalid",
		    "Provided MD5 hash \"%s\" doesn't match calculated MD5 hash \"%s\".",
		    want_md5, have);
		return -1;
	}
	return 0;
}
