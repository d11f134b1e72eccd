/*
 * Bearer tokens: the OAuth token endpoint (a service account's RS256 JWT,
 * checked as Google checks it, for an access token), the GCE metadata
 * server's token, and the check on storage requests. Tokens and
 * assertions are never logged or echoed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "base64.h"
#include "fake.h"
#include "http.h"
#include "urlcode.h"

#define JWT_MAX 16384

struct token {
	struct token *next;
	char *value;
	double expires;         /* epoch seconds; 0: a --token, never */
	bool revoked;
};

EVP_PKEY *
token_load_key(const char *path, char *why, size_t whylen)
{
	EVP_PKEY *k = NULL;
	BIO *b;

	if (!(b = BIO_new_file(path, "r"))) {
		snprintf(why, whylen, "cannot open it");
	} else if (!(k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL))) {
		snprintf(why, whylen, "not a PEM public key (as openssl pkey -pubout writes)");
	} else if (EVP_PKEY_base_id(k) != EVP_PKEY_RSA) {
		snprintf(why, whylen, "not an RSA key (RS256 needs one)");
		EVP_PKEY_free(k);
		k = NULL;
	}
	BIO_free(b);
	ERR_clear_error();
	return k;
}

/* S.lock held. */
static struct token *
find(const char *tok)
{
	struct token *t;

	for (t = S.tokens; t; t = t->next)
		if (strcmp(t->value, tok) == 0)
			return t;
	return NULL;
}

static bool
is_static(const char *tok)
{
	size_t i;

	for (i = 0; i < S.set.ntokens; i++)
		if (strcmp(S.set.tokens[i], tok) == 0)
			return true;
	return false;
}

bool
token_ok(const char *tok)
{
	struct token *t;
	bool ok;

	pthread_mutex_lock(&S.lock);
	if ((t = find(tok)))
		ok = !t->revoked && (t->expires == 0 || pr_wall() < t->expires);
	else
		ok = is_static(tok);
	pthread_mutex_unlock(&S.lock);
	return ok;
}

void
token_revoke(const char *tok)
{
	struct token *t;

	pthread_mutex_lock(&S.lock);
	/* A --token is revoked too: it is then as good as expired. */
	if (!(t = find(tok)) && is_static(tok)) {
		t = pr_xcalloc(1, sizeof *t);
		t->value = pr_xstrdup(tok);
		t->next = S.tokens;
		S.tokens = t;
	}
	if (t)
		t->revoked = true;
	pthread_mutex_unlock(&S.lock);
}

/* A new token, also answered; expired ones are forgotten. */
static cJSON *
issue(void)
{
	struct token **pp, *t, *n;
	char id[64];
	double now = pr_wall();
	cJSON *a = pr_json_object();

	random_id(id, 30);
	n = pr_xcalloc(1, sizeof *n);
	n->value = pr_xasprintf("ya29.fake-%s", id);
	n->expires = now + (double)S.set.token_ttl;
	pr_json_set_string(a, "access_token", n->value);
	pr_json_set_int(a, "expires_in", S.set.token_ttl);
	pr_json_set_string(a, "token_type", "Bearer");
	pthread_mutex_lock(&S.lock);
	for (pp = &S.tokens; (t = *pp);) {
		if (t->expires != 0 && t->expires <= now) {
			*pp = t->next;
			free(t->value);
			free(t);
		} else {
			pp = &t->next;
		}
	}
	n->next = S.tokens;
	S.tokens = n;
	S.n.tokens_issued++;
	pthread_mutex_unlock(&S.lock);
	return a;
}

void
tokens_free(void)
{
	struct token *t;

	while ((t = S.tokens)) {
		S.tokens = t->next;
		free(t->value);
		free(t);
	}
}

/* Google's OAuth error shape. */
static void
oauth_error(struct req *r, int code, const char *error, const char *desc)
{
	cJSON *e = pr_json_object();

	pr_json_set_string(e, "error", error);
	pr_json_set_string(e, "error_description", desc);
	pr_httpd_json(&r->http, code, NULL, e);
	cJSON_Delete(e);
}

/* A base64url JWT part as a JSON object, or NULL. */
static cJSON *
part_json(const char *s, size_t n)
{
	struct pr_json_error e;
	char *raw = pr_xmalloc(n / 4 * 3 + 4);
	long len = pr_base64_decode(s, n, raw);
	cJSON *j = NULL;

	if (len >= 0 && !memchr(s, '+', n) && !memchr(s, '/', n))
		j = pr_json_parse(raw, (size_t)len, &e, NULL);
	free(raw);
	if (j && !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		j = NULL;
	}
	return j;
}

static bool
signature_ok(const char *jwt, size_t signed_len, const char *sig64, size_t n)
{
	unsigned char *sig = pr_xmalloc(n / 4 * 3 + 4);
	long len = pr_base64_decode(sig64, n, sig);
	EVP_MD_CTX *ctx;
	bool ok = false;

	if (len > 0 && (ctx = EVP_MD_CTX_new())) {
		ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, S.set.pubkey) == 1 &&
		    EVP_DigestVerify(ctx, sig, (size_t)len, (const unsigned char *)jwt,
		    signed_len) == 1;
		EVP_MD_CTX_free(ctx);
	}
	ERR_clear_error();
	free(sig);
	return ok;
}

static bool
has_scope(const char *scopes)
{
	static const char *const good[] = {
		"https://www.googleapis.com/auth/devstorage.read_write",
		"https://www.googleapis.com/auth/devstorage.full_control",
		"https://www.googleapis.com/auth/cloud-platform",
	};
	const char *p = scopes, *e;
	size_t i, n;

	while (*p) {
		while (*p == ' ')
			p++;
		e = strchr(p, ' ');
		n = e ? (size_t)(e - p) : strlen(p);
		for (i = 0; i < sizeof good / sizeof good[0]; i++)
			if (n > 0 && strlen(good[i]) == n && strncmp(p, good[i], n) == 0)
				return true;
		p += n;
	}
	return false;
}

/* Checks the assertion; NULL when good, else Google's error description
 * (*error says which OAuth error). */
static const char *
check_jwt(const char *jwt, const char **error, char *audmsg, size_t audlen)
{
	static const char timeframe[] = "Invalid JWT: Token must be a short-lived token "
	    "(60 minutes) and in a reasonable timeframe. Check your iat and exp values in the "
	    "JWT claim.";
	const char *d1, *d2, *why = NULL, *alg, *typ, *iss, *aud, *scope;
	cJSON *head = NULL, *claims = NULL;
	int64_t iat, exp, now = (int64_t)time(NULL);
	size_t len = strlen(jwt);
	char *want_aud;

	*error = "invalid_grant";
	if (len > JWT_MAX || !(d1 = strchr(jwt, '.')) || !(d2 = strchr(d1 + 1, '.')) ||
	    strchr(d2 + 1, '.') || d1 == jwt || d2 == d1 + 1 || !d2[1] ||
	    !(head = part_json(jwt, (size_t)(d1 - jwt))) ||
	    !(claims = part_json(d1 + 1, (size_t)(d2 - d1 - 1)))) {
		why = "Invalid JWT: the assertion is not three base64url parts of JSON.";
		goto out;
	}
	alg = pr_json_get_string(head, "alg");
	typ = pr_json_get_string(head, "typ");
	if (!alg || strcmp(alg, "RS256") != 0 || (pr_json_get(head, "typ") &&
	    (!typ || strcmp(typ, "JWT") != 0))) {
		why = "Invalid JWT: the header must say alg RS256 (and typ JWT).";
		goto out;
	}
	if (!signature_ok(jwt, (size_t)(d2 - jwt), d2 + 1, strlen(d2 + 1))) {
		why = "Invalid JWT Signature.";
		goto out;
	}
	if (!(iss = pr_json_get_string(claims, "iss")) || !*iss) {
		why = "Invalid JWT: iss (the service account's email) is missing.";
		goto out;
	}
	want_aud = pr_xasprintf("%s/token", S.set.base);
	aud = pr_json_get_string(claims, "aud");
	if (!aud || strcmp(aud, want_aud) != 0) {
		snprintf(audmsg, audlen, "Invalid JWT: Failed audience check. The right "
		    "audience is %s", want_aud);
		why = audmsg;
		free(want_aud);
		goto out;
	}
	free(want_aud);
	if (pr_json_to_i64(pr_json_get(claims, "iat"), &iat) < 0 ||
	    pr_json_to_i64(pr_json_get(claims, "exp"), &exp) < 0 ||
	    iat > now + 60 || exp <= now || exp <= iat || exp - iat > 3600) {
		why = timeframe;
		goto out;
	}
	if (!(scope = pr_json_get_string(claims, "scope")) || !has_scope(scope)) {
		*error = "invalid_scope";
		why = "Invalid OAuth scope or ID token audience provided.";
		goto out;
	}
out:
	cJSON_Delete(head);
	cJSON_Delete(claims);
	return why;
}

/* A form field, decoded. */
static char *
form_field(const char *body, const char *key)
{
	size_t klen = strlen(key), n;
	const char *p = body, *amp;

	while (*p) {
		amp = strchr(p, '&');
		n = amp ? (size_t)(amp - p) : strlen(p);
		if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=')
			return pr_pct_decode(p + klen + 1, n - klen - 1, true);
		p += n;
		if (*p == '&')
			p++;
	}
	return NULL;
}

void
route_token(struct req *r)
{
	struct pr_buf body = PR_BUF_INIT;
	char *grant = NULL, *jwt = NULL;
	char audmsg[256];
	const char *why, *error;
	cJSON *answer;
	int rc;

	if ((rc = pr_httpd_body_all(&r->http, SMALL_BODY, &body)) == -1)
		goto out;
	if (rc == -2) {
		oauth_error(r, 413, "invalid_request", "The request is too large.");
		goto out;
	}
	if (!S.set.pubkey) {
		oauth_error(r, 400, "invalid_grant", "no public key configured");
		goto out;
	}
	grant = form_field(body.data, "grant_type");
	jwt = form_field(body.data, "assertion");
	if (!grant || strcmp(grant, "urn:ietf:params:oauth:grant-type:jwt-bearer") != 0) {
		oauth_error(r, 400, "unsupported_grant_type", "Invalid grant_type.");
		goto out;
	}
	if (!jwt || !*jwt) {
		oauth_error(r, 400, "invalid_request", "Missing required parameter: assertion");
		goto out;
	}
	if ((why = check_jwt(jwt, &error, audmsg, sizeof audmsg))) {
		oauth_error(r, 400, error, why);
		goto out;
	}
	answer = issue();
	pr_httpd_json(&r->http, 200, NULL, answer);
	cJSON_Delete(answer);
out:
	free(grant);
	free(jwt);
	pr_buf_free(&body);
}

void
route_metadata_token(struct req *r)
{
	static const char missing[] = "Missing required header \"Metadata-Flavor\": \"Google\"\n";
	const char *flavor = pr_httpd_header(&r->http, "Metadata-Flavor");
	cJSON *answer;

	if (!flavor || strcmp(flavor, "Google") != 0) {
		pr_httpd_send(&r->http, 403, NULL, "text/plain; charset=utf-8", missing,
		    sizeof missing - 1);
		return;
	}
	answer = issue();
	pr_httpd_json(&r->http, 200, "Metadata-Flavor: Google\r\n", answer);
	cJSON_Delete(answer);
}
