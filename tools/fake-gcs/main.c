/*
 * fake-gcs: options, the root folder, the listening socket and the accept
 * loop; one thread per connection; a clean stop on SIGINT and SIGTERM.
 * See fake-gcs(1) and fake.h.
 */
/* realpath(3) is XSI. */
#define _XOPEN_SOURCE 700

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "fake.h"
#include "http.h"

/* An idle keep-alive connection, or a body that stops coming, is given
 * up after this long. */
#define IDLE_SECONDS 60
#define MAX_CONNS 512

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
	.wake = PTHREAD_COND_INITIALIZER,
	.urandom = -1,
};

static volatile sig_atomic_t got_signal;
static struct conn *conns;      /* under S.lock */
static size_t nconns;

static void
on_signal(int sig)
{
	(void)sig;
	got_signal = 1;
}

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
nap(double seconds)
{
	struct timespec until;
	double whole;

	clock_gettime(CLOCK_REALTIME, &until);
	whole = (double)until.tv_sec + until.tv_nsec / 1e9 + seconds;
	until.tv_sec = (time_t)whole;
	until.tv_nsec = (long)((whole - (double)until.tv_sec) * 1e9);
	pthread_mutex_lock(&S.lock);
	while (!S.stop && pthread_cond_timedwait(&S.wake, &S.lock, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&S.lock);
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

static bool
loopback(const char *addr)
{
	struct in_addr a;

	return inet_pton(AF_INET, addr, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
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
	struct pr_json_error e;
	const char *root = NULL, *key = NULL;
	char why[256], **buckets;
	size_t nbuckets = 0;
	uint64_t u;
	cJSON *f;
	int c;

	buckets = pr_xcalloc((size_t)argc, sizeof *buckets);
	S.set.tokens = pr_xcalloc((size_t)argc, sizeof *S.set.tokens);
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': S.set.listen = optarg; break;
		case 'p':
			if (pr_parse_u64(optarg, &u) < 0 || u > 65535)
				pr_usage_error(usage, "--port \"%s\": expected 0 to 65535", optarg);
			S.set.port = (int)u;
			break;
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
		case 'f':
			if (!(f = pr_json_parse(optarg, strlen(optarg), &e, NULL)))
				pr_usage_error(usage, "--fault: column %zu: %s", e.col, e.msg);
			if (faults_add(f, why, sizeof why) < 0)
				pr_usage_error(usage, "--fault: %s", why);
			cJSON_Delete(f);
			break;
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
	if (!loopback(S.set.listen))
		pr_usage_error(usage, "refusing to listen on \"%s\": only loopback addresses "
		    "(127.0.0.0/8) are allowed", S.set.listen);
	if (key && !(S.set.pubkey = token_load_key(key, why, sizeof why)))
		pr_usage_error(usage, "--public-key %s: %s", key, why);
	S.set.auth = key || S.set.ntokens > 0;
	prepare_root(root, buckets, nbuckets);
	free(buckets);
}

static int
listen_on(const char *addr, int port, int *bound)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	int fd, one = 1;

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, addr, &sa.sin_addr);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		close(fd);
		return -1;
	}
	*bound = ntohs(sa.sin_port);
	return fd;
}

static void *
serve(void *arg)
{
	struct timeval tv = { IDLE_SECONDS, 0 };
	struct conn *c = arg;
	struct req r;
	bool done;
	int one = 1, rc;

	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	for (;;) {
		rc = http_read_head(c, &r);
		if (rc > 0)
			route(&r);
		/* No answer (a cut, a drop) ends the connection too. */
		done = rc <= 0 || r.close || r.status == 0;
		http_next(&r);
		pthread_mutex_lock(&S.lock);
		done = done || S.stop;
		pthread_mutex_unlock(&S.lock);
		if (done)
			break;
	}
	pthread_mutex_lock(&S.lock);
	close(c->fd);
	c->fd = -1;
	c->finished = true;
	pthread_mutex_unlock(&S.lock);
	return NULL;
}

/* Joins the connection threads that are done, or all of them. */
static void
reap(bool all)
{
	struct conn **pp, *c, *done = NULL;

	pthread_mutex_lock(&S.lock);
	for (pp = &conns; (c = *pp);) {
		if (all || c->finished) {
			*pp = c->next;
			c->next = done;
			done = c;
			nconns--;
		} else {
			pp = &c->next;
		}
	}
	pthread_mutex_unlock(&S.lock);
	while ((c = done)) {
		done = c->next;
		pthread_join(c->thread, NULL);
		free(c);
	}
}

static void
accept_one(int lfd)
{
	struct conn *c;
	int fd;

	if ((fd = accept(lfd, NULL, NULL)) < 0)
		return;
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	pthread_mutex_lock(&S.lock);
	if (nconns >= MAX_CONNS) {
		pthread_mutex_unlock(&S.lock);
		close(fd);
		return;
	}
	c = pr_xcalloc(1, sizeof *c);
	c->fd = fd;
	if (pthread_create(&c->thread, NULL, serve, c) != 0) {
		pthread_mutex_unlock(&S.lock);
		close(fd);
		free(c);
		return;
	}
	c->next = conns;
	conns = c;
	nconns++;
	pthread_mutex_unlock(&S.lock);
}

static void
stop_all(void)
{
	struct conn *c;

	pthread_mutex_lock(&S.lock);
	S.stop = true;
	pthread_cond_broadcast(&S.wake);
	/* Wakes threads blocked in recv or send; they close their own fds. */
	for (c = conns; c; c = c->next)
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&S.lock);
	reap(true);
}

static void
cleanup(void)
{
	char path[4096];

	sessions_free();
	tokens_free();
	faults_clear();
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
	struct sigaction sa;
	sigset_t block, none;
	struct timespec tick = { 1, 0 };
	fd_set rd;
	int lfd, n;

	pr_init(argv[0]);
	S.t0 = pr_monotonic();
	S.log = pr_json_array();
	S.set.token_ttl = 3599;
	S.set.session_ttl = 604800;
	if ((S.urandom = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) < 0)
		pr_die(PR_EXIT_INFRA, "/dev/urandom: %s", strerror(errno));
	parse_options(argc, argv);

	if ((lfd = listen_on(S.set.listen, S.set.port, &S.set.port)) < 0)
		pr_die(PR_EXIT_INFRA, "cannot listen on %s:%d: %s", S.set.listen, S.set.port,
		    strerror(errno));
	S.set.base = pr_xasprintf("http://%s:%d", S.set.listen, S.set.port);

	/* Signals only arrive inside pselect, in this thread: connection
	 * threads inherit the blocked mask. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&none);

	printf("listening on %s:%d\n", S.set.listen, S.set.port);
	fflush(stdout);

	while (!got_signal) {
		FD_ZERO(&rd);
		FD_SET(lfd, &rd);
		n = pselect(lfd + 1, &rd, NULL, NULL, &tick, &none);
		if (n < 0 && errno != EINTR)
			pr_die(PR_EXIT_INFRA, "select: %s", strerror(errno));
		if (n > 0)
			accept_one(lfd);
		reap(false);
	}
	close(lfd);
	stop_all();
	cleanup();
	return PR_EXIT_OK;
}
