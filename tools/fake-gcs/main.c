/*
 * fake-gcs: options, the root folder, then the shared server (httpd.h)
 * until SIGINT or SIGTERM. See fake-gcs(1) and fake.h.
 */
/* realpath(3) is XSI. */
#define _XOPEN_SOURCE 700

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base64.h"
#include "fake.h"
#include "http.h"
#include "standin.h"

static const char usage[] =
    "usage: fake-gcs --listen 127.0.0.1 --port PORT --root DIR [--bucket NAME]...\n"
    "                [--public-key FILE] [--token TOKEN]... [--token-ttl S]\n"
    "                [--session-ttl S] [--fault JSON]... [--verbose]\n";

static const char help[] =
    "A stand-in for the Google Cloud Storage JSON API: media, multipart and\n"
    "resumable uploads (308 and Range, status queries, session expiry), object\n"
    "metadata and downloads, an OAuth token endpoint that checks RS256 JWTs, a\n"
    "GCE metadata token, and injected faults. Listens on loopback only and\n"
    "prints \"listening on 127.0.0.1:PORT\" when ready.\n"
    "\n"
    "  --listen ADDR        an address in 127.0.0.0/8\n"
    "  --port PORT          0 lets the system choose\n"
    "  --root DIR           buckets are its folders; objects are files in them\n"
    "  --bucket NAME        create the bucket ROOT/NAME; repeatable\n"
    "  --public-key FILE    PEM RSA public key that service-account JWTs are\n"
    "                       checked with; turns authentication on\n"
    "  --token TOKEN        a bearer token always accepted; repeatable; turns\n"
    "                       authentication on\n"
    "  --token-ttl S        lifetime of issued tokens (default 3599)\n"
    "  --session-ttl S      lifetime of resumable sessions (default 604800)\n"
    "  --fault JSON         arm a fault (see fake-gcs(1)); repeatable\n"
    "  --verbose            one line per request on stderr\n"
    "  --help, --version\n";

struct state S = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.urandom = -1,
};

void
fail_set(struct fail *f, int code, const char *reason, const char *fmt, ...)
{
	va_list ap;

	f->code = code;
	f->reason = reason;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof f->msg, fmt, ap);
	va_end(ap);
}

void
random_id(char *out, size_t nbytes)
{
	unsigned char raw[64];
	size_t got = 0;
	ssize_t k;

	if (nbytes > sizeof raw)
		nbytes = sizeof raw;
	while (got < nbytes) {
		k = read(S.urandom, raw + got, nbytes - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			pr_die(PR_EXIT_INFRA, "/dev/urandom: %s", k < 0 ? strerror(errno) : "end of file");
		got += (size_t)k;
	}
	pr_base64_encode(raw, nbytes, out, true);
}

static long long
seconds_option(const char *name, const char *arg)
{
	uint64_t v;

	if (pr_parse_u64(arg, &v) < 0 || v < 1 || v > 31536000)
		pr_usage_error(usage, "%s \"%s\": expected whole seconds from 1 to 31536000",
		    name, arg);
	return (long long)v;
}

static void
prepare_root(const char *root, char **buckets, size_t nbuckets)
{
	static const char *const dirs[] = { ".meta", ".sessions", ".tmp" };
	char path[4096];
	const char *why;
	size_t i;

	if (pr_mkdirs(root) < 0)
		pr_die(PR_EXIT_INFRA, "%s: %s", root, strerror(errno));
	if (!(S.set.root = realpath(root, NULL)))
		pr_die(PR_EXIT_INFRA, "%s: %s", root, strerror(errno));
	for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", S.set.root, dirs[i]);
		if (pr_mkdirs(path) < 0)
			pr_die(PR_EXIT_INFRA, "%s: %s", path, strerror(errno));
		if (i > 0)
			pr_empty_dir(path);
	}
	for (i = 0; i < nbuckets; i++) {
		if ((why = bucket_problem(buckets[i])))
			pr_usage_error(usage, "--bucket \"%s\": %s", buckets[i], why);
		snprintf(path, sizeof path, "%s/%s", S.set.root, buckets[i]);
		if (pr_mkdirs(path) < 0)
			pr_die(PR_EXIT_INFRA, "%s: %s", path, strerror(errno));
	}
}

static void
parse_options(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "port", required_argument, NULL, 'p' },
		{ "root", required_argument, NULL, 'r' },
		{ "bucket", required_argument, NULL, 'b' },
		{ "public-key", required_argument, NULL, 'k' },
		{ "token", required_argument, NULL, 't' },
		{ "token-ttl", required_argument, NULL, 'T' },
		{ "session-ttl", required_argument, NULL, 'S' },
		{ "fault", required_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *root = NULL, *key = NULL;
	char why[256], **buckets;
	size_t nbuckets = 0;
	int c;

	buckets = pr_xcalloc((size_t)argc, sizeof *buckets);
	S.set.tokens = pr_xcalloc((size_t)argc, sizeof *S.set.tokens);
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': S.set.listen = optarg; break;
		case 'p': S.set.port = pr_port_arg(usage, optarg); break;
		case 'r': root = optarg; break;
		case 'b': buckets[nbuckets++] = optarg; break;
		case 'k': key = optarg; break;
		case 't':
			if (strlen(optarg) < 1 || strpbrk(optarg, " \t\r\n"))
				pr_usage_error(usage, "--token: expected a token without blanks");
			S.set.tokens[S.set.ntokens++] = optarg;
			break;
		case 'T': S.set.token_ttl = seconds_option("--token-ttl", optarg); break;
		case 'S': S.set.session_ttl = seconds_option("--session-ttl", optarg); break;
		case 'f': pr_fault_arg(usage, optarg, faults_add); break;
		case 'v': S.set.verbose = true; break;
		case 'h': pr_help_exit(usage, help);
		case 'V': pr_version_exit();
		default: pr_usage_error(usage, NULL);
		}
	}
	if (optind < argc)
		pr_usage_error(usage, "unexpected argument \"%s\"", argv[optind]);
	if (!S.set.listen || !root)
		pr_usage_error(usage, "--listen and --root are required");
	pr_loopback_arg(usage, S.set.listen);
	if (key && !(S.set.pubkey = token_load_key(key, why, sizeof why)))
		pr_usage_error(usage, "--public-key %s: %s", key, why);
	S.set.auth = key || S.set.ntokens > 0;
	prepare_root(root, buckets, nbuckets);
	free(buckets);
}

static void
cleanup(void)
{
	char path[4096];

	sessions_free();
	tokens_free();
	pr_faultset_clear(&faults);
	cJSON_Delete(S.log);
	S.log = NULL;
	snprintf(path, sizeof path, "%s/.sessions", S.set.root);
	pr_empty_dir(path);
	snprintf(path, sizeof path, "%s/.tmp", S.set.root);
	pr_empty_dir(path);
	EVP_PKEY_free(S.set.pubkey);
	free(S.set.tokens);
	free(S.set.base);
	free(S.set.root);
	close(S.urandom);
}

int
main(int argc, char **argv)
{
	int lfd;

	pr_init(argv[0]);
	S.t0 = pr_monotonic();
	S.log = pr_json_array();
	S.set.token_ttl = 3599;
	S.set.session_ttl = 604800;
	if ((S.urandom = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) < 0)
		pr_die(PR_EXIT_INFRA, "/dev/urandom: %s", strerror(errno));
	parse_options(argc, argv);

	if ((lfd = pr_httpd_listen(S.set.listen, S.set.port, &S.set.port)) < 0)
		pr_die(PR_EXIT_INFRA, "cannot listen on %s:%d: %s", S.set.listen, S.set.port,
		    strerror(errno));
	S.set.base = pr_xasprintf("http://%s:%d", S.set.listen, S.set.port);
	printf("listening on %s:%d\n", S.set.listen, S.set.port);
	fflush(stdout);

	pr_httpd_serve(lfd, &http_server);
	cleanup();
	return PR_EXIT_OK;
}
