#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crash.h"
#include "err.h"
#include "file.h"

int
pr_file_read(const char *path, size_t max, struct pr_buf *b)
{
	struct stat st;
	char chunk[65536];
	ssize_t n;
	int fd, saved;

	pr_buf_reset(b);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	/* Read to EOF instead of trusting st_size: the file may grow. */
	while ((n = read(fd, chunk, sizeof chunk)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (b->len + (size_t)n > max) {
			errno = EFBIG;
			goto fail;
		}
		pr_buf_add(b, chunk, (size_t)n);
	}
	if (!b->data)
		pr_buf_add(b, "", 0);
	close(fd);
	return 0;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int
pr_mkdirs(const char *dir)
{
	char *p, *s;
	int rc = 0;

	if (!*dir)
		return 0;
	s = pr_xstrdup(dir);
	for (p = s + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(s, 0777) < 0 && errno != EEXIST) {
				rc = -1;
				break;
			}
			*p = c;
			if (!c)
				break;
		}
	}
	if (rc == 0) {
		struct stat st;

		if (stat(dir, &st) < 0)
			rc = -1;
		else if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			rc = -1;
		}
	}
	free(s);
	return rc;
}

static int
write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Makes a rename in dir durable; best effort, as nothing can be undone. */
static void
sync_dir(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
}

int
pr_file_publish(const char *made, const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd = open(made, O_RDONLY | O_CLOEXEC), rc, saved;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	saved = errno;
	close(fd);
	if (rc < 0 || rename(made, path) < 0) {
		if (rc < 0)
			errno = saved;
		return -1;
	}
	dir = slash ? pr_xstrndup(path, (size_t)(slash - path + (slash == path))) : pr_xstrdup(".");
	sync_dir(dir);
	free(dir);
	return 0;
}

static int
write_atomic(const char *path, const void *data, size_t len, bool secret)
{
	const char *slash = strrchr(path, '/');
	char *dir, *tmp;
	mode_t mask;
	int fd, saved;

	dir = slash ? pr_xstrndup(path, (size_t)(slash - path)) : pr_xstrdup(".");
	if (slash && slash != path && pr_mkdirs(dir) < 0) {
		saved = errno;
		free(dir);
		errno = saved;
		return -1;
	}
	tmp = pr_xmalloc(strlen(path) + 16);
	sprintf(tmp, "%s.tmp.XXXXXX", path);
	if ((fd = mkstemp(tmp)) < 0)
		goto fail;
	/* mkstemp creates 0600; a state file should get the usual mode. */
	mask = umask(0);
	umask(mask);
	if ((!secret && fchmod(fd, 0666 & ~mask) < 0) || write_all(fd, data, len) < 0 ||
	    fsync(fd) < 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		goto fail;
	}
	pr_crash_point("write");
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		goto fail;
	}
	sync_dir(dir);
	free(tmp);
	free(dir);
	return 0;
fail:
	saved = errno;
	free(tmp);
	free(dir);
	errno = saved;
	return -1;
}

int
pr_file_write_atomic(const char *path, const void *data, size_t len)
{
	return write_atomic(path, data, len, false);
}

/* mkstemp's 0600 is kept: the file is never readable by others, not
 * even for a moment. */
int
pr_file_write_secret(const char *path, const void *data, size_t len)
{
	return write_atomic(path, data, len, true);
}

int
pr_file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Best effort: what cannot be removed stays, and the caller's next step
 * (creating files there) reports the real problem. Symbolic links are
 * removed, never followed. */
void
pr_empty_dir(const char *dir)
{
	struct dirent *de;
	struct stat st;
	char *path;
	DIR *d;

	if (!(d = opendir(dir)))
		return;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		path = pr_xasprintf("%s/%s", dir, de->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			pr_empty_dir(path);
			rmdir(path);
		} else {
			unlink(path);
		}
		free(path);
	}
	closedir(d);
}

const char *
pr_path_outside(const char *p)
{
	const char *s;
	size_t n;

	if (!*p)
		return "empty";
	if (p[0] == '/')
		return "absolute (paths are relative to --out)";
	if (p[strlen(p) - 1] == '/')
		return "ends with \"/\" (a folder, not a file)";
	for (s = p; *s; s += n + (s[n] == '/')) {
		n = strcspn(s, "/");
		if (n == 0)
			return "has an empty segment";
		if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return "has a \".\" or \"..\" segment";
	}
	return NULL;
}
