/*
 * pr-patch: job records in; the same records out with the ComfyUI workflow
 * each job submits, the files it stages and the outputs it collects. The
 * node edits come from rules files beside the workflows, never from here.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pr.h"
#include "rules.h"
#include "workflow.h"

static const char usage[] =
    "usage: pr-patch [--workflows DIR] [--state DIR | --no-state] [--explain] < jobs > patched\n"
    "       pr-patch --list-nodes WORKFLOW\n";

static const char help[] =
    "Adds to every job record its patched ComfyUI workflow (\"workflow\"), the\n"
    "files to upload first (\"stage\"), the outputs to fetch (\"collect\") and the\n"
    "files to make from them (\"derive\"), by applying the rules file of the job's\n"
    "kind to its base workflow: render jobs use prompt.json + prompt.rules.json,\n"
    "combine jobs combine.json + combine.rules.json.\n"
    "\n"
    "  --workflows DIR   where the workflows and rules are (default: workflows)\n"
    "  --state DIR       also write each workflow, pretty-printed, to\n"
    "                    DIR/<video>/workflows/<job>.json (default: state)\n"
    "  --no-state        do not write those files\n"
    "  --explain         describe every change, per job, on stderr\n"
    "  --list-nodes WF   print one record per node of a workflow (id, class_type,\n"
    "                    title, inputs) to help write rules, then exit\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 done, 2 bad input or rules (nothing written), 3 cannot write.\n"
    "See pr-patch(1) and docs/FORMATS.md.\n";

/* The base workflow and rules of one job kind, loaded on first use. */
struct kind {
	const char *name;        /* "render", "combine" */
	const char *workflow;    /* file names in --workflows */
	const char *rules;
	cJSON *wf;
	struct pr_rules *r;
};

struct job {
	cJSON *rec;
	size_t line;
	const char *id, *video, *name;   /* name: the id's part after "<video>/" */
	struct kind *kind;
};

struct opts {
	const char *workflows;
	const char *state;     /* NULL: --no-state */
	bool explain;
};

static void
load_kind(const struct opts *o, struct kind *k)
{
	char err[512], wpath[4096], rpath[4096];
	int status;

	if (k->wf)
		return;
	snprintf(wpath, sizeof wpath, "%s/%s", o->workflows, k->workflow);
	snprintf(rpath, sizeof rpath, "%s/%s", o->workflows, k->rules);
	if (pr_workflow_load(wpath, &k->wf, &status, err, sizeof err) < 0)
		pr_die(status, "%s", err);
	if (!(k->r = pr_rules_load(rpath, &status, err, sizeof err)))
		pr_die(status, "%s", err);
}

/* A scalar is quoted as written (cut short), so "mid" or -1 shows what
 * is wrong; an array or object is named by its type. */
static void
bad_field(const struct job *j, const char *field, const char *want)
{
	const cJSON *v = pr_json_get(j->rec, field);
	char shown[64], *text;
	size_t len;

	if (!v || cJSON_IsArray(v) || cJSON_IsObject(v))
		pr_die(PR_EXIT_USAGE, "<stdin>:%zu: field \"%s\": expected %s, found %s",
		    j->line, field, want, v ? pr_json_type_name(v) : "nothing");
	text = pr_json_print(v, 0);
	len = strlen(text);
	if (len > 40) {
		len = 40;
		while (len > 0 && ((unsigned char)text[len] & 0xc0) == 0x80)
			len--;
	}
	snprintf(shown, sizeof shown, "%.*s%s", (int)len, text, text[len] ? "..." : "");
	free(text);
	pr_die(PR_EXIT_USAGE, "<stdin>:%zu: field \"%s\": expected %s, found %s", j->line,
	    field, want, shown);
}

/* Checks what pr-patch itself relies on; everything else passes through. */
static void
check_job(struct job *j, struct kind *kinds)
{
	const char *kind, *slash;
	const cJSON *pass;
	char why[128];
	size_t vlen;
	int64_t i;

	if (!(j->id = pr_json_get_string(j->rec, "id")))
		bad_field(j, "id", "a string like \"clipA/job_001\"");
	if (!(j->video = pr_json_get_string(j->rec, "video")))
		bad_field(j, "video", "a string");
	if (pr_video_name_check(j->video, why, sizeof why) < 0)
		pr_die(PR_EXIT_USAGE, "<stdin>:%zu: field \"video\": \"%s\" %s", j->line, j->video,
		    why);
	vlen = strlen(j->video);
	slash = strchr(j->id, '/');
	if (!slash || (size_t)(slash - j->id) != vlen || strncmp(j->id, j->video, vlen) != 0)
		pr_die(PR_EXIT_USAGE, "<stdin>:%zu: field \"id\": \"%s\" must be \"%s/<name>\"",
		    j->line, j->id, j->video);
	j->name = slash + 1;
	if (pr_video_name_check(j->name, why, sizeof why) < 0)
		pr_die(PR_EXIT_USAGE, "<stdin>:%zu: field \"id\": the name \"%s\" %s", j->line,
		    j->name, why);
	if (!(kind = pr_json_get_string(j->rec, "kind")))
		bad_field(j, "kind", "\"render\" or \"combine\"");
	for (j->kind = kinds; j->kind->name; j->kind++)
		if (strcmp(kind, j->kind->name) == 0)
			break;
	if (!j->kind->name)
		pr_die(PR_EXIT_USAGE, "<stdin>:%zu: field \"kind\": expected \"render\" or "
		    "\"combine\", found \"%s\"", j->line, kind);
	if (pr_json_get(j->rec, "vars") && !cJSON_IsObject(pr_json_get(j->rec, "vars")))
		bad_field(j, "vars", "an object");
	/* The fields rule conditions read: a wrong one would match no
	 * condition and patch the job silently as neither pass. */
	pass = pr_json_get(j->rec, "pass");
	if (pass && (!cJSON_IsString(pass) || (strcmp(pass->valuestring, "high") != 0 &&
	    strcmp(pass->valuestring, "low") != 0)))
		bad_field(j, "pass", "\"high\" or \"low\"");
	if (pr_json_get(j->rec, "chunk") &&
	    (pr_json_to_i64(pr_json_get(j->rec, "chunk"), &i) < 0 || i < 0))
		bad_field(j, "chunk", "a whole number from 0");
	if (pr_json_get(j->rec, "n") &&
	    (pr_json_to_i64(pr_json_get(j->rec, "n"), &i) < 0 || i < 1))
		bad_field(j, "n", "a whole number from 1");
}

static struct job *
read_jobs(size_t *count, struct kind *kinds)
{
	struct pr_jsonl in;
	struct job *jobs = NULL;
	size_t n = 0, cap = 0, i;
	cJSON *rec;
	int rc;

	pr_jsonl_open(&in, stdin, "<stdin>");
	while ((rc = pr_jsonl_next(&in, &rec)) > 0) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			jobs = pr_xrealloc(jobs, cap * sizeof *jobs);
		}
		jobs[n] = (struct job){ .rec = rec, .line = in.line };
		check_job(&jobs[n], kinds);
		for (i = 0; i < n; i++)
			if (strcmp(jobs[i].id, jobs[n].id) == 0)
				pr_die(PR_EXIT_USAGE, "<stdin>:%zu: job \"%s\" again (first on line %zu)",
				    jobs[n].line, jobs[n].id, jobs[i].line);
		n++;
	}
	if (rc < 0)
		pr_die(in.status, "%s", in.err);
	pr_jsonl_close(&in);
	*count = n;
	return jobs;
}

static void
patch(const struct opts *o, struct job *j)
{
	struct pr_patched p;
	char err[1024];
	int64_t mult;

	load_kind(o, j->kind);
	if (pr_rules_apply(j->kind->r, j->kind->wf, j->rec, o->explain ? stderr : NULL, &p,
	    err, sizeof err) < 0)
		pr_die(PR_EXIT_USAGE, "%s", err);
	/* ComfyUI's answer to a cycle names no node; say which here. */
	if (pr_workflow_find_cycle(p.workflow, err, sizeof err) < 0)
		pr_die(PR_EXIT_USAGE, "%s/%s: job %s: nodes link in a cycle (%s), which ComfyUI "
		    "refuses", o->workflows, j->kind->workflow, j->id, err);
	pr_json_set(j->rec, "workflow", p.workflow);
	pr_json_set(j->rec, "stage", p.stage);
	pr_json_set(j->rec, "collect", p.collect);
	pr_json_set(j->rec, "derive", p.derive);
	if ((mult = pr_rules_frame_multiplier(j->kind->r)) > 0)
		pr_json_set(j->rec, "frame_multiplier", pr_json_int(mult));
}

/* The pretty copy a user reads and diffs; written only once every job has
 * been patched, so bad rules leave the old copies alone. */
static void
write_state(const struct opts *o, const struct job *j)
{
	struct pr_buf b = PR_BUF_INIT, path = PR_BUF_INIT;

	pr_json_write(&b, pr_json_get(j->rec, "workflow"), 2);
	pr_buf_addc(&b, '\n');
	pr_buf_printf(&path, "%s/%s/workflows/%s.json", o->state, j->video, j->name);
	if (pr_file_write_atomic(path.data, b.data, b.len) < 0)
		pr_die(PR_EXIT_INFRA, "%s: %s", path.data, strerror(errno));
	pr_buf_free(&b);
	pr_buf_free(&path);
}

static int
list_nodes(const char *path)
{
	struct pr_buf out = PR_BUF_INIT;
	const cJSON *node, *in;
	char err[512];
	cJSON *wf, *rec, *names;
	int status;

	if (pr_workflow_load(path, &wf, &status, err, sizeof err) < 0)
		pr_die(status, "%s", err);
	for (node = wf->child; node; node = node->next) {
		const char *title = pr_workflow_title(node);

		rec = pr_json_object();
		names = pr_json_array();
		pr_json_set_string(rec, "id", node->string);
		pr_json_set_string(rec, "class_type", pr_workflow_class(node));
		pr_json_set(rec, "title", title ? pr_json_string(title) : cJSON_CreateNull());
		for (in = pr_json_get(node, "inputs")->child; in; in = in->next)
			cJSON_AddItemToArray(names, pr_json_string(in->string));
		pr_json_set(rec, "inputs", names);
		pr_record_append(&out, rec);
		cJSON_Delete(rec);
	}
	cJSON_Delete(wf);
	pr_stdout_write(&out);
	pr_buf_free(&out);
	pr_stdout_close();
	return PR_EXIT_OK;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "workflows", required_argument, NULL, 'w' },
		{ "state", required_argument, NULL, 's' },
		{ "no-state", no_argument, NULL, 'S' },
		{ "explain", no_argument, NULL, 'e' },
		{ "list-nodes", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct kind kinds[] = {
		{ "render", "prompt.json", "prompt.rules.json", NULL, NULL },
		{ "combine", "combine.json", "combine.rules.json", NULL, NULL },
		{ NULL, NULL, NULL, NULL, NULL },
	};
	struct opts o = { "workflows", "state", false };
	struct pr_buf out = PR_BUF_INIT;
	const char *list = NULL;
	struct job *jobs;
	size_t n, i;
	int c;

	pr_init(argv[0]);
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'w': o.workflows = optarg; break;
		case 's': o.state = optarg; break;
		case 'S': o.state = NULL; break;
		case 'e': o.explain = true; break;
		case 'l': list = optarg; break;
		case 'h': pr_help_exit(usage, help);
		case 'V': pr_version_exit();
		default: pr_usage_error(usage, NULL);
		}
	}
	if (optind < argc)
		pr_usage_error(usage, "unexpected argument \"%s\" (jobs are read from stdin)",
		    argv[optind]);
	if (o.state && !*o.state)
		pr_usage_error(usage, "--state needs a directory");
	if (list)
		return list_nodes(list);

	jobs = read_jobs(&n, kinds);
	for (i = 0; i < n; i++)
		patch(&o, &jobs[i]);
	for (i = 0; o.state && i < n; i++)
		write_state(&o, &jobs[i]);
	for (i = 0; i < n; i++) {
		pr_record_append(&out, jobs[i].rec);
		cJSON_Delete(jobs[i].rec);
	}
	pr_stdout_write(&out);
	pr_stdout_close();

	pr_buf_free(&out);
	free(jobs);
	for (i = 0; kinds[i].name; i++) {
		cJSON_Delete(kinds[i].wf);
		pr_rules_free(kinds[i].r);
	}
	return PR_EXIT_OK;
}
