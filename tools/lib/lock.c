#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "err.h"
#include "file.h"
#include "lock.h"
#include "proc.h"

int
pr_lock_state(const char *dir, char *err, size_t errlen)
{
	char *path = pr_xasprintf("%s/lock", dir), pid[32] = "";
	int fd;
	ssize_t n;

	if (pr_mkdirs(dir) < 0 ||
	    (fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		n = pread(fd, pid, sizeof pid - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		if (e == EWOULDBLOCK)
			snprintf(err, errlen, "%s: held by pid %s: another run is using this state",
			    path, *pid ? pid : "?");
		else
			snprintf(err, errlen, "%s: %s", path, strerror(e));
		close(fd);
		free(path);
		return -1;
	}
	snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, strlen(pid), 0) < 0) {
		/* The flock is what counts; the pid is only for messages. */
	}
	free(path);
	return fd;
}
