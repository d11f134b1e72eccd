/*
 * Where the bearer token comes from, first match wins (pr-upload(1),
 * AUTHENTICATION):
 *   1. GOOGLE_APPLICATION_CREDENTIALS: a service-account key file;
 *   2. GOOGLE_APPLICATION_CREDENTIALS_JSON: the key's JSON itself, which is
 *      how a RunPod secret arrives ({{ RUNPOD_SECRET_name }});
 *   3. --token-command: a command that prints a token (gcloud auth
 *      print-access-token), run again when the token is refused or old;
 *   4. GCS_OAUTH_TOKEN: a token, used as is;
 *   5. the metadata server named by GCE_METADATA_HOST;
 *   6. with STORAGE_EMULATOR_HOST, no token at all;
 *   7. the GCE metadata server, metadata.google.internal, with a short
 *      timeout: RunPod has none.
 * Tokens and keys live in memory only: never in argv, files or messages.
 */
/* explicit_bzero(3) */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upload.h"

#define SCOPE "https://www.googleapis.com/auth/devstorage.read_write"
/* A key or token JSON bigger than this is not one. */
#define KEY_MAX (64 * 1024)
/* What a command's token is assumed to live when it does not say:
 * gcloud's live an hour. */
#define COMMAND_LIFETIME 1800

enum source { ANONYMOUS, KEY_FILE, KEY_VAR, COMMAND, TOKEN_VAR, METADATA };

struct auth {
	enum source source;
	struct pr_http *http;     /* the storage handle: whole-URL calls */
	cJSON *key;
	char *metadata;           /* the metadata server's host[:port] */
	char *token;
	double expires;           /* CLOCK_REALTIME seconds; 0 = unknown */
	double lifetime;
	int fetches;
};

static const char *const names[] = {
	[ANONYMOUS] = "no credentials (emulator)",
	[KEY_FILE] = "service-account key (GOOGLE_APPLICATION_CREDENTIALS)",
	[KEY_VAR] = "service-account key (GOOGLE_APPLICATION_CREDENTIALS_JSON)",
	[COMMAND] = "--token-command",
	[TOKEN_VAR] = "GCS_OAUTH_TOKEN",
	[METADATA] = "metadata server",
};

const char *
auth_source(const struct auth *a)
{
	return names[a->source];
}

int
auth_fetches(const struct auth *a)
{
	return a->fetches;
}

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static cJSON *
parse_key(const char *text, size_t n, const char *what, char *err, size_t len)
{
	struct pr_json_error e;
	cJSON *key;

	/* Say where, never what: the text holds the private key. */
	if (!(key = pr_json_parse(text, n, &e, NULL)) || !cJSON_IsObject(key)) {
		cJSON_Delete(key);
		snprintf(err, len, "%s: not a JSON service-account key", what);
		return NULL;
	}
	if (pr_json_get_string(key, "type") &&
	    strcmp(pr_json_get_string(key, "type"), "service_account") != 0) {
		snprintf(err, len, "%s: type \"%.40s\": only service-account keys are supported",
		    what, pr_json_get_string(key, "type"));
		cJSON_Delete(key);
		return NULL;
	}
	return key;
}

struct auth *
auth_new(struct pr_http *h, bool emulator, char *err, size_t len)
{
	struct auth *a = pr_xcalloc(1, sizeof *a);
	struct pr_buf b = PR_BUF_INIT;
	const char *v;
	char *what;

	a->http = h;
	if ((v = env("GOOGLE_APPLICATION_CREDENTIALS"))) {
		a->source = KEY_FILE;
		what = pr_xasprintf("GOOGLE_APPLICATION_CREDENTIALS (%s)", v);
		if (pr_file_read(v, KEY_MAX, &b) < 0)
			snprintf(err, len, "%s: %s", what, strerror(errno));
		else
			a->key = parse_key(b.data, b.len, what, err, len);
		free(what);
		pr_buf_free(&b);
		if (!a->key)
			goto fail;
	} else if ((v = env("GOOGLE_APPLICATION_CREDENTIALS_JSON"))) {
		a->source = KEY_VAR;
		if (!(a->key = parse_key(v, strlen(v), "GOOGLE_APPLICATION_CREDENTIALS_JSON", err, len)))
			goto fail;
	} else if (o.token_command) {
		a->source = COMMAND;
	} else if ((v = env("GCS_OAUTH_TOKEN"))) {
		a->source = TOKEN_VAR;
		a->token = pr_xstrdup(v);
	} else if ((v = env("GCE_METADATA_HOST"))) {
		a->source = METADATA;
		a->metadata = pr_xstrdup(v);
	} else if (emulator) {
		a->source = ANONYMOUS;
	} else {
		a->source = METADATA;
		a->metadata = pr_xstrdup("metadata.google.internal");
	}
	return a;
fail:
	auth_free(a);
	return NULL;
}

void
auth_free(struct auth *a)
{
	if (!a)
		return;
	cJSON_Delete(a->key);
	free(a->metadata);
	free(a->token);
	free(a);
}

/* {"access_token": ..., "expires_in": N} into a->token. */
static int
take_token(struct auth *a, const struct pr_http_response *r, const char *from,
    char *err, size_t len)
{
	struct pr_json_error e;
	const char *tok;
	int64_t ttl = 0;
	cJSON *j;

	j = pr_json_parse(r->body.data, r->body.len, &e, NULL);
	tok = pr_json_get_string(j, "access_token");
	if (!tok || !*tok || strpbrk(tok, "\r\n")) {
		snprintf(err, len, "%s: the answer has no access_token", from);
		cJSON_Delete(j);
		return -1;
	}
	free(a->token);
	a->token = pr_xstrdup(tok);
	if (pr_json_to_i64(pr_json_get(j, "expires_in"), &ttl) < 0 || ttl <= 0)
		ttl = COMMAND_LIFETIME;
	a->lifetime = (double)ttl;
	a->expires = pr_wall() + (double)ttl;
	a->fetches++;
	cJSON_Delete(j);
	return 0;
}

/* "error: error_description" from an OAuth error body, or the status. */
static void
refusal(const struct pr_http_response *r, const char *from, char *err, size_t len)
{
	struct pr_json_error e;
	cJSON *j = pr_json_parse(r->body.data, r->body.len, &e, NULL);
	const char *what = pr_json_get_string(j, "error");
	const char *why = pr_json_get_string(j, "error_description");

	if (what)
		snprintf(err, len, "%s refused: HTTP %ld: %.60s%s%.160s", from, r->status,
		    what, why ? ": " : "", why ? why : "");
	else
		snprintf(err, len, "%s refused: HTTP %ld", from, r->status);
	cJSON_Delete(j);
}

static int
fetch_with_key(struct auth *a, char *err, size_t len)
{
	struct pr_http_response r = { 0 };
	struct pr_http_call c = { .method = "POST", .url = true, .max = 64 * 1024 };
	static const char *const hdrs[] = {
		"Content-Type: application/x-www-form-urlencoded", NULL,
	};
	const char *uri = NULL;
	char why[256], *jwt, *body, *from;
	struct retry t;
	int rc = -1, got;

	if (!(jwt = jwt_assertion(a->key, SCOPE, (long)pr_wall(), &uri, why, sizeof why))) {
		snprintf(err, len, "%s: %s", names[a->source], why);
		return -1;
	}
	body = pr_xasprintf("grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer"
	    "&assertion=%s", jwt);
	from = pr_xasprintf("the token endpoint %.200s", uri);
	c.path = uri;
	c.headers = hdrs;
	c.data = body;
	c.data_len = strlen(body);
	retry_start(&t);
	for (;;) {
		got = pr_http_call(a->http, &c, &r);
		if (got == 0 && r.status == 200) {
			rc = take_token(a, &r, from, err, len);
			break;
		}
		if (!retry_worth(got, r.status) || !retry_wait(&t, &r)) {
			if (got < 0)
				snprintf(err, len, "%s", r.err);
			else
				refusal(&r, from, err, len);
			break;
		}
	}
	pr_http_response_free(&r);
	free(from);
	free(body);
	free(jwt);
	return rc;
}

static int
fetch_from_metadata(struct auth *a, char *err, size_t len)
{
	struct pr_http_response r = { 0 };
	static const char *const hdrs[] = { "Metadata-Flavor: Google", NULL };
	struct pr_http_call c = {
		.method = "GET", .headers = hdrs, .max = 64 * 1024, .idempotent = true,
		.path = "/computeMetadata/v1/instance/service-accounts/default/token",
	};
	char *base = pr_xasprintf("http://%s", a->metadata);
	struct pr_http *h = pr_http_new(base);
	int rc = -1;

	if (!h) {
		snprintf(err, len, "GCE_METADATA_HOST \"%.100s\": not a host[:port]", a->metadata);
		free(base);
		return -1;
	}
	/* Off Google Cloud there is nobody there: find out fast. */
	pr_http_set_timeouts(h, 1, 2);
	if (pr_http_call(h, &c, &r) < 0)
		snprintf(err, len, "no credentials: set GOOGLE_APPLICATION_CREDENTIALS, "
		    "GOOGLE_APPLICATION_CREDENTIALS_JSON, --token-command or GCS_OAUTH_TOKEN "
		    "(no metadata server either: %s)", r.err);
	else if (r.status != 200)
		refusal(&r, "the metadata server", err, len);
	else
		rc = take_token(a, &r, "the metadata server", err, len);
	pr_http_response_free(&r);
	pr_http_free(h);
	free(base);
	return rc;
}

static int
fetch_from_command(struct auth *a, char *err, size_t len)
{
	char *argv[] = { "/bin/sh", "-c", (char *)o.token_command, NULL };
	struct pr_buf out = PR_BUF_INIT, cerr = PR_BUF_INIT;
	size_t n;
	int st;

	st = pr_run(argv, &out, 64 * 1024, &cerr);
	n = strcspn(out.data ? out.data : "", "\r\n");
	if (st != 0 || n == 0) {
		/* The command's own words help; its output may be a token. */
		size_t e = cerr.len;
		while (e > 0 && (cerr.data[e - 1] == '\n' || cerr.data[e - 1] == '\r'))
			e--;
		size_t s = e;
		while (s > 0 && cerr.data[s - 1] != '\n')
			s--;
		if (st < 0)
			snprintf(err, len, "--token-command: cannot run /bin/sh: %s", strerror(errno));
		else if (st != 0)
			snprintf(err, len, "--token-command: exit status %d%s%.160s", st,
			    e > s ? ": " : "", e > s ? cerr.data + s : "");
		else
			snprintf(err, len, "--token-command: printed no token");
		pr_buf_free(&out);
		pr_buf_free(&cerr);
		return -1;
	}
	free(a->token);
	a->token = pr_xstrndup(out.data, n);
	a->lifetime = COMMAND_LIFETIME;
	a->expires = pr_wall() + COMMAND_LIFETIME;
	a->fetches++;
	pr_buf_free(&out);
	pr_buf_free(&cerr);
	return 0;
}

/* A token is renewed when less than this is left: five minutes, or half
 * of a short lifetime. */
static bool
stale(const struct auth *a)
{
	double margin = a->lifetime / 2 < 300 ? a->lifetime / 2 : 300;

	return !a->token || (a->expires > 0 && pr_wall() > a->expires - margin);
}

int
auth_header(struct auth *a, bool renew, char *line, size_t linelen, char *err,
    size_t len)
{
	int rc = 0;

	line[0] = '\0';
	switch (a->source) {
	case ANONYMOUS:
		return 0;
	case TOKEN_VAR:
		if (renew) {
			snprintf(err, len, "the token in GCS_OAUTH_TOKEN was refused (expired?)");
			return -1;
		}
		break;
	case KEY_FILE:
	case KEY_VAR:
		if (renew || stale(a))
			rc = fetch_with_key(a, err, len);
		break;
	case COMMAND:
		if (renew || stale(a))
			rc = fetch_from_command(a, err, len);
		break;
	case METADATA:
		if (renew || stale(a))
			rc = fetch_from_metadata(a, err, len);
		break;
	}
	if (rc < 0)
		return -1;
	if ((size_t)snprintf(line, linelen, "Authorization: Bearer %s", a->token) >= linelen) {
		line[0] = '\0';
		snprintf(err, len, "%s: the token is too long", names[a->source]);
		return -1;
	}
	return 0;
}
