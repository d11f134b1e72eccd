#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "err.h"
#include "hash.h"
#include "proc.h"

struct pr_sha256 {
	EVP_MD_CTX *ctx;
};

struct pr_sha256 *
pr_sha256_new(void)
{
	struct pr_sha256 *h = pr_xcalloc(1, sizeof *h);

	if (!(h->ctx = EVP_MD_CTX_new()) || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
		pr_die(PR_EXIT_INFRA, "cannot set up SHA-256");
	return h;
}

void
pr_sha256_add(struct pr_sha256 *h, const void *p, size_t n)
{
	if (EVP_DigestUpdate(h->ctx, p, n) != 1)
		pr_die(PR_EXIT_INFRA, "SHA-256 failed");
}

void
pr_sha256_done(struct pr_sha256 *h, char hex[PR_SHA256_HEX])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1)
		pr_die(PR_EXIT_INFRA, "SHA-256 failed");
	for (i = 0; i < n && i < 32; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[2 * i] = '\0';
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

int
pr_sha256_file(const char *path, char hex[PR_SHA256_HEX], long long *size)
{
	struct pr_sha256 *h;
	char buf[1 << 16];
	ssize_t n;
	long long total = 0;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	h = pr_sha256_new();
	while ((n = pr_read_full(fd, buf, sizeof buf)) > 0) {
		pr_sha256_add(h, buf, (size_t)n);
		total += n;
	}
	saved = errno;
	close(fd);
	pr_sha256_done(h, hex);
	if (n < 0) {
		errno = saved;
		return -1;
	}
	if (size)
		*size = total;
	return 0;
}
