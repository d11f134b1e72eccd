/*
 * fake-runpod: options, then the shared server (httpd.h) until SIGINT or
 * SIGTERM. See fake-runpod(1) and fake.h.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake.h"
#include "http.h"
#include "standin.h"

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
};

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
	const char *key = NULL;
	char why[256], *end;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': S.set.listen = optarg; break;
		case 'p': S.set.port = pr_port_arg(usage, optarg); break;
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
		case 'f': pr_fault_arg(usage, optarg, faults_add); break;
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
	pr_loopback_arg(usage, S.set.listen);
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

int
main(int argc, char **argv)
{
	int lfd;

	pr_init(argv[0]);
	S.t0 = pr_monotonic();
	S.log = pr_json_array();
	parse_options(argc, argv);

	if ((lfd = pr_httpd_listen(S.set.listen, S.set.port, &S.set.port)) < 0)
		pr_die(PR_EXIT_INFRA, "cannot listen on %s:%d: %s", S.set.listen, S.set.port,
		    strerror(errno));
	printf("listening on %s:%d\n", S.set.listen, S.set.port);
	fflush(stdout);

	pr_httpd_serve(lfd, &http_server);
	pr_faultset_clear(&faults);
	pods_free();
	cJSON_Delete(S.log);
	free(S.set.key);
	free(S.set.price);
	return PR_EXIT_OK;
}
