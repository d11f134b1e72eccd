/*
 * fake-runpod: options, the listening socket and the accept loop (the
 * shape of fake-gcs's); one thread per connection; a clean stop on SIGINT
 * and SIGTERM. See fake-runpod(1) and fake.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fake.h"
#include "http.h"

/* An idle keep-alive connection, or a body that stops coming, is given
 * up after this long. */
#define IDLE_SECONDS 60
#define MAX_CONNS 256

static const char usage[] =
    "usage: fake-runpod --listen 127.0.0.1 [--port PORT] [--api-key KEY]\n"
    "                   [--pod ID[:STATUS[:VOLUME]]]... [--price DOLLARS]\n"
    "                   [--stop-delay S] [--fault JSON]... [--verbose]\n";

static const char help[] =
    "A stand-in for RunPod's REST API (GET, stop, start and DELETE of\n"
    "/v1/pods/ID) and GraphQL API (podStop, podTerminate, pod) with injected\n"
    "faults. Listens on loopback only and prints \"listening on\n"
    "127.0.0.1:PORT\" when ready.\n"
    "\n"
    "  --listen ADDR        an address in 127.0.0.0/8\n"
    "  --port PORT          0 (the default) lets the system choose\n"
    "  --api-key KEY        the key requests must carry (default: the\n"
    "                       FAKE_RUNPOD_API_KEY variable; neither: no check)\n"
    "  --pod ID[:STATUS[:VOLUME]]\n"
    "                       a pod; STATUS RUNNING (default), EXITED or\n"
    "                       TERMINATED; VOLUME \"network\" for a network\n"
    "                       volume (then it can only be terminated); repeatable\n"
    "  --price DOLLARS      the pods' costPerHr (default 0.69)\n"
    "  --stop-delay S       seconds before a stop, start or terminate takes\n"
    "                       effect (default 0)\n"
    "  --fault JSON         arm a fault (see fake-runpod(1)); repeatable\n"
    "  --verbose            one line per request on stderr\n"
    "  --help, --version\n";

struct state S = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
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
nap(double seconds)
{
	struct timespec until;
	double whole;

	pthread_mutex_lock(&S.lock);
	if (seconds < 0) {
		while (!S.stop)
			pthread_cond_wait(&S.wake, &S.lock);
	} else {
		clock_gettime(CLOCK_REALTIME, &until);
		whole = (double)until.tv_sec + until.tv_nsec / 1e9 + seconds;
		until.tv_sec = (time_t)whole;
		until.tv_nsec = (long)((whole - (double)until.tv_sec) * 1e9);
		while (!S.stop && pthread_cond_timedwait(&S.wake, &S.lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&S.lock);
}

static bool
loopback(const char *addr)
{
	struct in_addr a;

	return inet_pton(AF_INET, addr, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* A plain decimal like 0.69 or 2: what costPerHr is written as. */
static bool
price_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < 20 && s[0] != '-' && strspn(s, "0123456789.") == n &&
	    pr_json_number_valid(s, n);
}

static void
parse_options(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "port", required_argument, NULL, 'p' },
		{ "api-key", required_argument, NULL, 'k' },
		{ "pod", required_argument, NULL, 'P' },
		{ "price", required_argument, NULL, 'c' },
		{ "stop-delay", required_argument, NULL, 'd' },
		{ "fault", required_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct pr_json_error e;
	const char *key = NULL;
	char why[256], *end;
	uint64_t u;
	cJSON *f;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': S.set.listen = optarg; break;
		case 'p':
			if (pr_parse_u64(optarg, &u) < 0 || u > 65535)
				pr_usage_error(usage, "--port \"%s\": expected 0 to 65535", optarg);
			S.set.port = (int)u;
			break;
		case 'k': key = optarg; break;
		case 'P':
			if (pod_option(optarg, why, sizeof why) < 0)
				pr_usage_error(usage, "--pod \"%s\": %s", optarg, why);
			break;
		case 'c':
			if (!price_ok(optarg))
				pr_usage_error(usage, "--price \"%s\": expected dollars like 0.69", optarg);
			free(S.set.price);
			S.set.price = pr_xstrdup(optarg);
			break;
		case 'd':
			errno = 0;
			S.set.stop_delay = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(S.set.stop_delay) ||
			    S.set.stop_delay < 0 || S.set.stop_delay > 3600)
				pr_usage_error(usage, "--stop-delay \"%s\": expected seconds from 0 "
				    "to 3600", optarg);
			break;
		case 'f':
			if (!(f = pr_json_parse(optarg, strlen(optarg), &e, NULL)))
				pr_usage_error(usage, "--fault: column %zu: %s", e.col, e.msg);
			if (faults_add(f, why, sizeof why) < 0) {
				cJSON_Delete(f);
				pr_usage_error(usage, "--fault: %s", why);
			}
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
	if (!S.set.listen)
		pr_usage_error(usage, "--listen is required");
	if (!loopback(S.set.listen))
		pr_usage_error(usage, "refusing to listen on \"%s\": only loopback addresses "
		    "(127.0.0.0/8) are allowed", S.set.listen);
	if (!key)
		key = getenv("FAKE_RUNPOD_API_KEY");
	if (key && *key) {
		/* Never echoed: the key is not named in any message. */
		if (strpbrk(key, " \t\r\n"))
			pr_usage_error(usage, "the API key must not contain blanks");
		S.set.key = pr_xstrdup(key);
	}
	if (!S.set.price)
		S.set.price = pr_xstrdup("0.69");
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
		/* No answer (a drop) ends the connection too. */
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
	parse_options(argc, argv);

	if ((lfd = listen_on(S.set.listen, S.set.port, &S.set.port)) < 0)
		pr_die(PR_EXIT_INFRA, "cannot listen on %s:%d: %s", S.set.listen, S.set.port,
		    strerror(errno));

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
	faults_clear();
	pods_free();
	cJSON_Delete(S.log);
	free(S.set.key);
	free(S.set.price);
	return PR_EXIT_OK;
}
