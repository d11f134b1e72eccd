/*
 * pr-shutdown: stop this RunPod pod, but only once every final is safely
 * uploaded, or at a watchdog's deadline whatever the run is doing. See
 * pr-shutdown(1).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shutdown.h"

static struct {
	const char *expect;
	bool terminate, dry_run, force, status;
	double watchdog;          /* seconds; 0: none */
	const char *watchdog_text;
	double confirm_time;
	long timeout;
} o = { .confirm_time = 60, .timeout = 20 };

static const char usage[] =
    "usage: pr-shutdown --expect FINALS [--terminate] [--dry-run] [--force]\n"
    "                   [--confirm-time S] [--timeout S] < uploads\n"
    "       pr-shutdown --watchdog DURATION [--terminate] [--confirm-time S] [--timeout S]\n"
    "       pr-shutdown --status [--timeout S]\n";

static const char help[] =
    "Stops the RunPod pod RUNPOD_POD_ID when every final that was produced\n"
    "(status success in FINALS, pr-combine's records) has a verified upload\n"
    "record on stdin (pr-upload's); otherwise says which are missing and\n"
    "leaves the pod running. The stop goes through RunPod's REST API, then\n"
    "GraphQL, then runpodctl, and counts only once the pod shows the state\n"
    "asked for. One record on stdout says what happened.\n"
    "\n"
    "  --expect FINALS      the finals that must be uploaded first\n"
    "  --terminate          terminate instead of stop (deletes the pod; the only\n"
    "                       way for a pod with a network volume)\n"
    "  --dry-run            check and say what would be done; touch nothing\n"
    "  --force              stop without checking the uploads\n"
    "  --watchdog DURATION  wait DURATION (90s, 45m, 6h), then stop the pod\n"
    "                       whatever else is happening; kill it to cancel\n"
    "  --status             only say the pod's state and price per hour; touch nothing\n"
    "  --confirm-time S     how long to wait for the pod's state (default 60)\n"
    "  --timeout S          a call that moves nothing for S seconds fails (default 20)\n"
    "\n"
    "Environment: RUNPOD_POD_ID, RUNPOD_API_KEY (never on the command line),\n"
    "RUNPOD_API_URL, RUNPOD_GRAPHQL_URL.\n"
    "\n"
    "Exit status: 0 the pod is stopped (or would be, --dry-run; or was seen,\n"
    "--status), 1 not stopped because a final is not uploaded, 2 usage or bad\n"
    "input, 3 the pod could not be stopped (or seen).\n";

/* 90, 90s, 45m, 6h, 1.5h. */
static double
duration(const char *arg)
{
	char *end;
	double v = strtod(arg, &end), mult = 1;

	if (end != arg && *end && !end[1])
		mult = *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600 : 0;
	else if (*end)
		mult = 0;
	if (end == arg || mult == 0 || !(v > 0) || v * mult > 7 * 86400)
		pr_usage_error(usage, "--watchdog \"%s\": expected a duration like 90s, 45m or 6h "
		    "(at most a week)", arg);
	return v * mult;
}

static void
parse_options(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "expect", required_argument, NULL, 'e' },
		{ "terminate", no_argument, NULL, 't' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "force", no_argument, NULL, 'f' },
		{ "watchdog", required_argument, NULL, 'w' },
		{ "status", no_argument, NULL, 's' },
		{ "confirm-time", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'e': o.expect = optarg; break;
		case 't': o.terminate = true; break;
		case 'n': o.dry_run = true; break;
		case 'f': o.force = true; break;
		case 's': o.status = true; break;
		case 'w': o.watchdog = duration(optarg); o.watchdog_text = optarg; break;
		case 'c': o.confirm_time = pr_seconds_arg(usage, "--confirm-time", optarg, 0, 3600); break;
		case 'T': o.timeout = (long)pr_seconds_arg(usage, "--timeout", optarg, 1, 3600); break;
		case 'h': pr_help_exit(usage, help);
		case 'V': pr_version_exit();
		default: pr_usage_error(usage, "unknown option");
		}
	}
	if (optind < argc)
		pr_usage_error(usage, "unexpected argument \"%s\" (upload records come on stdin)",
		    argv[optind]);
	if (o.status && (o.watchdog || o.expect || o.force || o.dry_run || o.terminate))
		pr_usage_error(usage, "--status only looks at the pod: it takes no --watchdog, "
		    "--expect, --force, --dry-run or --terminate");
	if (o.watchdog && (o.expect || o.force || o.dry_run))
		pr_usage_error(usage, "--watchdog stops the pod at its deadline: it takes no "
		    "--expect, --force or --dry-run");
	if (!o.status && !o.watchdog && !o.expect && !o.force)
		pr_usage_error(usage, "--expect FINALS is required (or --force, to stop "
		    "without checking the uploads)");
}

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* The pod's id goes into URLs: RunPod's are short alphanumerics. */
static const char *
pod_id(void)
{
	const char *id = env("RUNPOD_POD_ID");

	if (!id)
		pr_die(PR_EXIT_USAGE, "RUNPOD_POD_ID is not set: is this a RunPod pod?");
	if (strlen(id) > 64 || strspn(id, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != strlen(id))
		pr_die(PR_EXIT_USAGE, "RUNPOD_POD_ID \"%.64s\": not a pod id", id);
	return id;
}

static char *
api_url(const char *var, const char *dflt)
{
	const char *v = env(var);
	size_t n;

	if (!v)
		return pr_xstrdup(dflt);
	n = strlen(v);
	while (n > 0 && v[n - 1] == '/')
		n--;
	if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
		pr_die(PR_EXIT_USAGE, "%s \"%.100s\": expected an http(s) URL", var, v);
	return pr_xstrndup(v, n);
}

static void
emit(const struct pod *p, const char *status, const char *reason, int nfinals,
    const char *error)
{
	struct pr_buf b = PR_BUF_INIT;
	cJSON *rec = pr_json_object();

	pr_json_set_string(rec, "pod", p->id);
	pr_json_set_string(rec, "action", o.status ? "look" : o.terminate ? "terminate" : "stop");
	pr_json_set_string(rec, "status", status);
	pr_json_set_string(rec, "reason", reason);
	if (nfinals >= 0)
		pr_json_set(rec, "finals", pr_json_int(nfinals));
	if (p->via)
		pr_json_set_string(rec, "via", p->via);
	if (p->status[0])
		pr_json_set_string(rec, "desiredStatus", p->status);
	if (p->cost_per_hr >= 0)
		pr_json_set(rec, "cost_per_hr", cJSON_CreateNumber(p->cost_per_hr));
	if (error)
		pr_json_set_string(rec, "error", error);
	pr_record_append(&b, rec);
	pr_stdout_write(&b);
	pr_buf_free(&b);
	cJSON_Delete(rec);
}

int
main(int argc, char **argv)
{
	struct pod p = { .cost_per_hr = -1 };
	const char *reason;
	char why[512] = "", err[1024];
	int nfinals = -1, rc;

	pr_init(argv[0]);
	parse_options(argc, argv);
	p.id = pod_id();
	p.key = env("RUNPOD_API_KEY");
	p.rest = api_url("RUNPOD_API_URL", "https://rest.runpod.io/v1");
	p.graphql = api_url("RUNPOD_GRAPHQL_URL", "https://api.runpod.io/graphql");
	p.confirm_time = o.confirm_time;
	if (!(p.http = pr_http_new(p.rest)))
		pr_die(PR_EXIT_USAGE, "RUNPOD_API_URL: not an http(s) URL");
	pr_http_set_timeouts(p.http, o.timeout, o.timeout);

	if (o.status) {
		/* What pipeline.sh asks before the report, for the run's cost. */
		if (!pod_look(&p)) {
			snprintf(err, sizeof err, "cannot see pod %s: %s", p.id, p.key ?
			    "neither RunPod API answered" : "RUNPOD_API_KEY is not set");
			pr_warn("%s", err);
			emit(&p, "failed", "--status", -1, err);
			rc = PR_EXIT_INFRA;
		} else {
			emit(&p, "seen", "--status", -1, NULL);
			rc = PR_EXIT_OK;
		}
		goto out;
	}
	if (o.watchdog) {
		/* Killing this process is how a finished run cancels it. */
		pr_sleep(o.watchdog);
		pr_warn("watchdog: %s passed and the run has not finished: %s pod %s now",
		    o.watchdog_text, o.terminate ? "terminating" : "stopping", p.id);
		reason = "watchdog";
	} else if (o.force) {
		pr_warn("--force: %s pod %s WITHOUT checking that the finals are uploaded",
		    o.terminate ? "terminating" : "stopping", p.id);
		reason = "--force";
	} else {
		if (check_uploads(o.expect, why, sizeof why, &nfinals) != 0) {
			pr_warn("not stopping pod %s: %s", p.id, why);
			emit(&p, "refused", "uploads missing", nfinals, why);
			rc = PR_EXIT_FAILED;
			goto out;
		}
		reason = "every final uploaded";
	}
	if (o.dry_run) {
		pod_look(&p);
		fprintf(stderr, "%s: would %s pod %s (%s)%s%s\n", pr_progname,
		    o.terminate ? "terminate" : "stop", p.id, reason,
		    p.status[0] ? "; it is now " : "", p.status);
		emit(&p, "dry-run", reason, nfinals, NULL);
		rc = PR_EXIT_OK;
		goto out;
	}
	pod_look(&p);
	if (pod_stop(&p, o.terminate, err, sizeof err) < 0) {
		pr_warn("%s", err);
		emit(&p, "failed", reason, nfinals, err);
		rc = PR_EXIT_INFRA;
		goto out;
	}
	fprintf(stderr, "%s: pod %s %s (%s, via %s)\n", pr_progname, p.id,
	    o.terminate ? "terminated" : "stopped", reason, p.via);
	emit(&p, o.terminate ? "terminated" : "stopped", reason, nfinals, NULL);
	rc = PR_EXIT_OK;
out:
	pr_stdout_close();
	pr_http_free(p.http);
	free(p.rest);
	free(p.graphql);
	return rc;
}
