/*
 * pr-report: what a run made and where its time went, as seam sheets and
 * one static page. See pr-report(1).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "err.h"
#include "file.h"
#include "out.h"
#include "report.h"

struct opts o = { .state = "state", .out = "out", .started = -1, .price = -1 };

static const char usage[] =
    "usage: pr-report [--state DIR] [--out DIR] [--started EPOCH] [--price USD]\n"
    "                 < finals > reports\n";

static const char help[] =
    "Shows the run: for each video of pr-combine's final records, a seam sheet\n"
    "OUT/report/VIDEO_seams.png (at every join of two chunks the last kept frame\n"
    "before it, the first kept frame after it and the reference image the next\n"
    "chunk was given, labelled with job ids and frame numbers), and one page,\n"
    "OUT/report/index.html, with each video's final, seams, GPU timeline,\n"
    "failures and retries, and the run's totals. Reads STATE/results.jsonl,\n"
    "STATE/VIDEO/plan.jsonl and STATE/pod.jsonl or STATE/shutdown.jsonl as well.\n"
    "Writes one record per video, then one for the page.\n"
    "\n"
    "  --state DIR      the run's state folder (default state)\n"
    "  --out DIR        where the finals are and report/ goes (default out)\n"
    "  --started EPOCH  when the run began, in seconds since 1970: the wall\n"
    "                   time runs from it (default: from the first prompt sent)\n"
    "  --price USD      the pod's price per hour, for the cost (default: the one\n"
    "                   RunPod gave during the run, else at the last shutdown)\n"
    "\n"
    "Exit status: 0 the report is written, 1 written but a seam sheet could\n"
    "not be made (its record says why), 2 bad input (nothing written), 3 the\n"
    "output folder or ffmpeg could not be used.\n";

static void
parse_options(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "state", required_argument, NULL, 'S' },
		{ "out", required_argument, NULL, 'o' },
		{ "started", required_argument, NULL, 's' },
		{ "price", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'S': o.state = optarg; break;
		case 'o': o.out = optarg; break;
		case 's':
			o.started = pr_number_arg(usage, "--started", optarg, 0, floor(pr_wall()),
			    "a time in seconds since 1970");
			break;
		case 'p':
			o.price = pr_number_arg(usage, "--price", optarg, 0, 1e6, "US dollars per hour");
			break;
		case 'h': pr_help_exit(usage, help);
		case 'V': pr_version_exit();
		default: pr_usage_error(usage, "unknown option");
		}
	}
	if (optind < argc)
		pr_usage_error(usage, "unexpected argument \"%s\" (finals come on stdin)",
		    argv[optind]);
}

static cJSON *
num_or_null(int64_t n)
{
	return n >= 0 ? pr_json_int(n) : pr_json_null();
}

static cJSON *
tile_record(const struct tile *t)
{
	cJSON *rec = pr_json_object(), *box;

	cJSON_AddItemToObject(rec, "job", t->job ? pr_json_string(t->job) : pr_json_null());
	cJSON_AddItemToObject(rec, "frame", num_or_null(t->frame));
	cJSON_AddItemToObject(rec, "source", num_or_null(t->source));
	cJSON_AddItemToObject(rec, "final_frame", num_or_null(t->final_frame));
	cJSON_AddItemToObject(rec, "from", t->from ? pr_json_string(t->from) : pr_json_null());
	if (t->from && strcmp(t->from, "file") == 0)
		pr_json_set_string(rec, "path", t->file);
	if (t->box[2] > 0) {
		box = pr_json_array();
		for (int i = 0; i < 4; i++)
			cJSON_AddItemToArray(box, pr_json_int(t->box[i]));
	} else {
		box = pr_json_null();
	}
	cJSON_AddItemToObject(rec, "box", box);
	return rec;
}

static cJSON *
video_record(const struct video *v)
{
	cJSON *rec = pr_json_object(), *seams = pr_json_array();

	pr_json_set_string(rec, "video", v->name);
	pr_json_set_string(rec, "status", v->status);
	if (v->error)
		pr_json_set_string(rec, "error", v->error);
	if (v->sheet) {
		pr_json_set_string(rec, "path", v->sheet);
		pr_json_set_int(rec, "width", v->sheet_w);
		pr_json_set_int(rec, "height", v->sheet_h);
		if (v->unlabelled)
			pr_json_set(rec, "labels", pr_json_bool(false));
	}
	if (v->sheet_error)
		pr_json_set_string(rec, "sheet_error", v->sheet_error);
	for (size_t i = 0; i < v->nseams; i++) {
		cJSON *s = pr_json_object();
		pr_json_set_int(s, "chunk", v->seams[i].chunk);
		for (int t = 0; t < 3; t++)
			cJSON_AddItemToObject(s, v->seams[i].t[t].what, tile_record(&v->seams[i].t[t]));
		cJSON_AddItemToArray(seams, s);
	}
	cJSON_AddItemToObject(rec, "seams", seams);
	return rec;
}

static cJSON *
prompts_record(const struct run *r)
{
	cJSON *p = pr_json_object();

	pr_json_set_int(p, "run", (int64_t)r->ran);
	pr_json_set_int(p, "cached", (int64_t)r->cached);
	pr_json_set_int(p, "retried", r->retried);
	pr_json_set_int(p, "failed", (int64_t)r->failed);
	pr_json_set_int(p, "skipped", (int64_t)r->skipped);
	return p;
}

/* GPU time per server, in seconds to the millisecond. */
static cJSON *
servers_record(const struct run *r)
{
	cJSON *list = pr_json_array();
	char num[32];

	for (size_t i = 0; i < r->nservers; i++) {
		cJSON *s = pr_json_object();
		pr_json_set_string(s, "server", r->servers[i].server);
		snprintf(num, sizeof num, "%.3f", r->servers[i].busy);
		pr_json_set(s, "gpu_busy", pr_json_number_text(num));
		pr_json_set_int(s, "prompts", (int64_t)r->servers[i].prompts);
		pr_json_set_int(s, "model_loads", (int64_t)r->servers[i].loads);
		cJSON_AddItemToArray(list, s);
	}
	return list;
}

/* A folder of our own for ffmpeg's pieces, beside the report so the
 * finished sheets are renamed into place, never copied. One left by a
 * killed pr-report is removed. */
static char *
make_tmpdir(void)
{
	char *dir = out_path("report");
	char *tmp;
	DIR *d;
	struct dirent *e;

	if (pr_mkdirs(dir) < 0)
		pr_die(PR_EXIT_INFRA, "%s: %s", dir, strerror(errno));
	if ((d = opendir(dir))) {
		while ((e = readdir(d)))
			if (strncmp(e->d_name, ".tmp-", 5) == 0) {
				char *old = pr_xasprintf("%s/%s", dir, e->d_name);
				pr_empty_dir(old);
				rmdir(old);
				free(old);
			}
		closedir(d);
	}
	tmp = pr_xasprintf("%s/.tmp-XXXXXX", dir);
	if (!mkdtemp(tmp))
		pr_die(PR_EXIT_INFRA, "%s: %s", dir, strerror(errno));
	free(dir);
	return tmp;
}

int
main(int argc, char **argv)
{
	struct pr_buf out = PR_BUF_INIT;
	struct run r;
	char *tmp, *page;
	size_t done = 0;
	int status = PR_EXIT_OK;
	cJSON *rec;

	pr_init(argv[0]);
	parse_options(argc, argv);
	gather(&r);

	tmp = make_tmpdir();
	for (size_t i = 0; i < r.nvideos; i++) {
		struct video *v = &r.videos[i];
		plan_seams(v);
		if (write_sheet(v, tmp) < 0) {
			pr_warn("%s: no seam sheet: %s", v->name, v->sheet_error);
			status = PR_EXIT_FAILED;
		}
		done += strcmp(v->status, "success") == 0;
		rec = video_record(v);
		pr_record_append(&out, rec);
		cJSON_Delete(rec);
	}
	pr_empty_dir(tmp);
	rmdir(tmp);
	free(tmp);

	page = out_path("report/index.html");
	if (write_page(&r, page) < 0)
		pr_die(PR_EXIT_INFRA, "%s: %s", page, strerror(errno));
	free(page);
	rec = pr_json_object();
	pr_json_set_string(rec, "report", "index");
	pr_json_set_string(rec, "path", "report/index.html");
	pr_json_set_int(rec, "videos", (int64_t)r.nvideos);
	pr_json_set_int(rec, "finished", (int64_t)done);
	pr_json_set_int(rec, "failed", (int64_t)(r.nvideos - done));
	pr_json_set(rec, "prompts", prompts_record(&r));
	pr_json_set(rec, "servers", servers_record(&r));
	pr_record_append(&out, rec);
	cJSON_Delete(rec);

	pr_stdout_write(&out);
	pr_stdout_close();
	pr_buf_free(&out);
	run_free(&r);
	return status;
}
