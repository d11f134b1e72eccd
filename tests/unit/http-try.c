/*
 * http-try: the HTTP client (tools/lib/httpc.h) from the command line, so
 * tests can drive each call against the ComfyUI stand-in.
 *
 *   http-try get BASE PATH [MAX] [PATH [MAX]]...  (one handle: keep-alive)
 *   http-try post BASE PATH JSON [MAX] [PATH JSON [MAX]]...
 *   http-try post-empty BASE PATH [MAX]
 *   http-try upload BASE FILE NAME SUBFOLDER [overwrite]
 *   http-try download BASE PATH DEST
 *   http-try escape STRING
 *   http-try base URL
 *
 * Several calls after one BASE share the handle (keep-alive) and stop at
 * the first failure. Each call prints "status N" (download: and "size
 * N"), then the body as it came and a newline; a transport failure prints
 * "error: MESSAGE" and the exit status is 1. MAX defaults to 1 MiB. HTTP_TRY_CONNECT and HTTP_TRY_STALL
 * set the timeouts (seconds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpc.h"
#include "pr.h"

#define DEFAULT_MAX (1024 * 1024)

static noreturn void
usage(void)
{
	fprintf(stderr,
	    "usage: http-try get BASE PATH [MAX] [PATH [MAX]]...\n"
	    "       http-try post BASE PATH JSON [MAX] [PATH JSON [MAX]]...\n"
	    "       http-try post-empty BASE PATH [MAX]\n"
	    "       http-try upload BASE FILE NAME SUBFOLDER [overwrite]\n"
	    "       http-try download BASE PATH DEST\n"
	    "       http-try escape STRING\n"
	    "       http-try base URL\n");
	exit(PR_EXIT_USAGE);
}

static size_t
number(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (!*s || *end || s[0] == '-')
		usage();
	return (size_t)v;
}

static long
env_seconds(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? (long)number(v) : 0;
}

/* Prints the outcome of one call; 0, or 1 after a transport failure. */
static int
report(int rc, const struct pr_http_response *r)
{
	if (rc < 0) {
		printf("error: %s\n", r->err);
		return 1;
	}
	printf("status %ld\n", r->status);
	fwrite(r->body.data, 1, r->body.len, stdout);
	/* Bodies seldom end in one; several calls stay one per line. */
	if (r->body.len)
		putchar('\n');
	return 0;
}

static struct pr_http *
connect_to(const char *base)
{
	struct pr_http *h = pr_http_new(base);

	if (!h)
		pr_die(PR_EXIT_USAGE, "not an http(s) URL: %s", base);
	pr_http_set_timeouts(h, env_seconds("HTTP_TRY_CONNECT"),
	    env_seconds("HTTP_TRY_STALL"));
	return h;
}

int
main(int argc, char **argv)
{
	struct pr_http_response r = { 0 };
	struct pr_http *h = NULL;
	const char *cmd;
	int rc = 0, i;

	pr_init(argv[0]);
	if (argc < 3)
		usage();
	cmd = argv[1];
	if (strcmp(cmd, "escape") == 0) {
		char *e = pr_http_escape(argv[2]);

		printf("%s\n", e);
		free(e);
		return 0;
	}
	if (strcmp(cmd, "base") == 0) {
		if (!(h = pr_http_new(argv[2]))) {
			printf("invalid\n");
			return 1;
		}
		printf("%s\n", pr_http_base(h));
		pr_http_free(h);
		return 0;
	}
	if (argc < 4)
		usage();
	h = connect_to(argv[2]);
	if (strcmp(cmd, "get") == 0) {
		for (i = 3; i < argc && rc == 0; ) {
			const char *path = argv[i++];
			size_t max = DEFAULT_MAX;

			if (i < argc && argv[i][0] != '/')
				max = number(argv[i++]);
			rc = report(pr_http_get(h, path, max, &r), &r);
		}
	} else if (strcmp(cmd, "post") == 0 && argc >= 5) {
		for (i = 3; i + 1 < argc && rc == 0; ) {
			const char *path = argv[i++], *json = argv[i++];
			struct pr_json_error e;
			size_t max = DEFAULT_MAX;
			cJSON *body;

			if (i < argc && argv[i][0] != '/')
				max = number(argv[i++]);
			if (!(body = pr_json_parse(json, strlen(json), &e, NULL)))
				pr_die(PR_EXIT_USAGE, "JSON: %s", e.msg);
			rc = report(pr_http_post_json(h, path, body, max, &r), &r);
			cJSON_Delete(body);
		}
		if (i < argc && rc == 0)
			usage();
	} else if (strcmp(cmd, "post-empty") == 0 && (argc == 4 || argc == 5)) {
		rc = report(pr_http_post_empty(h, argv[3],
		    argc == 5 ? number(argv[4]) : DEFAULT_MAX, &r), &r);
	} else if (strcmp(cmd, "upload") == 0 && (argc == 6 || argc == 7)) {
		if (argc == 7 && strcmp(argv[6], "overwrite") != 0)
			usage();
		rc = report(pr_http_upload(h, argv[3], argv[4], argv[5], argc == 7, &r), &r);
	} else if (strcmp(cmd, "download") == 0 && argc == 5) {
		int64_t size = -1;

		if (pr_http_download(h, argv[3], argv[4], &size, &r) < 0) {
			printf("error: %s\n", r.err);
			rc = 1;
		} else {
			printf("status %ld\nsize %lld\n", r.status, (long long)size);
			fwrite(r.body.data, 1, r.body.len, stdout);
			if (r.body.len)
				putchar('\n');
		}
	} else {
		usage();
	}
	pr_http_response_free(&r);
	pr_http_free(h);
	if (fflush(stdout) == EOF)
		pr_die(PR_EXIT_INFRA, "stdout: write error");
	return rc;
}
