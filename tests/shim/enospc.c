/*
 * A full disk for one program, by LD_PRELOAD: containers refuse the tmpfs
 * mounts a real full filesystem would need. With PR_ENOSPC_DIR set, writes
 * to regular files under that directory by the programs named in
 * PR_ENOSPC_PROGS (comma-separated; unset: every program) fail with
 * ENOSPC once PR_ENOSPC_AFTER bytes (default 0) went to such files, as
 * they would on a disk that just filled up. Calls inside libc (stdio's own
 * writes) are not seen; our tools and ffmpeg write with write(2).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static long long written;

static int
named(const char *progs)
{
	const char *me = program_invocation_short_name, *p = progs;
	size_t len = strlen(me);

	while (p && *p) {
		if (strncmp(p, me, len) == 0 && (p[len] == ',' || p[len] == '\0'))
			return 1;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return 0;
}

/* Whether n more bytes to fd find the disk full. */
static int
full(int fd, size_t n)
{
	const char *dir = getenv("PR_ENOSPC_DIR"), *progs = getenv("PR_ENOSPC_PROGS");
	const char *after = getenv("PR_ENOSPC_AFTER");
	char link[64], path[PATH_MAX];
	struct stat st;
	ssize_t len;
	size_t dlen;

	if (!dir || !*dir || (progs && *progs && !named(progs)))
		return 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	if ((len = readlink(link, path, sizeof path - 1)) < 0)
		return 0;
	path[len] = '\0';
	dlen = strlen(dir);
	if (strncmp(path, dir, dlen) != 0 || (path[dlen] != '/' && path[dlen] != '\0'))
		return 0;
	if (written + (long long)n > (after ? atoll(after) : 0))
		return 1;
	written += (long long)n;
	return 0;
}

typedef ssize_t write_fn(int, const void *, size_t);
typedef ssize_t pwrite_fn(int, const void *, size_t, off_t);
typedef ssize_t pwrite64_fn(int, const void *, size_t, off64_t);
typedef ssize_t writev_fn(int, const struct iovec *, int);

/* The libc function the shim stands in front of. */
#define NEXT(name, type) \
	static type *real; \
	if (!real) \
		*(void **)&real = dlsym(RTLD_NEXT, name)

ssize_t
write(int fd, const void *p, size_t n)
{
	NEXT("write", write_fn);
	if (n && full(fd, n)) {
		errno = ENOSPC;
		return -1;
	}
	return real(fd, p, n);
}

ssize_t
pwrite(int fd, const void *p, size_t n, off_t off)
{
	NEXT("pwrite", pwrite_fn);
	if (n && full(fd, n)) {
		errno = ENOSPC;
		return -1;
	}
	return real(fd, p, n, off);
}

ssize_t
pwrite64(int fd, const void *p, size_t n, off64_t off)
{
	NEXT("pwrite64", pwrite64_fn);
	if (n && full(fd, n)) {
		errno = ENOSPC;
		return -1;
	}
	return real(fd, p, n, off);
}

ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
	size_t n = 0;
	int i;

	NEXT("writev", writev_fn);
	for (i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	if (n && full(fd, n)) {
		errno = ENOSPC;
		return -1;
	}
	return real(fd, iov, cnt);
}
