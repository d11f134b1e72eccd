/*
 * The OAuth 2.0 service-account flow: a JWT saying "I am client_email and
 * want this scope", signed RS256 with the key's private_key, is traded at
 * the key's token_uri for an access token. The private key is parsed from
 * memory and never written anywhere; messages name the field, not its
 * value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "base64.h"
#include "upload.h"

/* Google refuses assertions that live longer than an hour. */
#define LIFETIME 3600

static void
add_part(struct pr_buf *b, const cJSON *v)
{
	struct pr_buf json = PR_BUF_INIT;
	char *enc;

	pr_json_write(&json, v, 0);
	enc = pr_xmalloc(PR_BASE64_LEN(json.len));
	pr_buf_add(b, enc, pr_base64_encode(json.data, json.len, enc, true));
	free(enc);
	pr_buf_free(&json);
}

static int
sign(const char *pem, const struct pr_buf *msg, struct pr_buf *out, char *err,
    size_t len)
{
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *md = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	char *enc = NULL;
	BIO *bio;
	int rc = -1;

	if (!(bio = BIO_new_mem_buf(pem, -1)))
		pr_die(PR_EXIT_INFRA, "out of memory (key)");
	/* No passphrase callback: a key that wants one is not a
	 * service-account key, and must not stop the program at a prompt. */
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
	BIO_free(bio);
	if (!key) {
		snprintf(err, len, "private_key: not a PEM private key");
		goto out;
	}
	if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
		snprintf(err, len, "private_key: not an RSA key (RS256 needs one)");
		goto out;
	}
	if (!(md = EVP_MD_CTX_new()) ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)msg->data, msg->len) != 1) {
		snprintf(err, len, "private_key: cannot sign with it");
		goto out;
	}
	sig = pr_xmalloc(siglen);
	if (EVP_DigestSign(md, sig, &siglen, (const unsigned char *)msg->data, msg->len) != 1) {
		snprintf(err, len, "private_key: cannot sign with it");
		goto out;
	}
	enc = pr_xmalloc(PR_BASE64_LEN(siglen));
	pr_buf_add(out, enc, pr_base64_encode(sig, siglen, enc, true));
	rc = 0;
out:
	free(enc);
	free(sig);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	return rc;
}

char *
jwt_assertion(const cJSON *key, const char *scope, long now,
    const char **token_uri, char *err, size_t len)
{
	const char *type = pr_json_get_string(key, "type");
	const char *email = pr_json_get_string(key, "client_email");
	const char *pem = pr_json_get_string(key, "private_key");
	const char *kid = pr_json_get_string(key, "private_key_id");
	const char *uri = pr_json_get_string(key, "token_uri");
	struct pr_buf b = PR_BUF_INIT, sig = PR_BUF_INIT;
	cJSON *head, *claims;
	char *jwt = NULL;

	if (!cJSON_IsObject(key)) {
		snprintf(err, len, "not a JSON object");
		return NULL;
	}
	if (type && strcmp(type, "service_account") != 0) {
		snprintf(err, len, "type: \"%.40s\" is not a service-account key", type);
		return NULL;
	}
	if (!email || !*email) {
		snprintf(err, len, "client_email: missing");
		return NULL;
	}
	if (!pem || !*pem) {
		snprintf(err, len, "private_key: missing");
		return NULL;
	}
	if (!uri)
		uri = "https://oauth2.googleapis.com/token";
	head = pr_json_object();
	pr_json_set_string(head, "alg", "RS256");
	pr_json_set_string(head, "typ", "JWT");
	if (kid)
		pr_json_set_string(head, "kid", kid);
	claims = pr_json_object();
	pr_json_set_string(claims, "iss", email);
	pr_json_set_string(claims, "scope", scope);
	pr_json_set_string(claims, "aud", uri);
	pr_json_set(claims, "iat", pr_json_int(now));
	pr_json_set(claims, "exp", pr_json_int(now + LIFETIME));
	add_part(&b, head);
	pr_buf_add(&b, ".", 1);
	add_part(&b, claims);
	cJSON_Delete(head);
	cJSON_Delete(claims);
	if (sign(pem, &b, &sig, err, len) == 0) {
		jwt = pr_xasprintf("%.*s.%.*s", (int)b.len, b.data, (int)sig.len, sig.data);
		*token_uri = uri;
	}
	pr_buf_free(&sig);
	pr_buf_free(&b);
	return jwt;
}
