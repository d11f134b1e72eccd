/*
 * Buckets and objects on disk. A bucket is the folder ROOT/BUCKET; an
 * object's bytes are the file ROOT/BUCKET/NAME, so tests can cmp them;
 * its record (generation, checksums, content type, metadata) is a
 * sidecar ROOT/.meta/BUCKET/SHA256(NAME).json, kept out of the bucket
 * and flat so that no object name can collide with a sidecar. The sidecar
 * is the truth: an object is live when its sidecar and its file exist.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "crc32c.h"
#include "fake.h"
#include "hash.h"
#include "http.h"
#include "urlcode.h"

void
objspec_free(struct objspec *o)
{
	free(o->bucket);
	free(o->name);
	free(o->content_type);
	cJSON_Delete(o->metadata);
	free(o->want_crc32c);
	free(o->want_md5);
	memset(o, 0, sizeof *o);
}

const char *
bucket_problem(const char *b)
{
	const char *p;

	if (!*b)
		return "a bucket name is not empty";
	if (strlen(b) > 222)
		return "a bucket name has at most 222 characters";
	/* The first character keeps .meta, .sessions and .tmp out of reach. */
	if (!((*b >= 'a' && *b <= 'z') || (*b >= '0' && *b <= '9')))
		return "a bucket name starts with a lowercase letter or a digit";
	for (p = b; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.'))
			return "a bucket name has only lowercase letters, digits, '-', '_' and '.'";
	return NULL;
}

const char *
name_problem(const char *n)
{
	size_t len = strlen(n), seg;
	const char *p, *s;

	if (len == 0)
		return "The object name is empty.";
	if (len > 1024)
		return "The object name is longer than 1024 bytes.";
	if (pr_utf8_check(n, len) != len)
		return "The object name is not valid UTF-8.";
	if (strpbrk(n, "\r\n"))
		return "The object name contains a carriage return or line feed.";
	/* GCS takes these; a file on disk under ROOT cannot. */
	if (n[0] == '/')
		return "The object name starts with '/' (not served by fake-gcs).";
	for (s = n;; s = p + 1) {
		p = strchr(s, '/');
		seg = p ? (size_t)(p - s) : strlen(s);
		if (seg == 0)
			return "The object name has an empty path segment (not served by fake-gcs).";
		if ((seg == 1 && s[0] == '.') || (seg == 2 && s[0] == '.' && s[1] == '.'))
			return "The object name has a '.' or '..' path segment (not served by fake-gcs).";
		if (seg > 255)
			return "The object name has a path segment over 255 bytes (not served by fake-gcs).";
		if (!p)
			break;
	}
	return NULL;
}

bool
bucket_exists(const char *bucket)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", S.set.root, bucket);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *
store_data_path(const char *bucket, const char *name)
{
	return pr_xasprintf("%s/%s/%s", S.set.root, bucket, name);
}

static char *
meta_path(const char *bucket, const char *name)
{
	struct pr_sha256 *h = pr_sha256_new();
	char hex[PR_SHA256_HEX];

	pr_sha256_add(h, name, strlen(name));
	pr_sha256_done(h, hex);
	return pr_xasprintf("%s/.meta/%s/%s.json", S.set.root, bucket, hex);
}

cJSON *
store_get(const char *bucket, const char *name)
{
	struct pr_buf b = PR_BUF_INIT;
	struct pr_json_error e;
	char *mp = meta_path(bucket, name), *dp = store_data_path(bucket, name);
	cJSON *side = NULL;
	struct stat st;

	if (stat(dp, &st) == 0 && S_ISREG(st.st_mode) &&
	    pr_file_read(mp, SMALL_BODY, &b) == 0)
		side = pr_json_parse(b.data, b.len, &e, NULL);
	pr_buf_free(&b);
	free(mp);
	free(dp);
	return side;
}

static void
rfc3339(double t, char out[32])
{
	time_t s = (time_t)t;
	struct tm tm;
	int ms = (int)((t - (double)s) * 1000);

	gmtime_r(&s, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + strlen(out), 32 - strlen(out), ".%03dZ", ms > 999 ? 999 : ms);
}

static const char *
side_string(const cJSON *side, const char *key)
{
	const char *s = pr_json_get_string(side, key);

	return s ? s : "";
}

cJSON *
store_resource(const cJSON *side)
{
	const char *bucket = side_string(side, "bucket"), *name = side_string(side, "name"),
	    *gen = side_string(side, "generation");
	struct pr_buf b = PR_BUF_INIT, enc = PR_BUF_INIT;
	cJSON *o = pr_json_object(), *meta;
	char etag[64], etag64[PR_BASE64_LEN(64)];

	pr_pct_encode(&enc, name);
	pr_json_set_string(o, "kind", "storage#object");
	pr_buf_printf(&b, "%s/%s/%s", bucket, name, gen);
	pr_json_set_string(o, "id", b.data);
	pr_buf_reset(&b);
	pr_buf_printf(&b, "%s/storage/v1/b/%s/o/%s", S.set.base, bucket, enc.data);
	pr_json_set_string(o, "selfLink", b.data);
	pr_buf_reset(&b);
	pr_buf_printf(&b, "%s/download/storage/v1/b/%s/o/%s?generation=%s&alt=media",
	    S.set.base, bucket, enc.data, gen);
	pr_json_set_string(o, "mediaLink", b.data);
	pr_json_set_string(o, "name", name);
	pr_json_set_string(o, "bucket", bucket);
	pr_json_set_string(o, "generation", gen);
	pr_json_set_string(o, "metageneration", side_string(side, "metageneration"));
	pr_json_set_string(o, "contentType", side_string(side, "contentType"));
	pr_json_set_string(o, "storageClass", "STANDARD");
	pr_json_set_string(o, "size", side_string(side, "size"));
	pr_json_set_string(o, "md5Hash", side_string(side, "md5Hash"));
	pr_json_set_string(o, "crc32c", side_string(side, "crc32c"));
	/* Opaque to clients; changes with every generation, like GCS's. */
	snprintf(etag, sizeof etag, "%s/1", gen);
	pr_base64_encode(etag, strlen(etag), etag64, false);
	pr_json_set_string(o, "etag", etag64);
	pr_json_set_string(o, "timeCreated", side_string(side, "timeCreated"));
	pr_json_set_string(o, "updated", side_string(side, "updated"));
	pr_json_set_string(o, "timeStorageClassUpdated", side_string(side, "timeCreated"));
	if ((meta = pr_json_get(side, "metadata")))
		cJSON_AddItemToObject(o, "metadata", pr_json_copy(meta));
	pr_buf_free(&b);
	pr_buf_free(&enc);
	return o;
}

/* Strictly increasing per server (S.lock held): microseconds since the
 * epoch, as GCS's generations look, bumped when two come too close. */
static int64_t
next_generation(void)
{
	int64_t g = (int64_t)(pr_wall() * 1e6);

	if (g <= S.last_gen)
		g = S.last_gen + 1;
	S.last_gen = g;
	return g;
}

static int
check_condition(const struct objspec *o, const cJSON *side, struct fail *f)
{
	const char *g = side ? pr_json_get_string(side, "generation") : NULL;
	long long live = g ? atoll(g) : 0;

	if (!o->has_cond)
		return 0;
	if ((o->if_gen == 0 && side) || (o->if_gen != 0 && live != o->if_gen)) {
		fail_set(f, 412, "conditionNotMet",
		    "At least one of the pre-conditions you specified did not hold.");
		return -1;
	}
	return 0;
}

int
store_commit(const struct objspec *o, const char *tmp, uint32_t crc,
    const unsigned char md5[16], long long size, cJSON **res, struct fail *f)
{
	char *dp = store_data_path(o->bucket, o->name), *mp = meta_path(o->bucket, o->name);
	char crc_b64[9], md5_b64[25], when[32], *slash, *text;
	cJSON *old, *side = NULL;
	int rc = -1;

	pthread_mutex_lock(&S.lock);
	old = store_get(o->bucket, o->name);
	if (check_condition(o, old, f) < 0)
		goto out;
	if (!bucket_exists(o->bucket)) {
		fail_set(f, 404, "notFound", "The specified bucket does not exist.");
		goto out;
	}
	slash = strrchr(dp, '/');
	*slash = '\0';
	if (pr_mkdirs(dp) < 0) {
		*slash = '/';
		goto conflict;
	}
	*slash = '/';
	if (rename(tmp, dp) < 0) {
		if (errno == EISDIR || errno == ENOTDIR || errno == ENOTEMPTY || errno == EEXIST)
			goto conflict;
		fail_set(f, 500, "backendError", "Cannot store the object: %s", strerror(errno));
		goto out;
	}

	pr_crc32c_base64(crc, crc_b64);
	md5_base64(md5, md5_b64);
	rfc3339(pr_wall(), when);
	side = pr_json_object();
	pr_json_set_string(side, "bucket", o->bucket);
	pr_json_set_string(side, "name", o->name);
	text = pr_xasprintf("%lld", (long long)next_generation());
	pr_json_set_string(side, "generation", text);
	free(text);
	pr_json_set_string(side, "metageneration", "1");
	pr_json_set_string(side, "contentType",
	    o->content_type ? o->content_type : "application/octet-stream");
	text = pr_xasprintf("%lld", size);
	pr_json_set_string(side, "size", text);
	free(text);
	pr_json_set_string(side, "md5Hash", md5_b64);
	pr_json_set_string(side, "crc32c", crc_b64);
	pr_json_set_string(side, "timeCreated", when);
	pr_json_set_string(side, "updated", when);
	if (o->metadata)
		cJSON_AddItemToObject(side, "metadata", pr_json_copy(o->metadata));
	text = pr_json_print(side, 2);
	if (pr_file_write_atomic(mp, text, strlen(text)) < 0) {
		fail_set(f, 500, "backendError", "Cannot store the object's record: %s",
		    strerror(errno));
		free(text);
		goto out;
	}
	free(text);
	*res = store_resource(side);
	rc = 0;
	goto out;
conflict:
	fail_set(f, 400, "invalid", "The object name %s clashes on disk with another object "
	    "(a file where a folder is needed, or the other way; not served by fake-gcs).",
	    o->name);
out:
	pthread_mutex_unlock(&S.lock);
	cJSON_Delete(old);
	cJSON_Delete(side);
	free(dp);
	free(mp);
	return rc;
}

int
store_delete(const char *bucket, const char *name, struct fail *f)
{
	char *dp = store_data_path(bucket, name), *mp = meta_path(bucket, name), *slash;
	char top[4096];
	cJSON *side;
	int rc = 0;

	snprintf(top, sizeof top, "%s/%s", S.set.root, bucket);
	pthread_mutex_lock(&S.lock);
	if (!(side = store_get(bucket, name))) {
		fail_set(f, 404, "notFound", "No such object: %s/%s", bucket, name);
		rc = -1;
	} else {
		unlink(mp);
		unlink(dp);
		/* Folders the object's name made go with it when empty. */
		while ((slash = strrchr(dp, '/')) && (*slash = '\0', strcmp(dp, top) != 0))
			if (rmdir(dp) < 0)
				break;
	}
	pthread_mutex_unlock(&S.lock);
	cJSON_Delete(side);
	free(dp);
	free(mp);
	return rc;
}

long long
store_count(void)
{
	struct dirent *b, *o;
	char path[4096];
	long long n = 0;
	DIR *top, *d;
	size_t len;

	snprintf(path, sizeof path, "%s/.meta", S.set.root);
	if (!(top = opendir(path)))
		return 0;
	while ((b = readdir(top))) {
		if (b->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/.meta/%s", S.set.root, b->d_name);
		if (!(d = opendir(path)))
			continue;
		while ((o = readdir(d))) {
			len = strlen(o->d_name);
			if (len == 69 && strcmp(o->d_name + 64, ".json") == 0)
				n++;
		}
		closedir(d);
	}
	closedir(top);
	return n;
}
