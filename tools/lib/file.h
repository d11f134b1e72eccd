/* Whole-file reads and crash-safe writes. Functions return 0, or -1 with
 * errno set (EFBIG for a file over the caller's limit). */
#ifndef PR_FILE_H
#define PR_FILE_H

#include <stddef.h>

#include "buf.h"

/* Replaces b's contents with the file's; refuses non-regular files. */
int pr_file_read(const char *path, size_t max, struct pr_buf *b);

/* Writes through a temporary file in the same directory, fsyncs and
 * renames it over path, so a reader sees the old file or the whole new
 * one, never a part. Creates missing parent directories. */
int pr_file_write_atomic(const char *path, const void *data, size_t len);
/* The same, with mode 0600 whatever the umask (secrets: session URIs). */
int pr_file_write_secret(const char *path, const void *data, size_t len);

/* Publishes a file made whole elsewhere (by ffmpeg, say) under its final
 * name: fsyncs it, renames it over path (same file system) and makes the
 * rename durable, so path is the old file or the whole new one. */
int pr_file_publish(const char *made, const char *path);

/* Removes everything inside dir, keeping dir itself. */
void pr_empty_dir(const char *dir);
/* mkdir -p */
int pr_mkdirs(const char *dir);

/* Whether path exists and is a regular file. */
int pr_file_exists(const char *path);

/* NULL when p names a file inside a folder it is relative to (--out):
 * not empty, not absolute, no empty, "." or ".." segment, not ending in
 * "/"; else why not, for a message. Paths from records and servers
 * must pass it before anything is written or removed there. */
const char *pr_path_outside(const char *p);

#endif
