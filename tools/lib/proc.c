/*
 * Child processes through posix_spawnp(): no shell, so argument vectors
 * reach the program byte for byte. Every descriptor we create is
 * close-on-exec from birth (pipe2, O_CLOEXEC), because the ComfyUI
 * stand-in spawns from several threads and a descriptor leaked into an
 * unrelated child would keep a pipe open and its reader waiting forever.
 */
/* pipe2(), O_TMPFILE, mkostemp() and posix_spawn_file_actions_addclosefrom_np()
 * are GNU/BSD extensions, not POSIX. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "proc.h"

extern char **environ;

ssize_t
pr_read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = read(fd, (char *)buf + got, n - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int
pr_write_full(int fd, const void *buf, size_t n)
{
	size_t done = 0;
	ssize_t r;

	while (done < n) {
		r = write(fd, (const char *)buf + done, n - done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)r;
	}
	return 0;
}

static void
close_keep_errno(int fd)
{
	int saved = errno;

	if (fd >= 0)
		close(fd);
	errno = saved;
}

/*
 * Our descriptors are kept off 0-2: in a caller running with a standard
 * stream closed, pipe() could hand out 1, and the child's dup2 of another
 * descriptor onto 1 would destroy it before its own turn came.
 */
static int
above_std(int fd)
{
	int hi;

	if (fd < 0 || fd > 2)
		return fd;
	hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close_keep_errno(fd);
	return hi;
}

static int
make_pipe(int p[2])
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	p[0] = above_std(p[0]);
	p[1] = above_std(p[1]);
	if (p[0] < 0 || p[1] < 0) {
		close_keep_errno(p[0]);
		close_keep_errno(p[1]);
		return -1;
	}
	return 0;
}

/*
 * The child's stderr goes to an unlinked temporary file rather than a pipe:
 * a pipe nobody drains while we stream frames through stdin (or read them
 * from stdout) would fill up after 64 KiB and stall the child and us with
 * it. The file vanishes with its last descriptor.
 */
static int
err_file(void)
{
	const char *dir = getenv("TMPDIR");
	struct pr_buf tmpl = PR_BUF_INIT;
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
#ifdef O_TMPFILE
	if ((fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) >= 0)
		return above_std(fd);
#endif
	/* Kernels or file systems without O_TMPFILE: create, then unlink. */
	pr_buf_printf(&tmpl, "%s/pr-stderr.XXXXXX", dir);
	if ((fd = mkostemp(tmpl.data, O_CLOEXEC)) >= 0)
		unlink(tmpl.data);
	pr_buf_free(&tmpl);
	return above_std(fd);
}

/* The last PR_CHILD_ERR_MAX bytes written to the stderr file. */
static void
err_tail(int fd, struct pr_buf *err)
{
	char chunk[PR_CHILD_ERR_MAX];
	struct stat st;
	off_t off;
	ssize_t r;
	size_t got = 0;

	pr_buf_reset(err);
	pr_buf_add(err, "", 0);
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= 0)
		return;
	off = st.st_size > PR_CHILD_ERR_MAX ? st.st_size - PR_CHILD_ERR_MAX : 0;
	while (got < sizeof chunk) {
		r = pread(fd, chunk + got, sizeof chunk - got, off + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	pr_buf_add(err, chunk, got);
}

/*
 * Starts argv with the given descriptors as its stdin and stdout (-1:
 * /dev/null) and stderr (-1: /dev/null). Returns 0 or an errno value.
 */
static int
spawn(char *const argv[], int in_fd, int out_fd, int err_fd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, def;
	int rc;

	if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
		return rc;
	if ((rc = posix_spawnattr_init(&attr)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return rc;
	}
	/* dup2 onto 0-2 clears close-on-exec on the copies only. */
	if (in_fd >= 0)
		rc = posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	else
		rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (rc == 0) {
		if (out_fd >= 0)
			rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
		else
			rc = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	}
	if (rc == 0) {
		if (err_fd >= 0)
			rc = posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
		else
			rc = posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	}
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	/* Belt and braces for descriptors opened elsewhere without O_CLOEXEC
	 * (libraries, inherited ones): the child gets exactly 0, 1 and 2. */
	if (rc == 0)
		rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
	/*
	 * pr_init() ignores SIGPIPE, and an ignored signal stays ignored across
	 * exec: give the child the default back, so one whose reader went away
	 * dies of SIGPIPE as it would from a shell instead of maybe spinning on
	 * EPIPE. Also an empty signal mask, whatever the spawning thread blocks.
	 */
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	if (rc == 0)
		rc = posix_spawnattr_setsigmask(&attr, &none);
	if (rc == 0)
		rc = posix_spawnattr_setsigdefault(&attr, &def);
	if (rc == 0)
		rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	if (rc == 0)
		rc = posix_spawnp(pid, argv[0], &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

/* Waits for pid: its exit status 0-255, 128 + signal, or -1 with errno. */
static int
wait_child(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

int
pr_child_start(char *const argv[], enum pr_pipe dir, struct pr_child *c)
{
	int p[2], efd, rc;

	c->pid = -1;
	c->fd = -1;
	c->err_fd = -1;
	if ((efd = err_file()) < 0)
		return -1;
	if (make_pipe(p) < 0) {
		close_keep_errno(efd);
		return -1;
	}
	if (dir == PR_PIPE_TO_CHILD)
		rc = spawn(argv, p[0], -1, efd, &c->pid);
	else
		rc = spawn(argv, -1, p[1], efd, &c->pid);
	/* Our copy of the child's end goes, so EOF and EPIPE work. */
	close(dir == PR_PIPE_TO_CHILD ? p[0] : p[1]);
	if (rc != 0) {
		close(dir == PR_PIPE_TO_CHILD ? p[1] : p[0]);
		close(efd);
		c->pid = -1;
		errno = rc;
		return -1;
	}
	c->fd = dir == PR_PIPE_TO_CHILD ? p[1] : p[0];
	c->err_fd = efd;
	return 0;
}

int
pr_child_finish(struct pr_child *c, struct pr_buf *err)
{
	int status, saved;

	/* Closing first: a child still reading its stdin sees EOF, one still
	 * writing its stdout gets SIGPIPE; either way the wait ends. */
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	status = c->pid > 0 ? wait_child(c->pid) : (errno = ECHILD, -1);
	saved = errno;
	c->pid = -1;
	if (err)
		err_tail(c->err_fd, err);
	if (c->err_fd >= 0)
		close(c->err_fd);
	c->err_fd = -1;
	errno = saved;
	return status;
}

int
pr_run(char *const argv[], struct pr_buf *out, size_t out_max, struct pr_buf *err)
{
	char chunk[65536];
	int p[2] = { -1, -1 }, efd = -1, rc, status;
	size_t got = 0;
	ssize_t r;
	pid_t pid;

	if (err && (efd = err_file()) < 0)
		return -1;
	if (out && make_pipe(p) < 0) {
		close_keep_errno(efd);
		return -1;
	}
	rc = spawn(argv, -1, p[1], efd, &pid);
	close_keep_errno(p[1]);
	if (rc != 0) {
		close_keep_errno(p[0]);
		close_keep_errno(efd);
		errno = rc;
		return -1;
	}
	if (out)
		pr_buf_add(out, "", 0);
	while (out) {
		r = read(p[0], chunk, sizeof chunk);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			break;
		if (r < 0 || (size_t)r > out_max - got) {
			/* Too much (or unreadable): stop the child rather than
			 * let it fill memory or block on a pipe nobody reads. */
			int e = r < 0 ? errno : E2BIG;

			kill(pid, SIGKILL);
			close(p[0]);
			wait_child(pid);
			if (err)
				err_tail(efd, err);
			close_keep_errno(efd);
			errno = e;
			return -1;
		}
		pr_buf_add(out, chunk, (size_t)r);
		got += (size_t)r;
	}
	close_keep_errno(p[0]);
	status = wait_child(pid);
	if (err)
		err_tail(efd, err);
	close_keep_errno(efd);
	return status;
}
