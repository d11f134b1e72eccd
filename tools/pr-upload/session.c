/*
 * A resumable session's URI, kept in STATE/upload-sessions/ so that a
 * pr-upload killed mid-file resumes at the server's committed offset
 * instead of sending the file again. The URI alone authorises writing the
 * object for a week: the folder is 0700 and the files 0600, and the URI
 * never goes anywhere else (messages name the object instead).
 *
 * A saved session is only used for the very file it was made for (same
 * size, crc32c and modification time): a file rewritten in between starts
 * over.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "upload.h"

static char *
session_path(const char *bucket, const char *object)
{
	struct pr_sha256 *h = pr_sha256_new();
	char hex[PR_SHA256_HEX];

	pr_sha256_add(h, bucket, strlen(bucket) + 1);
	pr_sha256_add(h, object, strlen(object));
	pr_sha256_done(h, hex);
	return pr_xasprintf("%s/upload-sessions/%.32s.json", o.state, hex);
}

char *
session_load(const char *bucket, const char *object, const struct file_id *f)
{
	struct pr_buf b = PR_BUF_INIT;
	struct pr_json_error e;
	char *path = session_path(bucket, object), *uri = NULL;
	cJSON *rec = NULL;
	int64_t size, crc, mtime;

	if (pr_file_read(path, 64 * 1024, &b) < 0)
		goto out;
	if (!(rec = pr_json_parse(b.data, b.len, &e, NULL)))
		goto out;
	if (pr_json_to_i64(pr_json_get(rec, "size"), &size) < 0 ||
	    pr_json_to_i64(pr_json_get(rec, "crc32c"), &crc) < 0 ||
	    pr_json_to_i64(pr_json_get(rec, "mtime_ns"), &mtime) < 0 ||
	    !pr_json_get_string(rec, "uri"))
		goto out;
	if (size == f->size && crc == (int64_t)f->crc32c && mtime == f->mtime_ns &&
	    strcmp(pr_json_get_string(rec, "bucket") ? pr_json_get_string(rec, "bucket") : "", bucket) == 0 &&
	    strcmp(pr_json_get_string(rec, "object") ? pr_json_get_string(rec, "object") : "", object) == 0)
		uri = pr_xstrdup(pr_json_get_string(rec, "uri"));
out:
	cJSON_Delete(rec);
	pr_buf_free(&b);
	free(path);
	return uri;
}

int
session_save(const char *bucket, const char *object, const struct file_id *f,
    const char *uri)
{
	struct pr_buf b = PR_BUF_INIT;
	char *path = session_path(bucket, object), *dir;
	cJSON *rec = pr_json_object();
	int rc;

	dir = pr_xasprintf("%s/upload-sessions", o.state);
	if ((rc = pr_mkdirs(dir)) == 0)
		rc = chmod(dir, 0700);
	pr_json_set_string(rec, "bucket", bucket);
	pr_json_set_string(rec, "object", object);
	pr_json_set(rec, "size", pr_json_int(f->size));
	pr_json_set(rec, "crc32c", pr_json_int((int64_t)f->crc32c));
	pr_json_set(rec, "mtime_ns", pr_json_int(f->mtime_ns));
	pr_json_set_string(rec, "uri", uri);
	pr_json_write(&b, rec, 0);
	pr_buf_add(&b, "\n", 1);
	if (rc == 0)
		rc = pr_file_write_secret(path, b.data, b.len);
	pr_buf_free(&b);
	cJSON_Delete(rec);
	free(dir);
	free(path);
	return rc;
}

void
session_forget(const char *bucket, const char *object)
{
	char *path = session_path(bucket, object);

	if (unlink(path) < 0 && errno != ENOENT)
		pr_warn("%s: %s", path, strerror(errno));
	free(path);
}
