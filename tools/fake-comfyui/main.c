/*
 * fake-comfyui: a ComfyUI 0.3.64 stand-in for tests and the demo. See
 * fake-comfyui(1) and fake.h.
 */
/* realpath(3) is XSI. */
#define _XOPEN_SOURCE 700

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "fake.h"
#include "http.h"
#include "standin.h"

static const char usage[] =
    "usage: fake-comfyui --listen 127.0.0.1 --port PORT --root DIR [--nodes FILE]\n"
    "                    [--frame-scale N] [--max-upload BYTES] [--node-time S]\n"
    "                    [--class-time CLASS=S]... [--step-time S] [--load-time S]\n"
    "                    [--fault JSON]... [--verbose]\n";

static const char help[] =
    "A stand-in for a ComfyUI 0.3.64 server: the recorded HTTP and WebSocket\n"
    "protocol, ComfyUI's validation, and an executor that evaluates the graph\n"
    "on identity-coded frames instead of a GPU. Listens on loopback only and\n"
    "prints \"listening on 127.0.0.1:PORT\" when ready.\n"
    "\n"
    "  --listen ADDR        an address in 127.0.0.0/8\n"
    "  --port PORT          0 lets the system choose\n"
    "  --root DIR           holds input/, output/, temp/ (wiped at start), models/\n"
    "  --nodes FILE         node facts to serve and validate with, instead of the\n"
    "                       built-in ones (tools/lib/mknodes makes them)\n"
    "  --frame-scale N      draw frames at 1/N of their size (default 8)\n"
    "  --max-upload BYTES   request size limit (default 104857600)\n"
    "  --node-time S        seconds each node takes (default 0)\n"
    "  --class-time C=S     seconds nodes of class C take\n"
    "  --step-time S        seconds per sampler step (default 0)\n"
    "  --load-time S        seconds to load a different model (default 0)\n"
    "  --fault JSON         arm a fault (see fake-comfyui(1)); repeatable\n"
    "  --verbose            libwebsockets warnings on stderr\n"
    "  --help, --version\n";

struct lws_context *CTX;
static volatile sig_atomic_t got_signal;

static void
on_signal(int sig)
{
	(void)sig;
	got_signal = 1;
}

static double
seconds_option(const char *name, const char *arg)
{
	char *end;
	double v = strtod(arg, &end);

	if (*arg == '\0' || *end || !(v >= 0) || v > 86400)
		pr_usage_error(usage, "%s \"%s\": expected seconds from 0 to 86400", name, arg);
	return v;
}

static void
prepare_root(const char *root)
{
	static const char *const dirs[] = { "input", "output", "temp", "models" };
	char path[4096];
	size_t i;

	if (pr_mkdirs(root) < 0)
		pr_die(PR_EXIT_INFRA, "%s: %s", root, strerror(errno));
	if (!(S.set.root = realpath(root, NULL)))
		pr_die(PR_EXIT_INFRA, "%s: %s", root, strerror(errno));
	for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", S.set.root, dirs[i]);
		if (pr_mkdirs(path) < 0)
			pr_die(PR_EXIT_INFRA, "%s: %s", path, strerror(errno));
	}
	snprintf(path, sizeof path, "%s/temp", S.set.root);
	pr_empty_dir(path);
}

static void
load_facts(const char *file)
{
	struct pr_buf b = PR_BUF_INIT;
	struct pr_json_error e;

	if (!file) {
		S.facts = pr_json_copy(pr_nodes());
		return;
	}
	if (pr_file_read(file, (size_t)64 << 20, &b) < 0)
		pr_die(PR_EXIT_USAGE, "%s: %s", file, strerror(errno));
	if (!(S.facts = pr_json_parse(b.data, b.len, &e, NULL)) || !cJSON_IsObject(S.facts))
		pr_die(PR_EXIT_USAGE, "%s:%zu: node facts: %s", file, e.line,
		    e.msg[0] ? e.msg : "not an object");
	pr_buf_free(&b);
}

static void
parse_options(int argc, char **argv, const char **nodes, bool *verbose)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "port", required_argument, NULL, 'p' },
		{ "root", required_argument, NULL, 'r' },
		{ "nodes", required_argument, NULL, 'n' },
		{ "frame-scale", required_argument, NULL, 's' },
		{ "max-upload", required_argument, NULL, 'u' },
		{ "node-time", required_argument, NULL, 't' },
		{ "class-time", required_argument, NULL, 'c' },
		{ "step-time", required_argument, NULL, 'S' },
		{ "load-time", required_argument, NULL, 'L' },
		{ "fault", required_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *root = NULL;
	char *eq;
	uint64_t u;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': S.set.listen = optarg; break;
		case 'p': S.set.port = pr_port_arg(usage, optarg); break;
		case 'r': root = optarg; break;
		case 'n': *nodes = optarg; break;
		case 's':
			if (pr_parse_u64(optarg, &u) < 0 || u < 1 || u > 64)
				pr_usage_error(usage, "--frame-scale \"%s\": expected 1 to 64", optarg);
			S.set.frame_scale = (int)u;
			break;
		case 'u':
			if (pr_parse_u64(optarg, &u) < 0 || u < 1 || u > ((uint64_t)1 << 40))
				pr_usage_error(usage, "--max-upload \"%s\": expected a byte count", optarg);
			S.set.max_upload = (long)u;
			break;
		case 't': S.set.node_time = seconds_option("--node-time", optarg); break;
		case 'c':
			if (!(eq = strchr(optarg, '=')) || eq == optarg)
				pr_usage_error(usage, "--class-time \"%s\": expected CLASS=SECONDS", optarg);
			*eq = '\0';
			pr_json_set(S.set.class_time, optarg,
			    cJSON_CreateNumber(seconds_option("--class-time", eq + 1)));
			break;
		case 'S': S.set.step_time = seconds_option("--step-time", optarg); break;
		case 'L': S.set.load_time = seconds_option("--load-time", optarg); break;
		case 'f': pr_fault_arg(usage, optarg, faults_add); break;
		case 'v': *verbose = true; break;
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
	prepare_root(root);
}

/* lws_service() ignores its timeout (LIBS-NOTES §1): this thread wakes the
 * loop regularly so time-driven faults fire and signals are seen. */
static void *
ticker(void *arg)
{
	struct timespec tick = { 0, 20000000 };

	(void)arg;
	for (;;) {
		nanosleep(&tick, NULL);
		pthread_mutex_lock(&S.lock);
		if (got_signal)
			S.stop = true;
		bool stop = S.stop;
		pthread_mutex_unlock(&S.lock);
		lws_cancel_service(CTX);
		if (stop)
			return NULL;
	}
}

int
main(int argc, char **argv)
{
	/* ComfyUI never pings; lws pings every 300 s unless told otherwise. */
	static const lws_retry_bo_t no_pings = { .secs_since_valid_ping = 65000,
		.secs_since_valid_hangup = 65535 };
	struct lws_context_creation_info info;
	const char *nodes = NULL;
	pthread_t worker, tick;
	bool verbose = false;
	int port;

	pr_init(argv[0]);
	state_init();
	S.set.frame_scale = 8;
	S.set.max_upload = 104857600;
	S.set.class_time = pr_json_object();
	parse_options(argc, argv, &nodes, &verbose);
	load_facts(nodes);
	lws_set_log_level(verbose ? LLL_ERR | LLL_WARN : LLL_ERR, NULL);

	memset(&info, 0, sizeof info);
	info.port = S.set.port;
	info.iface = S.set.listen;
	/* With IPv6 on, lws 4.1.6 binds an IPv4 iface to every interface. */
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
	info.vhost_name = "comfy";
	info.protocols = http_protocols;
	info.pt_serv_buf_size = 65536 + LWS_PRE;
	info.max_http_header_data = 16384;
	info.timeout_secs = 3600;
	info.retry_and_idle_policy = &no_pings;
	if (!(CTX = lws_create_context(&info)))
		pr_die(PR_EXIT_INFRA, "cannot listen on %s:%d", S.set.listen, S.set.port);
	port = lws_get_vhost_listen_port(lws_get_vhost_by_name(CTX, "comfy"));

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (pthread_create(&worker, NULL, worker_main, NULL) ||
	    pthread_create(&tick, NULL, ticker, NULL))
		pr_die(PR_EXIT_INFRA, "cannot start threads");
	printf("listening on %s:%d\n", S.set.listen, port);
	fflush(stdout);

	for (;;) {
		pthread_mutex_lock(&S.lock);
		bool stop = S.stop;
		pthread_mutex_unlock(&S.lock);
		if (stop || lws_service(CTX, 0) < 0)
			break;
	}

	pthread_mutex_lock(&S.lock);
	S.stop = true;
	pthread_cond_broadcast(&S.wake);
	pthread_mutex_unlock(&S.lock);
	pthread_join(worker, NULL);
	pthread_join(tick, NULL);
	lws_context_destroy(CTX);
	CTX = NULL;
	return PR_EXIT_OK;
}
