/*
 * pr-upload: finished files into Google Cloud Storage, each one verified
 * by its crc32c and size. See pr-upload(1).
 *
 * main.c     options, records in and out
 * auth.c     where the bearer token comes from (key, command, metadata)
 * jwt.c      the service-account assertion, signed RS256 with OpenSSL
 * gcs.c      the JSON API: object metadata, one-shot and resumable uploads
 * retry.c    which failures are worth another try, and how long to wait
 * session.c  resumable session URIs kept in the state folder (mode 0600)
 * archive.c  --archive: one tar or zip of everything given
 */
#ifndef PR_UPLOAD_H
#define PR_UPLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "httpc.h"
#include "pr.h"

#define MIB (1024 * 1024)
/* GCS takes the chunks of a resumable upload in multiples of this. */
#define GRANULE (256 * 1024)

struct opts {
	const char *dest;
	const char *run;
	const char *state;
	const char *out;
	const char *archive;
	const char *token_command;
	bool overwrite;
	int64_t chunk;            /* resumable chunk size, a multiple of GRANULE */
	int64_t threshold;        /* files at least this big go resumable */
	double max_retry_time;    /* seconds one file may spend retrying */
	double retry_delay;       /* the first backoff, doubled each time */
	long stall;               /* seconds without a byte moving */
};
extern struct opts o;

/* ---- auth.c ---- */

struct auth;
/* Picks the credentials (see pr-upload(1), AUTHENTICATION). emulator:
 * STORAGE_EMULATOR_HOST is set, so no credentials at all is fine. NULL
 * with a message in err when a source is there but unusable. */
struct auth *auth_new(struct pr_http *h, bool emulator, char *err, size_t len);
/* "Authorization: Bearer ..." for the next request in line, or "" when
 * anonymous; a token close to expiry (or renew) is fetched anew. -1 with
 * a message in err (never the token or key). */
int auth_header(struct auth *a, bool renew, char *line, size_t linelen,
    char *err, size_t len);
/* Where the token comes from, for messages: "service-account key file". */
const char *auth_source(const struct auth *a);
int auth_fetches(const struct auth *a);
void auth_free(struct auth *a);

/* ---- jwt.c ---- */

/* The signed assertion for a service-account key (its JSON), or NULL with
 * a message in err naming the field that is wrong. *token_uri points into
 * key. The caller frees the result. */
char *jwt_assertion(const cJSON *key, const char *scope, long now,
    const char **token_uri, char *err, size_t len);

/* ---- retry.c ---- */

struct retry {
	double started;
	double delay;             /* the next wait before jitter */
	int attempts;
};
void retry_start(struct retry *r);
/* Whether a call that ended so (-1: no answer) is worth another try. */
bool retry_worth(int rc, long status);
/* Sleeps before the next try (Retry-After when the server gave one, else
 * backoff with jitter). false when the time allowed is spent. */
bool retry_wait(struct retry *r, const struct pr_http_response *resp);

/* ---- session.c ---- */

struct file_id {
	int64_t size;
	uint32_t crc32c;
	int64_t mtime_ns;
};
/* The session URI saved for object, when it was made for this very file;
 * the caller frees it. */
char *session_load(const char *bucket, const char *object, const struct file_id *f);
int session_save(const char *bucket, const char *object, const struct file_id *f,
    const char *uri);
void session_forget(const char *bucket, const char *object);

/* ---- gcs.c ---- */

struct gcs {
	struct pr_http *http;
	struct auth *auth;
	char *base;               /* https://storage.googleapis.com or the emulator */
	int64_t sent;             /* body bytes sent, this file */
	bool auth_failed;         /* no token could be had: nothing will work */
};

struct object {
	bool exists;
	int64_t size;
	char crc32c[16];          /* base64, as GCS gives it */
	char generation[32];
};

struct upload {
	const char *local;        /* the file */
	const char *bucket;
	const char *object;
	const char *content_type;
	struct file_id id;
	char crc32c[9];
	const char *if_generation;  /* "0": create only; else the one replaced */
};

/* Object metadata: 0 (obj->exists says whether it is there), -1 with a
 * message in err. */
int gcs_stat(struct gcs *g, const char *bucket, const char *object,
    struct object *obj, char *err, size_t len);
/* Uploads u; obj gets what the server says it stored. 0, or -1 with a
 * message in err; *moved is set when the object changed under us (the
 * generation condition failed: nothing overwritten). */
int gcs_upload(struct gcs *g, const struct upload *u, struct object *obj,
    bool *moved, char *err, size_t len);
/* Deletes that generation of the object (gone already is fine). 0, or -1
 * with a message in err. */
int gcs_delete(struct gcs *g, const char *bucket, const char *object,
    const char *generation, char *err, size_t len);

/* ---- archive.c ---- */

/* Writes an archive of files (paths relative to dir, in order) to path
 * through a temporary file: a tar for NAME.tar, a zip for NAME.zip, the
 * same bytes for the same files. 0, or -1 with a message in err. */
int archive_write(const char *path, const char *dir, char *const *files,
    size_t n, char *err, size_t len);

#endif
