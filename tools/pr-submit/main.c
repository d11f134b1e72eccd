/*
 * pr-submit: renders patched jobs on ComfyUI servers, each exactly once,
 * in dependency order, with their outputs verified on local disk; resumes
 * after any crash from its journal. See pr-submit(1).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "lock.h"
#include "submit.h"

static const char usage[] =
    "usage: pr-submit [--server URL]... [--state DIR] [--out DIR]\n"
    "                 [--job-timeout SECONDS] [--wait-server SECONDS]\n"
    "                 [--queue-depth N] [--model-batch N] [--move-after SECONDS]\n"
    "                 [--max-output-size BYTES] [--transfer-timeout SECONDS]\n"
    "                 [--interrupt-on-exit] [--events FILE] [--no-preflight]\n"
    "                 < jobs > results\n";

static const char help[] =
    "Renders patched jobs (from pr-patch, all videos at once) on ComfyUI:\n"
    "checks every job against the server first, uploads what each stages,\n"
    "queues it when its dependencies are done, follows it, and fetches and\n"
    "verifies what it collects. One result record per job, in input order.\n"
    "Rerun it after any failure or kill: finished jobs are not run again,\n"
    "prompts still on the server are found again.\n"
    "\n"
    "  --server URL[#AFF]   a ComfyUI server, http:// or https:// (repeatable;\n"
    "                       default http://127.0.0.1:8188); #high, #low or\n"
    "                       #MODEL (comma-separated): the jobs it takes first\n"
    "  --state DIR          journal.jsonl and lock live here (default state)\n"
    "  --out DIR            collected files go here (default out)\n"
    "  --job-timeout S      interrupt and fail a job running longer (default: none)\n"
    "  --wait-server S      how long a server may be unreachable, at start and\n"
    "                       later (default 300)\n"
    "  --queue-depth N      our prompts queued on a server at once: the running\n"
    "                       one and N-1 ready to follow (default 2, at most 16)\n"
    "  --model-batch N      run jobs of the model a server has loaded first; a\n"
    "                       job waits for at most N of another model in a row\n"
    "                       (default 16; 0: plan order)\n"
    "  --move-after S       move the jobs of a server down this long to the\n"
    "                       others (default 60)\n"
    "  --max-output-size B  fail a collected file larger than B bytes (K, M, G, T:\n"
    "                       powers of 1024; default 16G)\n"
    "  --transfer-timeout S fail a file's download or upload still going after S\n"
    "                       seconds (default 3600); other calls get at most 300\n"
    "  --interrupt-on-exit  on SIGINT/SIGTERM also stop our prompts on the server\n"
    "  --events FILE        append progress events to FILE as JSON Lines\n"
    "  --no-preflight       skip the checks against /object_info\n"
    "\n"
    "Exit status: 0 all jobs succeeded, 1 some failed or were skipped, 2 bad\n"
    "input or a preflight problem (nothing submitted), 3 a server or the state\n"
    "folder could not be used.\n";

/* A byte count, with K, M, G or T (or k, m, g, t) for powers of 1024
 * ("16G"). 0 or -1. */
static int
parse_size(const char *arg, int64_t *out)
{
	static const char units[] = "KMGT";
	size_t n = strlen(arg);
	char digits[32];
	const char *u;
	uint64_t v;
	int shift = 0;

	if (n == 0 || n >= sizeof digits)
		return -1;
	memcpy(digits, arg, n + 1);
	if ((u = strchr(units, toupper((unsigned char)digits[n - 1])))) {
		shift = 10 * (int)(u - units + 1);
		digits[n - 1] = '\0';
	}
	if (pr_parse_u64(digits, &v) < 0 || v == 0 || v > (UINT64_C(1) << 62) >> shift)
		return -1;
	*out = (int64_t)(v << shift);
	return 0;
}

static void
parse_options(int argc, char **argv, struct opts *o, const char ***urls, size_t *nurls)
{
	static const struct option longopts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "state", required_argument, NULL, 'S' },
		{ "out", required_argument, NULL, 'o' },
		{ "job-timeout", required_argument, NULL, 't' },
		{ "wait-server", required_argument, NULL, 'w' },
		{ "queue-depth", required_argument, NULL, 'q' },
		{ "model-batch", required_argument, NULL, 'b' },
		{ "move-after", required_argument, NULL, 'm' },
		{ "max-output-size", required_argument, NULL, 'M' },
		{ "transfer-timeout", required_argument, NULL, 'T' },
		{ "interrupt-on-exit", no_argument, NULL, 'i' },
		{ "events", required_argument, NULL, 'e' },
		{ "no-preflight", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t n;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0)
				pr_usage_error(usage, "--server \"%s\": expected an http:// or https:// URL",
				    optarg);
			if (*nurls == MAX_SERVERS)
				pr_usage_error(usage, "more than %d --server", MAX_SERVERS);
			*urls = pr_xrealloc(*urls, (*nurls + 1) * sizeof **urls);
			(*urls)[(*nurls)++] = optarg;
			break;
		case 'S': o->state = optarg; break;
		case 'o': o->out = optarg; break;
		case 't': o->job_timeout = pr_seconds_arg(usage, "--job-timeout", optarg, 0.001, 604800); break;
		case 'w': o->wait_server = pr_seconds_arg(usage, "--wait-server", optarg, 0, 604800); break;
		case 'q':
			/* Deeper only strands more prompts when we stop or fail. */
			if (pr_parse_u64(optarg, &n) < 0 || n < 1 || n > 16)
				pr_usage_error(usage, "--queue-depth \"%s\": expected 1 to 16", optarg);
			o->queue_depth = (int)n;
			break;
		case 'b':
			if (pr_parse_u64(optarg, &n) < 0 || n > 100000)
				pr_usage_error(usage, "--model-batch \"%s\": expected 0 to 100000", optarg);
			o->model_batch = (int)n;
			break;
		case 'm': o->move_after = pr_seconds_arg(usage, "--move-after", optarg, 0, 604800); break;
		case 'M':
			if (parse_size(optarg, &o->max_output) < 0)
				pr_usage_error(usage, "--max-output-size \"%s\": expected a byte count "
				    "of at least 1, with K, M, G or T for powers of 1024", optarg);
			break;
		case 'T':
			o->transfer_timeout = pr_seconds_arg(usage, "--transfer-timeout", optarg, 1, 604800);
			break;
		case 'i': o->interrupt_on_exit = true; break;
		case 'e': o->events = optarg; break;
		case 'P': o->no_preflight = true; break;
		case 'h': pr_help_exit(usage, help);
		case 'V': pr_version_exit();
		default: pr_usage_error(usage, "unknown option");
		}
	}
	if (optind < argc)
		pr_usage_error(usage, "unexpected argument \"%s\" (jobs come on stdin)", argv[optind]);
	if (!*nurls) {
		*urls = pr_xrealloc(*urls, sizeof **urls);
		(*urls)[(*nurls)++] = "http://127.0.0.1:8188";
	}
}

void
make_uuid(char out[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof b) != 1)
		pr_die(PR_EXIT_INFRA, "no random bytes for a prompt id");
	b[6] = (b[6] & 0x0f) | 0x40;    /* version 4 */
	b[8] = (b[8] & 0x3f) | 0x80;    /* RFC 4122 variant */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	    b[13], b[14], b[15]);
}

static void
on_signal(int sig)
{
	stop_signal = sig;
}

static void
signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A closed SSH session must not end a run that costs GPU hours. */
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
}

/* The state folder: locked, its journal read and opened for appending. */
static cJSON *
open_state(struct run *R)
{
	char err[512];
	cJSON *journal;

	if (pr_mkdirs(R->o.state) < 0)
		pr_die(PR_EXIT_INFRA, "%s: %s", R->o.state, strerror(errno));
	if (pr_mkdirs(R->o.out) < 0)
		pr_die(PR_EXIT_INFRA, "%s: %s", R->o.out, strerror(errno));
	if (pr_lock_state(R->o.state, err, sizeof err) < 0)
		pr_die(PR_EXIT_INFRA, "%s", err);
	snprintf(R->journal_path, sizeof R->journal_path, "%s/journal.jsonl", R->o.state);
	if (!(journal = pr_journal_read(R->journal_path, err, sizeof err)))
		pr_die(PR_EXIT_INFRA, "%s", err);
	if (!(R->journal = pr_journal_open(R->journal_path)))
		pr_die(PR_EXIT_INFRA, "%s: %s", R->journal_path, strerror(errno));
	return journal;
}

static size_t
count(const struct run *R, enum job_state st)
{
	size_t n = 0;

	for (size_t i = 0; i < R->njobs; i++)
		n += R->jobs[i].state == st;
	return n;
}

static int
start_servers(struct run *R)
{
	char err[1024];
	int usable = 0;

	for (size_t i = 0; i < R->nservers; i++) {
		if (server_start(&R->servers[i], R->o.wait_server, err, sizeof err) < 0)
			pr_warn("%s", err);
		else
			usable++;
	}
	return usable;
}

static int
results(struct run *R)
{
	struct pr_buf out = PR_BUF_INIT;
	size_t done = 0, cached = 0, failed = 0, skipped = 0;

	for (size_t i = 0; i < R->njobs; i++) {
		struct job *j = &R->jobs[i];
		cJSON *r = job_result(R, j);
		pr_record_append(&out, r);
		cJSON_Delete(r);
		done += j->state == JOB_DONE;
		cached += j->cached;
		failed += j->state == JOB_FAILED;
		skipped += j->state != JOB_DONE && j->state != JOB_FAILED;
	}
	pr_stdout_write(&out);
	pr_buf_free(&out);
	pr_warn("%zu done (%zu cached, %d prompts executed), %zu failed, %zu skipped", done,
	    cached, R->executed, failed, skipped);
	if (R->infra)
		return PR_EXIT_INFRA;
	return failed || skipped ? PR_EXIT_FAILED : PR_EXIT_OK;
}

int
main(int argc, char **argv)
{
	struct run R = { .o = { .state = "state", .out = "out", .wait_server = 300,
	    .queue_depth = 2, .model_batch = 16, .move_after = 60,
	    .max_output = (int64_t)16 << 30, .transfer_timeout = 3600 } };
	const char **urls = NULL;
	size_t nurls = 0;
	cJSON *journal;
	int status;

	pr_init(argv[0]);
	parse_options(argc, argv, &R.o, &urls, &nurls);
	signals();
	R.t0 = pr_wall();
	R.tty = isatty(2);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	make_uuid(R.client_id);

	jobs_read(&R, stdin, "<stdin>");
	R.servers = pr_xcalloc(nurls, sizeof *R.servers);
	for (size_t i = 0; i < nurls; i++) {
		server_init(&R.servers[R.nservers], urls[i]);
		/* A server that lies gets no endless answer in: a file ends at
		 * --max-output-size or --transfer-timeout, an API answer at its
		 * size limit or CALL_TIMEOUT (a stall only ends silence). */
		if (R.servers[R.nservers].http)
			pr_http_set_bounds(R.servers[R.nservers].http, R.o.max_output,
			    (long)ceil(R.o.transfer_timeout),
			    (long)ceil(fmin(CALL_TIMEOUT, R.o.transfer_timeout)));
		R.servers[R.nservers].index = R.nservers;
		R.nservers++;
	}
	free(urls);
	const char *unused = schedule_check_affinity(&R);
	if (unused)
		pr_usage_error(usage, "--server ...#%s: no job has the pass or model \"%s\"",
		    unused, unused);
	for (size_t i = 0; i < R.nservers; i++)
		for (size_t k = 0; k < i; k++)
			if (strcmp(R.servers[i].url, R.servers[k].url) == 0)
				pr_usage_error(usage, "--server %s is given twice", R.servers[i].url);
	journal = open_state(&R);
	jobs_keys(&R);
	jobs_replay(&R, journal);
	cJSON_Delete(journal);
	if (R.o.events && !(R.events = fopen(R.o.events, "a")))
		pr_die(PR_EXIT_INFRA, "%s: %s", R.o.events, strerror(errno));

	if (count(&R, JOB_WAITING) + count(&R, JOB_QUEUED) > 0) {
		if (!start_servers(&R)) {
			R.infra = true;
			for (size_t i = 0; i < R.njobs; i++)
				if (R.jobs[i].state != JOB_DONE)
					R.jobs[i].error = job_error(NULL, NULL, NULL,
					    "no server answered; rerun when one does");
		} else {
			if (!R.o.no_preflight) {
				int problems = preflight(&R);
				if (problems)
					pr_die(PR_EXIT_USAGE, "preflight: %d problem%s found; nothing was "
					    "submitted", problems, problems == 1 ? "" : "s");
			}
			for (size_t i = 0; i < R.njobs; i++) {
				R.jobs[i].preflight_ok = true;
				/* A prompt found again on its server passed once; if
				 * it is lost it may go anywhere. */
				if (R.o.no_preflight || R.jobs[i].state != JOB_WAITING)
					R.jobs[i].runs_on = ~UINT64_C(0);
			}
			if (!(R.wsctx = pr_wsctx_new(30)))
				pr_die(PR_EXIT_INFRA, "cannot start libwebsockets");
			run_loop(&R);
		}
	}

	status = results(&R);
	pr_stdout_close();
	for (size_t i = 0; i < R.nservers; i++)
		server_free(&R.servers[i]);
	free(R.servers);
	if (R.wsctx)
		pr_wsctx_free(R.wsctx);
	for (size_t i = 0; i < R.njobs; i++) {
		cJSON_Delete(R.jobs[i].rec);
		cJSON_Delete(R.jobs[i].heard);
		cJSON_Delete(R.jobs[i].files);
		cJSON_Delete(R.jobs[i].error);
		free(R.jobs[i].deps);
	}
	free(R.jobs);
	file_hashes_free();
	pr_journal_close(R.journal);
	if (R.events)
		fclose(R.events);
	return status;
}
