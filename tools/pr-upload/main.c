/*
 * pr-upload: every file the records name, into Cloud Storage, verified by
 * the object's crc32c and size. See pr-upload(1).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "crc32c.h"
#include "lock.h"
#include "upload.h"

struct opts o = {
	.state = "state", .out = "out", .chunk = 8 * MIB, .threshold = 8 * MIB,
	.max_retry_time = 600, .retry_delay = 1, .stall = 60,
};

static const char usage[] =
    "usage: pr-upload --dest gs://BUCKET[/PREFIX] [--run NAME] [--state DIR] [--out DIR]\n"
    "                 [--archive NAME.tar|NAME.zip] [--overwrite] [--token-command CMD]\n"
    "                 [--chunk-size SIZE] [--resumable-threshold SIZE]\n"
    "                 [--max-retry-time S] [--retry-delay S] [--timeout S]\n"
    "                 < records > uploads\n";

static const char help[] =
    "Uploads the file each input record names in \"path\" (relative to --out)\n"
    "to gs://BUCKET/PREFIX/RUN/PATH and checks that the object's crc32c and\n"
    "size are the file's. Large files go in resumable sessions that survive\n"
    "network failures and a killed pr-upload; an object already there with the\n"
    "same content is not sent again. One upload record per file.\n"
    "\n"
    "  --dest gs://B/P        the bucket and the prefix of every object name\n"
    "  --run NAME             the run's folder under the prefix (default: one\n"
    "                         name made once per state folder, in DIR/run-name)\n"
    "  --state DIR            sessions and the run name are kept here (default state)\n"
    "  --out DIR              record paths are relative to DIR (default out)\n"
    "  --archive NAME         also upload one .tar or .zip of every file, made in\n"
    "                         OUT/NAME\n"
    "  --overwrite            replace an object that differs (default: fail it)\n"
    "  --token-command CMD    a command printing an OAuth token (see AUTHENTICATION\n"
    "                         in pr-upload(1) for the order credentials are tried)\n"
    "  --chunk-size SIZE      resumable chunk, a multiple of 256K (default 8M)\n"
    "  --resumable-threshold SIZE\n"
    "                         files this big or bigger go resumable (default 8M)\n"
    "  --max-retry-time S     how long one file may go without progress (default 600)\n"
    "  --retry-delay S        the first wait before a retry, doubled each time\n"
    "                         up to 32 s (default 1)\n"
    "  --timeout S            a call that moves no byte for S seconds fails (default 60)\n"
    "\n"
    "Environment: GOOGLE_APPLICATION_CREDENTIALS, GOOGLE_APPLICATION_CREDENTIALS_JSON,\n"
    "GCS_OAUTH_TOKEN, GCE_METADATA_HOST, STORAGE_EMULATOR_HOST.\n"
    "\n"
    "Exit status: 0 every file uploaded and verified, 1 some failed (their\n"
    "records say why), 2 bad input or usage (nothing sent), 3 no credentials,\n"
    "or the state folder cannot be used.\n";

/* What to upload: one file, from one input record (or the archive). */
struct item {
	char *path;               /* relative to --out */
	const char *video;        /* from the record, when it has one */
	bool archive;
};

static struct {
	char *bucket;
	char *prefix;             /* no leading or trailing '/'; may be empty */
	char *run;
} dest;

/* 8M, 256K, 1G or bytes. */
static int64_t
size_arg(const char *name, const char *arg)
{
	uint64_t v, mult = 1;
	char digits[32];
	size_t n = strlen(arg);

	if (n > 0 && strchr("KkMmGg", arg[n - 1])) {
		mult = arg[n - 1] == 'K' || arg[n - 1] == 'k' ? 1024 :
		    arg[n - 1] == 'M' || arg[n - 1] == 'm' ? 1024 * 1024 : 1024 * 1024 * 1024;
		n--;
	}
	if (n == 0 || n >= sizeof digits)
		pr_usage_error(usage, "%s \"%s\": expected a size like 8M", name, arg);
	memcpy(digits, arg, n);
	digits[n] = '\0';
	if (pr_parse_u64(digits, &v) < 0 || v == 0 || v > ((uint64_t)1 << 40) / mult)
		pr_usage_error(usage, "%s \"%s\": expected a size like 8M", name, arg);
	return (int64_t)(v * mult);
}

static bool
safe_name(const char *s)
{
	if (!*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || strlen(s) > 128)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-") == strlen(s);
}

static void
parse_dest(const char *d)
{
	const char *b, *slash;
	size_t n;

	if (strncmp(d, "gs://", 5) != 0)
		pr_usage_error(usage, "--dest \"%s\": expected gs://BUCKET[/PREFIX]", d);
	b = d + 5;
	slash = strchr(b, '/');
	n = slash ? (size_t)(slash - b) : strlen(b);
	dest.bucket = pr_xstrndup(b, n);
	/* GCS's rule for bucket names, which also keeps them out of trouble
	 * in URLs and messages. */
	if (n < 3 || n > 222 || strspn(dest.bucket, "abcdefghijklmnopqrstuvwxyz0123456789._-") != n ||
	    !strchr("abcdefghijklmnopqrstuvwxyz0123456789", dest.bucket[0]) ||
	    !strchr("abcdefghijklmnopqrstuvwxyz0123456789", dest.bucket[n - 1]))
		pr_usage_error(usage, "--dest \"%s\": \"%s\" is not a bucket name "
		    "(3-63 characters: a-z, 0-9, '.', '_', '-')", d, dest.bucket);
	b = slash ? slash + 1 : "";
	while (*b == '/')
		b++;
	n = strlen(b);
	while (n > 0 && b[n - 1] == '/')
		n--;
	dest.prefix = pr_xstrndup(b, n);
	if (strstr(dest.prefix, "//") || strchr(dest.prefix, '\n'))
		pr_usage_error(usage, "--dest \"%s\": empty folder name in the prefix", d);
}

static void
parse_options(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dest", required_argument, NULL, 'd' },
		{ "run", required_argument, NULL, 'r' },
		{ "state", required_argument, NULL, 'S' },
		{ "out", required_argument, NULL, 'o' },
		{ "archive", required_argument, NULL, 'a' },
		{ "overwrite", no_argument, NULL, 'w' },
		{ "token-command", required_argument, NULL, 't' },
		{ "chunk-size", required_argument, NULL, 'c' },
		{ "resumable-threshold", required_argument, NULL, 'T' },
		{ "max-retry-time", required_argument, NULL, 'm' },
		{ "retry-delay", required_argument, NULL, 'D' },
		{ "timeout", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o.dest = optarg; break;
		case 'r':
			if (!safe_name(optarg))
				pr_usage_error(usage, "--run \"%s\": expected letters, digits, '.', '_', '-'", optarg);
			o.run = optarg;
			break;
		case 'S': o.state = optarg; break;
		case 'o': o.out = optarg; break;
		case 'a': o.archive = optarg; break;
		case 'w': o.overwrite = true; break;
		case 't': o.token_command = optarg; break;
		case 'c':
			o.chunk = size_arg("--chunk-size", optarg);
			if (o.chunk % GRANULE)
				pr_usage_error(usage, "--chunk-size %s: must be a multiple of 256K", optarg);
			break;
		case 'T':
			o.threshold = size_arg("--resumable-threshold", optarg);
			if (o.threshold > 64 * MIB)
				pr_usage_error(usage, "--resumable-threshold %s: at most 64M "
				    "(smaller files are sent from memory)", optarg);
			break;
		case 'm': o.max_retry_time = pr_seconds_arg(usage, "--max-retry-time", optarg, 0, 86400); break;
		case 'D': o.retry_delay = pr_seconds_arg(usage, "--retry-delay", optarg, 0, 60); break;
		case 'i': o.stall = (long)pr_seconds_arg(usage, "--timeout", optarg, 1, 3600); break;
		case 'h': pr_help_exit(usage, help);
		case 'V': pr_version_exit();
		default: pr_usage_error(usage, "unknown option");
		}
	}
	if (optind < argc)
		pr_usage_error(usage, "unexpected argument \"%s\" (records come on stdin)",
		    argv[optind]);
	if (!o.dest)
		pr_usage_error(usage, "--dest is required");
	parse_dest(o.dest);
	if (o.archive) {
		size_t n = strlen(o.archive);
		if (!safe_name(o.archive) || n < 5 ||
		    (strcmp(o.archive + n - 4, ".tar") != 0 && strcmp(o.archive + n - 4, ".zip") != 0))
			pr_usage_error(usage, "--archive \"%s\": expected a file name ending in .tar or .zip",
			    o.archive);
	}
}

/* The run's name: --run, else the one this state folder was given the
 * first time (UTC start time), so reruns land in the same place. */
static void
pick_run(void)
{
	struct pr_buf b = PR_BUF_INIT;
	char *path = pr_xasprintf("%s/run-name", o.state), name[64];
	time_t t = time(NULL);
	struct tm tm;
	size_t n;

	if (o.run) {
		dest.run = pr_xstrdup(o.run);
	} else if (pr_file_read(path, 256, &b) == 0) {
		n = strcspn(b.data, "\n");
		b.data[n] = '\0';
		if (!safe_name(b.data))
			pr_die(PR_EXIT_USAGE, "%s: \"%.60s\" is not a run name (letters, digits, '.', '_', '-')",
			    path, b.data);
		dest.run = pr_xstrdup(b.data);
	} else if (errno != ENOENT) {
		pr_die(PR_EXIT_INFRA, "%s: %s", path, strerror(errno));
	} else {
		gmtime_r(&t, &tm);
		strftime(name, sizeof name, "run-%Y%m%d-%H%M%S", &tm);
		snprintf(name + strlen(name), sizeof name - strlen(name), "\n");
		if (pr_file_write_atomic(path, name, strlen(name)) < 0)
			pr_die(PR_EXIT_INFRA, "%s: %s", path, strerror(errno));
		name[strcspn(name, "\n")] = '\0';
		dest.run = pr_xstrdup(name);
	}
	pr_buf_free(&b);
	free(path);
}

/* A path inside --out (pr_path_outside) that an object name can hold. */
static const char *
bad_path(const char *p)
{
	const char *s;

	if (strpbrk(p, "\n\r"))
		return "has a line break";
	/* Cloud Storage refuses them in object names, and a message would
	 * not show them. */
	for (s = p; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return "has a control character";
	return pr_path_outside(p);
}

/* The records, checked before anything is sent: bad input sends nothing. */
static struct item *
read_items(cJSON **records, size_t *nitems)
{
	struct item *items = NULL;
	struct pr_jsonl in;
	cJSON *all = pr_json_array(), *rec;
	const char *status, *path, *why;
	size_t n = 0, i;
	int rc;

	pr_jsonl_open(&in, stdin, "<stdin>");
	while ((rc = pr_jsonl_next(&in, &rec)) == 1) {
		cJSON_AddItemToArray(all, rec);
		status = pr_json_get_string(rec, "status");
		/* A failed final has nothing to upload; pr-shutdown sees it. */
		if (status && strcmp(status, "success") != 0 && strcmp(status, "uploaded") != 0)
			continue;
		if (pr_json_get(rec, "path") && !cJSON_IsString(pr_json_get(rec, "path")))
			pr_die(PR_EXIT_USAGE, "<stdin>:%zu: path: expected a string", in.line);
		if (!(path = pr_json_get_string(rec, "path")))
			pr_die(PR_EXIT_USAGE, "<stdin>:%zu: path: missing (which file to upload?)", in.line);
		if ((why = bad_path(path))) {
			/* Quoted as JSON, so the message stays one line; a
			 * long one is cut between characters. */
			struct pr_buf q = PR_BUF_INIT;
			size_t len;

			pr_json_write_string(&q, path);
			len = q.len;
			if (len > 200) {
				len = 200;
				while (((unsigned char)q.data[len] & 0xc0) == 0x80)
					len--;
			}
			pr_warn("<stdin>:%zu: path: %.*s%s: %s", in.line, (int)len, q.data,
			    len < q.len ? "...\"" : "", why);
			pr_buf_free(&q);
			exit(PR_EXIT_USAGE);
		}
		for (i = 0; i < n && strcmp(items[i].path, path) != 0; i++)
			;
		if (i < n)
			continue;   /* the same file twice is uploaded once */
		items = pr_xrealloc(items, (n + 2) * sizeof *items);
		items[n].path = pr_xstrdup(path);
		items[n].video = pr_json_get_string(rec, "video");
		items[n].archive = false;
		n++;
	}
	if (rc < 0)
		pr_die(in.status, "%s", in.err);
	pr_jsonl_close(&in);
	*records = all;
	*nitems = n;
	return items;
}

static const char *
content_type(const char *path)
{
	static const struct { const char *ext, *type; } types[] = {
		{ ".mp4", "video/mp4" }, { ".png", "image/png" }, { ".jpg", "image/jpeg" },
		{ ".json", "application/json" }, { ".jsonl", "application/x-ndjson" },
		{ ".tar", "application/x-tar" }, { ".zip", "application/zip" },
		{ ".html", "text/html; charset=utf-8" }, { ".txt", "text/plain; charset=utf-8" },
		{ ".log", "text/plain; charset=utf-8" },
	};
	const char *dot = strrchr(path, '.');
	size_t i;

	for (i = 0; dot && i < sizeof types / sizeof types[0]; i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

/* The file's identity: a session or an object is only trusted for it. */
static int
identify(const char *local, struct file_id *id, char crc[9], char *err, size_t len)
{
	struct stat st;
	long long size;

	if (stat(local, &st) < 0) {
		snprintf(err, len, "%s: %s", local, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, len, "%s: not a regular file", local);
		return -1;
	}
	if (pr_crc32c_file(local, &id->crc32c, &size) < 0) {
		snprintf(err, len, "%s: %s", local, strerror(errno));
		return -1;
	}
	id->size = size;
	id->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	pr_crc32c_base64(id->crc32c, crc);
	return 0;
}

static bool
same(const struct object *obj, const struct upload *u)
{
	return obj->exists && obj->size == u->id.size && strcmp(obj->crc32c, u->crc32c) == 0;
}

/*
 * One file: already there (nothing sent), or sent and then checked
 * against the object the server reports. Returns the record's status;
 * *fatal when no credentials could be had (nothing else will work).
 */
static cJSON *
upload_one(struct gcs *g, const struct item *it, bool *fatal)
{
	struct upload u = { .bucket = dest.bucket };
	struct object obj = { 0 };
	struct stat after;
	char err[512], generation[32], *local, *object, *uri;
	cJSON *rec = pr_json_object();
	bool moved = false, existed = false, verified = false;

	local = pr_xasprintf("%s/%s", o.out, it->path);
	object = pr_xasprintf("%s%s%s/%s", dest.prefix, *dest.prefix ? "/" : "", dest.run, it->path);
	uri = pr_xasprintf("gs://%s/%s", dest.bucket, object);
	if (it->video)
		pr_json_set_string(rec, "video", it->video);
	pr_json_set_string(rec, "path", it->path);
	pr_json_set_string(rec, "uri", uri);
	if (it->archive)
		pr_json_set(rec, "archive", pr_json_bool(true));
	u.local = local;
	u.object = object;
	u.content_type = content_type(it->path);
	u.if_generation = "0";
	g->sent = 0;
	g->auth_failed = false;
	err[0] = '\0';
	if (identify(local, &u.id, u.crc32c, err, sizeof err) < 0)
		goto done;
	if (gcs_stat(g, dest.bucket, object, &obj, err, sizeof err) < 0)
		goto done;
	if (same(&obj, &u)) {
		existed = verified = true;
		session_forget(dest.bucket, object);
		goto done;
	}
	if (obj.exists && !o.overwrite) {
		snprintf(err, sizeof err, "%s exists with other content (crc32c %s, %lld bytes; "
		    "the file's %s, %lld bytes): --overwrite replaces it", uri, obj.crc32c,
		    (long long)obj.size, u.crc32c, (long long)u.id.size);
		goto done;
	}
	/* Only the generation seen is replaced (obj is rewritten below). */
	if (obj.exists) {
		snprintf(generation, sizeof generation, "%s", obj.generation);
		u.if_generation = generation;
	}
	if (gcs_upload(g, &u, &obj, &moved, err, sizeof err) < 0 && !moved)
		goto done;
	/* Verified means: what the server holds now, by its own account,
	 * is this file, and the file did not change while it was read. */
	if (gcs_stat(g, dest.bucket, object, &obj, err, sizeof err) < 0)
		goto done;
	if (!same(&obj, &u)) {
		if (!moved) {
			char why[256] = "";
			/* Our own upload came out wrong: a bad copy under the
			 * final's name is worse than none, and would stop the
			 * next run from sending a good one. */
			if (obj.exists && gcs_delete(g, dest.bucket, object, obj.generation,
			    why, sizeof why) < 0)
				pr_warn("%s: the bad object is left: %s", uri, why);
			snprintf(err, sizeof err, "%s does not match the file after the upload "
			    "(crc32c %s, %lld bytes; the file's %s, %lld bytes)%s", uri,
			    obj.exists ? obj.crc32c : "-", (long long)obj.size, u.crc32c,
			    (long long)u.id.size, obj.exists && !why[0] ? "; it was deleted" : "");
		}
		goto done;
	}
	/* The server checked the bytes it got against the crc32c read before;
	 * a file rewritten since would show in its size or time, and reading
	 * a final of some GB a second time would cost as much as the check. */
	if (stat(local, &after) < 0 || after.st_size != u.id.size ||
	    (int64_t)after.st_mtim.tv_sec * 1000000000 + after.st_mtim.tv_nsec != u.id.mtime_ns) {
		snprintf(err, sizeof err, "%s: changed while it was uploaded; run again", local);
		goto done;
	}
	verified = true;
done:
	pr_json_set_string(rec, "status", verified ? "uploaded" : "failed");
	pr_json_set(rec, "verified", pr_json_bool(verified));
	if (u.crc32c[0]) {
		pr_json_set(rec, "size", pr_json_int(u.id.size));
		pr_json_set_string(rec, "crc32c", u.crc32c);
	}
	if (verified) {
		pr_json_set_string(rec, "generation", obj.generation);
		pr_json_set(rec, "existed", pr_json_bool(existed));
	}
	pr_json_set(rec, "sent", pr_json_int(g->sent));
	if (!verified) {
		pr_json_set_string(rec, "error", err[0] ? err : "unknown failure");
		pr_warn("%s: %s", it->path, err);
		/* Without credentials no other file can go either. */
		*fatal = g->auth_failed;
	} else {
		fprintf(stderr, "%s: %s %s -> %s\n", pr_progname, existed ? "already there:" :
		    "uploaded", it->path, uri);
	}
	free(uri);
	free(object);
	free(local);
	return rec;
}

static char *
storage_base(bool *emulator)
{
	const char *e = getenv("STORAGE_EMULATOR_HOST");

	*emulator = e && *e;
	if (!*emulator)
		return pr_xstrdup("https://storage.googleapis.com");
	if (strncmp(e, "http://", 7) == 0 || strncmp(e, "https://", 8) == 0)
		return pr_xstrdup(e);
	return pr_xasprintf("http://%s", e);
}

/* --archive: one archive of every file, made in OUT and uploaded like
 * them; its bytes depend only on the files, so a rerun sends nothing. */
static int
make_archive(const struct item *items, size_t n, struct item *archive)
{
	char **files = pr_xcalloc(n + 1, sizeof *files), *path, err[512];
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		files[i] = items[i].path;
	path = pr_xasprintf("%s/%s", o.out, o.archive);
	rc = archive_write(path, o.out, files, n, err, sizeof err);
	if (rc < 0)
		pr_warn("--archive: %s", err);
	archive->path = pr_xstrdup(o.archive);
	archive->video = NULL;
	archive->archive = true;
	free(path);
	free(files);
	return rc;
}

int
main(int argc, char **argv)
{
	struct gcs g = { 0 };
	struct item *items, archive = { 0 };
	struct pr_buf outb = PR_BUF_INIT;
	cJSON *records, *rec;
	char err[512];
	size_t n, i, failed = 0;
	bool emulator, fatal = false;
	int lock;

	pr_init(argv[0]);
	parse_options(argc, argv);
	items = read_items(&records, &n);
	if (pr_mkdirs(o.state) < 0)
		pr_die(PR_EXIT_INFRA, "%s: %s", o.state, strerror(errno));
	if ((lock = pr_lock_state(o.state, err, sizeof err)) < 0)
		pr_die(PR_EXIT_INFRA, "%s", err);
	pick_run();
	g.base = storage_base(&emulator);
	if (!(g.http = pr_http_new(g.base)))
		pr_die(PR_EXIT_USAGE, "STORAGE_EMULATOR_HOST \"%s\": not a host[:port]", g.base);
	pr_http_set_timeouts(g.http, 10, o.stall);
	if (!(g.auth = auth_new(g.http, emulator, err, sizeof err)))
		pr_die(PR_EXIT_INFRA, "%s", err);
	if (o.archive && n > 0 && make_archive(items, n, &archive) < 0)
		failed++;
	for (i = 0; i < n + (archive.path != NULL); i++) {
		const struct item *it = i < n ? &items[i] : &archive;
		if (fatal) {
			rec = pr_json_object();
			pr_json_set_string(rec, "path", it->path);
			pr_json_set_string(rec, "status", "failed");
			pr_json_set(rec, "verified", pr_json_bool(false));
			pr_json_set_string(rec, "error", "not tried: no credentials (see above)");
		} else {
			rec = upload_one(&g, it, &fatal);
		}
		if (strcmp(pr_json_get_string(rec, "status"), "uploaded") != 0)
			failed++;
		/* Each record as soon as its file is done: a kill later keeps it. */
		pr_buf_reset(&outb);
		pr_record_append(&outb, rec);
		pr_stdout_write(&outb);
		cJSON_Delete(rec);
	}
	pr_stdout_close();
	pr_buf_free(&outb);
	for (i = 0; i < n; i++)
		free(items[i].path);
	free(items);
	free(archive.path);
	cJSON_Delete(records);
	auth_free(g.auth);
	pr_http_free(g.http);
	free(g.base);
	free(dest.bucket);
	free(dest.prefix);
	free(dest.run);
	if (fatal)
		return PR_EXIT_INFRA;
	return failed ? PR_EXIT_FAILED : PR_EXIT_OK;
}
