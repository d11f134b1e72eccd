/*
 * ws-try: drives one connection of tools/lib/wsclient.c through a script
 * of steps and prints one JSON line per event, for tests/wsclient.bats:
 *
 *   {"t": ms, "state": "CONNECTING" | "UP" | "CLOSING" | "DOWN",
 *    "connections": n, "error": "why" (DOWN only)}
 *   {"t": ms, "message": {type, data}}
 *   {"t": ms, "step": "name", ...}        (what a step reports)
 *
 *   ws-try --base URL --client-id ID [--ping SECONDS] [--lws-log LLL] STEP...
 *
 * Steps:
 *   connect          pr_ws_connect (reports "connect": 0 or -1 and error)
 *   retry:MS         connects until UP, 200 ms after each failure
 *   close            pr_ws_close
 *   run:MS           services for MS ms, printing what happens
 *   idle:MS          one pr_ws_run(MS); reports how long it took ("ran")
 *   until:TYPE[:MS]  runs until a message of that type (default 10 s)
 *   end[:MS]         runs until executing with node null
 *   state:S[:MS]     runs until the state is S (UP, DOWN, ...)
 *   free             pr_ws_free, then a fresh pr_ws for later steps
 *   leave            ends at once, leaving the connection to
 *                    pr_wsctx_free
 * Exit status 1 when an until, end, state or retry step runs out of time.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include "pr.h"
#include "wsclient.h"

static const char *const names[] = { "DOWN", "CONNECTING", "UP", "CLOSING" };
static struct pr_wsctx *ctx;
static struct pr_ws *ws;
static const char *base, *client;
static enum pr_ws_state shown = PR_WS_DOWN;
static double t0;

static double
ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A new output line, stamped with the time since start. */
static cJSON *
rec_new(void)
{
	cJSON *rec = pr_json_object();

	pr_json_set_int(rec, "t", (int64_t)(ms_now() - t0));
	return rec;
}

/* Prints the line and frees it. */
static void
emit(cJSON *rec)
{
	char *s = pr_json_print(rec, 0);

	printf("%s\n", s);
	fflush(stdout);
	free(s);
	cJSON_Delete(rec);
}

static void
show_state(void)
{
	enum pr_ws_state s = pr_ws_state(ws);
	cJSON *rec;

	if (s == shown)
		return;
	shown = s;
	rec = rec_new();
	pr_json_set_string(rec, "state", names[s]);
	pr_json_set_int(rec, "connections", pr_ws_connections(ws));
	if (s == PR_WS_DOWN)
		pr_json_set_string(rec, "error", pr_ws_error(ws));
	emit(rec);
}

/* Prints what the last run brought; true when a message of type (or, with
 * end, executing with node null) was among them. */
static bool
drain(const char *type, bool end)
{
	bool hit = false;
	cJSON *m, *rec;
	const char *mt;

	/* A new connection before its messages, an end after them. */
	if (pr_ws_state(ws) != PR_WS_DOWN)
		show_state();
	while ((m = pr_ws_next(ws))) {
		mt = pr_json_get_string(m, "type");
		if (type && mt && strcmp(mt, type) == 0)
			hit = true;
		if (end && mt && strcmp(mt, "executing") == 0 &&
		    cJSON_IsNull(pr_json_get(pr_json_get(m, "data"), "node")))
			hit = true;
		rec = rec_new();
		pr_json_set(rec, "message", m);
		emit(rec);
	}
	show_state();
	return hit;
}

/* Runs for up to ms; with a type, end or a state, until that is seen.
 * 0 when seen (or nothing was awaited), -1 when time ran out. */
static int
run(double ms, const char *type, bool end, int want)
{
	double stop = ms_now() + ms, left;
	bool hit = false;

	for (;;) {
		if (want >= 0 && pr_ws_state(ws) == (enum pr_ws_state)want)
			hit = true;
		if (hit)
			return 0;
		left = stop - ms_now();
		if (left <= 0)
			break;
		/* One call for all the time left: pr_ws_run must come back
		 * by itself when something happens. */
		pr_ws_run(ctx, (int)left + 1);
		hit = drain(type, end);
	}
	return type || end || want >= 0 ? -1 : 0;
}

static void
report(const char *step, const char *key, cJSON *v)
{
	cJSON *rec = rec_new();

	pr_json_set_string(rec, "step", step);
	pr_json_set(rec, key, v);
	emit(rec);
}

static void
connect_step(void)
{
	cJSON *rec = rec_new();
	int rc = pr_ws_connect(ws);

	pr_json_set_string(rec, "step", "connect");
	pr_json_set_int(rec, "connect", rc);
	if (rc < 0)
		pr_json_set_string(rec, "error", pr_ws_error(ws));
	emit(rec);
	show_state();
}

static int
state_named(const char *s, size_t n)
{
	int i;

	for (i = 0; i < 4; i++)
		if (strlen(names[i]) == n && strncmp(names[i], s, n) == 0)
			return i;
	pr_die(PR_EXIT_USAGE, "no state %.*s", (int)n, s);
}

/* "word:arg[:ms]" → ms, or def. */
static double
ms_arg(const char *colon, double def)
{
	return colon ? atof(colon + 1) : def;
}

static void
fresh(void)
{
	if (!(ws = pr_ws_new(ctx, base, client)))
		pr_die(PR_EXIT_USAGE, "bad base URL %s", base);
	shown = PR_WS_DOWN;
}

static int
step(const char *s)
{
	const char *arg = strchr(s, ':'), *c2;
	char *type;
	double t;
	int rc;

	if (strcmp(s, "connect") == 0) {
		connect_step();
		return 0;
	}
	if (strncmp(s, "retry:", 6) == 0) {
		/* Connects again and again, 200 ms apart, until UP. */
		t = ms_now() + ms_arg(arg, 0);
		while (ms_now() < t) {
			connect_step();
			while (pr_ws_state(ws) == PR_WS_CONNECTING && ms_now() < t) {
				pr_ws_run(ctx, (int)(t - ms_now()) + 1);
				drain(NULL, false);
			}
			if (pr_ws_state(ws) == PR_WS_UP)
				return 0;
			run(200, NULL, false, -1);
		}
		return -1;
	}
	if (strcmp(s, "close") == 0) {
		pr_ws_close(ws);
		show_state();
		return 0;
	}
	if (strcmp(s, "free") == 0) {
		pr_ws_free(ws);
		report("free", "free", pr_json_bool(true));
		fresh();
		return 0;
	}
	if (strncmp(s, "run:", 4) == 0)
		return run(ms_arg(arg, 0), NULL, false, -1);
	if (strncmp(s, "idle:", 5) == 0) {
		t = ms_now();
		pr_ws_run(ctx, atoi(arg + 1));
		report("idle", "ran", pr_json_int((int64_t)(ms_now() - t)));
		drain(NULL, false);
		return 0;
	}
	if (strncmp(s, "until:", 6) == 0) {
		c2 = strchr(arg + 1, ':');
		type = c2 ? pr_xstrndup(arg + 1, (size_t)(c2 - arg - 1)) : pr_xstrdup(arg + 1);
		rc = run(ms_arg(c2, 10000), type, false, -1);
		free(type);
		return rc;
	}
	if (strcmp(s, "end") == 0 || strncmp(s, "end:", 4) == 0)
		return run(ms_arg(arg, 10000), NULL, true, -1);
	if (strncmp(s, "state:", 6) == 0) {
		c2 = strchr(arg + 1, ':');
		return run(ms_arg(c2, 10000), NULL, false,
		    state_named(arg + 1, c2 ? (size_t)(c2 - arg - 1) : strlen(arg + 1)));
	}
	pr_die(PR_EXIT_USAGE, "unknown step %s", s);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "base", required_argument, NULL, 'b' },
		{ "client-id", required_argument, NULL, 'c' },
		{ "ping", required_argument, NULL, 'p' },
		{ "lws-log", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	int c, ping = 30, i, rc = 0, lws_log = -1;

	pr_init(argv[0]);
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'b': base = optarg; break;
		case 'c': client = optarg; break;
		case 'p': ping = atoi(optarg); break;
		case 'l': lws_log = atoi(optarg); break;
		default: return PR_EXIT_USAGE;
		}
	}
	if (!base || !client)
		pr_die(PR_EXIT_USAGE, "usage: ws-try --base URL --client-id ID [--ping S] STEP...");
	t0 = ms_now();
	if (!(ctx = pr_wsctx_new(ping)))
		pr_die(PR_EXIT_INFRA, "cannot create the lws context");
	/* For debugging: lws's own log levels (LLL_*), after the library
	 * set its own, since the setting is process-wide. */
	if (lws_log >= 0)
		lws_set_log_level(lws_log, NULL);
	fresh();
	for (i = optind; i < argc && rc == 0; i++) {
		if (strcmp(argv[i], "leave") == 0) {
			ws = NULL;       /* pr_wsctx_free frees it */
			break;
		}
		if (step(argv[i]) < 0) {
			pr_warn("step %s: timed out", argv[i]);
			rc = 1;
		}
	}
	pr_ws_free(ws);
	pr_wsctx_free(ctx);
	return rc;
}
