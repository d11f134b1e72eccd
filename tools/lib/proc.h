/*
 * Child processes (ffmpeg, ffprobe, ...) run from argument vectors, never
 * through a shell, so file names with spaces, quotes, '$' or a leading '-'
 * are passed through untouched.
 */
#ifndef PR_PROC_H
#define PR_PROC_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

/* What a child said on stderr is kept for messages: its last bytes. */
#define PR_CHILD_ERR_MAX 4096

/*
 * Runs argv[0] (looked up in PATH) with argv, stdin from /dev/null, and
 * waits for it. Its stdout is appended to out when out is not NULL (at
 * most out_max bytes: past that the child is killed and the result is -1
 * with errno E2BIG) and discarded otherwise. When err is not NULL it gets
 * the last PR_CHILD_ERR_MAX bytes of the child's stderr. Returns the exit
 * status 0-255, 128 + the signal number if the child was killed, or -1
 * with errno set when it could not be started.
 */
int pr_run(char *const argv[], struct pr_buf *out, size_t out_max,
    struct pr_buf *err);

enum pr_pipe { PR_PIPE_TO_CHILD, PR_PIPE_FROM_CHILD };

/* A child with one end of a pipe for the caller to stream through. */
struct pr_child {
	pid_t pid;
	int fd;           /* its stdin (PR_PIPE_TO_CHILD) or stdout (FROM) */
	int err_fd;       /* internal: where its stderr is collected */
};

/* Starts argv with its stdin or stdout connected to c->fd. 0, or -1 with
 * errno. The other standard stream is /dev/null. */
int pr_child_start(char *const argv[], enum pr_pipe dir, struct pr_child *c);

/* Closes c->fd if still open, waits for the child and returns its status
 * as pr_run() does; err (when not NULL) gets the tail of its stderr. */
int pr_child_finish(struct pr_child *c, struct pr_buf *err);

/* read()/write() that retry on EINTR and short counts. read_full returns
 * the bytes read (less than n only at end of file), or -1. */
ssize_t pr_read_full(int fd, void *buf, size_t n);
int pr_write_full(int fd, const void *buf, size_t n);

#endif
