/*
 * fake-gcs: a loopback stand-in for the Google Cloud Storage JSON API
 * (media, multipart and resumable uploads, object metadata and downloads,
 * an OAuth token endpoint that checks JWT signatures, a GCE metadata
 * token) with fault injection. See fake-gcs(1).
 *
 * Threads: the main thread accepts; every connection has its own thread
 * doing blocking I/O. Everything shared lives in S under S.lock; a
 * resumable session's bytes and offsets are guarded by the session's own
 * mutex (session.c) so that a big finalize does not stop the world.
 * Lock order: a session's mutex, then S.lock; never the other way.
 */
#ifndef FAKE_GCS_H
#define FAKE_GCS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "faultset.h"
#include "pr.h"

/* Resumable chunks other than the last are multiples of this (GCS). */
#define GRANULE 262144LL
/* JSON bodies we hold in memory: metadata, token forms, control. */
#define SMALL_BODY (1 << 20)

struct req;
struct pr_httpd_req;

/* What a request is, for counters, the log and where faults strike. */
enum kind {
	K_MEDIA, K_MULTIPART, K_INITIATE, K_CHUNK, K_QUERY, K_CANCEL,
	K_METADATA, K_DOWNLOAD, K_DELETE, K_TOKEN, K_METADATA_TOKEN, K_OTHER,
	K_COUNT
};
extern const char *const kind_names[K_COUNT];

struct settings {
	const char *listen;
	int port;
	char *root;             /* absolute */
	char *base;             /* "http://127.0.0.1:PORT": links, aud */
	EVP_PKEY *pubkey;       /* --public-key; NULL: /token refuses */
	char **tokens;          /* --token values; never expire */
	size_t ntokens;
	long long token_ttl;    /* seconds an issued token lives */
	long long session_ttl;  /* seconds a resumable session lives */
	bool auth;              /* storage requests need a bearer token */
	bool verbose;
};

struct counters {
	long long requests[K_COUNT];
	long long upload_bytes;     /* body bytes of media, multipart, chunk */
	long long persisted_bytes;  /* bytes that became object or session data */
	long long tokens_issued;
	long long unauthorized;     /* 401 answers */
	long long faults_fired;
};

struct session;
struct token;
struct state {
	pthread_mutex_t lock;
	struct settings set;
	double t0;              /* monotonic start */
	struct counters n;
	cJSON *log;             /* one object per request */
	struct session *sessions;
	struct token *tokens;   /* issued ones */
	int64_t last_gen;
	int urandom;
};

extern struct state S;

/* An error answer in GCS's shape, built where the problem is found and
 * sent by the caller. */
struct fail {
	int code;
	const char *reason;     /* "invalid", "notFound", "conditionNotMet" */
	char msg[512];
};

void fail_set(struct fail *f, int code, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- main.c ---- */

/* n random bytes from /dev/urandom, as base64url: out holds 4n/3+2. */
void random_id(char *out, size_t nbytes);

/* ---- routes.c ---- */

/* Every request, as the server hands it over (a struct req). */
void route(struct pr_httpd_req *hr);

/* ---- store.c: buckets and objects on disk ---- */

struct objspec {
	char *bucket, *name;
	char *content_type;     /* NULL: application/octet-stream */
	cJSON *metadata;        /* {"k": "v"} or NULL */
	char *want_crc32c;      /* base64 the client says the data has */
	char *want_md5;
	bool has_cond;          /* ifGenerationMatch given */
	int64_t if_gen;
};

void objspec_free(struct objspec *o);
/* NULL when fine, else why the name cannot be used. */
const char *bucket_problem(const char *bucket);
const char *name_problem(const char *name);
bool bucket_exists(const char *bucket);
/* The object's sidecar (our record of it) or NULL when there is none. */
cJSON *store_get(const char *bucket, const char *name);
/* The GCS object resource for a sidecar. */
cJSON *store_resource(const cJSON *side);
char *store_data_path(const char *bucket, const char *name);
/* Moves tmp into place as the new live generation. 0 and *res, or -1
 * and f (412 when the precondition fails; tmp is left for the caller). */
int store_commit(const struct objspec *o, const char *tmp, uint32_t crc,
    const unsigned char md5[16], long long size, cJSON **res, struct fail *f);
int store_delete(const char *bucket, const char *name, struct fail *f);
long long store_count(void);

/* ---- sink.c: upload data on disk and its checksums ---- */

struct sink {
	int fd;
	char *path;             /* a temp file under ROOT/.tmp */
	uint32_t crc;
	EVP_MD_CTX *md5;
	long long size;
};

int sink_open(struct sink *s);
int sink_write(struct sink *s, const void *p, size_t n);
/* Closes the file and yields the checksums; path stays the caller's. */
void sink_close(struct sink *s, uint32_t *crc, unsigned char md5[16]);
/* Removes the file and frees everything. */
void sink_drop(struct sink *s);
int digest_file(const char *path, uint32_t *crc, unsigned char md5[16], long long *size);
/* Flips one byte in the middle of the file (the corrupt fault). */
int corrupt_file(const char *path, long long size);
void md5_base64(const unsigned char md5[16], char out[25]);
/* Checks base64 values the client gave against the data's; -1 and f on a
 * mismatch or a value that is not base64 of the right length. */
/* Only whether they are base64 of 4 and 16 bytes. */
int hash_format(const char *want_crc, const char *want_md5, struct fail *f);
int check_hashes(const char *want_crc, const char *want_md5, uint32_t crc,
    const unsigned char md5[16], struct fail *f);

/* ---- upload.c ---- */

void route_media(struct req *r, const char *bucket);
void route_multipart(struct req *r, const char *bucket);
void route_initiate(struct req *r, const char *bucket);
/* The end of every upload kind: checksums, the corrupt fault, the
 * precondition, then the object. tmp is moved into place on success. */
int finalize(struct req *r, const char *tmp, const struct objspec *o, uint32_t crc,
    const unsigned char md5[16], long long size, cJSON **res, struct fail *f);
/* Parses a JSON object resource (name, contentType, metadata, crc32c,
 * md5Hash) into o; -1 and f when a field has the wrong type. */
int parse_objmeta(const char *text, size_t len, struct objspec *o, struct fail *f);

/* ---- session.c: resumable sessions ---- */

/* A Content-Range: bytes FIRST-LAST/TOTAL; -1 for each "*". */
struct range {
	long long first, last, total;
};

/* 0, 1 when absent (then the body is taken as the whole object), -1 bad. */
int content_range(const struct req *r, struct range *rg);
/* Takes o; writes the new id into id (64 bytes). */
int session_create(struct objspec *o, long long total, char id[64], struct fail *f);
void route_session(struct req *r, enum kind k, const char *upload_id);
long long session_count(void);
void sessions_free(void);

/* ---- token.c ---- */

/* A PEM public key (RSA) for JWT signatures, or NULL and why. */
EVP_PKEY *token_load_key(const char *path, char *why, size_t whylen);
bool token_ok(const char *tok);
void token_revoke(const char *tok);
void route_token(struct req *r);
void route_metadata_token(struct req *r);
void tokens_free(void);

/* ---- faults.c ---- */

enum fault_kind {
	F_STATUS = 1, F_CUT = 2, F_PARTIAL = 4, F_EXPIRE = 8,
	F_UNAUTHORIZED = 16, F_CORRUPT = 32, F_STALL = 64, F_DROP = 128,
};

struct fault {
	enum fault_kind kind;
	int code;               /* status, expire */
	long long retry_after;  /* status: -1 none */
	long long bytes;        /* cut: -1 default */
	bool persist;           /* cut */
	long long keep;         /* partial */
	double seconds;         /* stall */
	long long after_bytes;  /* -1 none */
};

/* The armed faults, guarded by S.lock. */
extern struct pr_faultset faults;
/* Arms one fault object or an array of them; -1 with why. */
int faults_add(const cJSON *spec, char *why, size_t whylen);
/* Takes one shot of the first armed fault of one of kinds (a mask) that
 * matches request kind k; end is the offset or total the request's body
 * would reach (-1 unknown: faults with after_bytes do not match). */
bool fault_take(struct req *r, unsigned kinds, enum kind k, long long end,
    struct fault *out);

#endif
