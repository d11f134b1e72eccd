/*
 * WebSocket message reassembly (wsclient.c's pr_wsmsg_add, what the lws
 * receive callback calls per fragment): any sequence of fragments gives
 * exactly the messages a plain model of the rules gives. Text fragments
 * are joined from a first fragment to a final one; binary messages and
 * text that is not JSON give nothing; a text message over the limit ends
 * everything after it. The limit is 4 KiB here, not 64 MiB, so inputs
 * reach it.
 *
 * Input: fragments, each a flags byte (1 first, 2 final, 4 binary, 8 a
 * two-byte length follows, else one byte) then its bytes (fewer when the
 * input ends).
 */
#include <string.h>

#include "pr.h"
#include "wsmsg.h"
#include "fuzz.h"

#define MAX 4096
#define KEEP 1024

/* What the rules say happens, written the obvious way. */
struct model {
	struct pr_buf text;
	bool binary, too_big;
};

/* The next fragment: its flags, and its bytes in *frag (fewer than its
 * length says when the input ends). */
static size_t
take_fragment(const uint8_t **p, size_t *n, uint8_t *flags, const uint8_t **frag)
{
	size_t len = 0, lbytes, i;

	*flags = **p;
	(*p)++;
	(*n)--;
	lbytes = *flags & 8 ? 2 : 1;
	if (lbytes > *n)
		lbytes = *n;
	for (i = 0; i < lbytes; i++)
		len |= (size_t)(*p)[i] << 8 * i;
	*p += lbytes;
	*n -= lbytes;
	if (len > *n)
		len = *n;
	*frag = *p;
	*p += len;
	*n -= len;
	return len;
}

/* The model's answer for one fragment: as pr_wsmsg_add's return. */
static int
model_add(struct model *md, bool first, bool final, bool binary, const uint8_t *in,
    size_t len, char **want)
{
	struct pr_json_error e;
	cJSON *v;

	*want = NULL;
	if (md->too_big)
		return 0;
	if (first) {
		pr_buf_reset(&md->text);
		md->binary = binary;
	}
	if (!md->binary) {
		if (md->text.len + len > MAX) {
			md->too_big = true;
			return -1;
		}
		pr_buf_add(&md->text, in, len);
	}
	if (!final)
		return 0;
	v = md->binary ? NULL : pr_json_parse(md->text.data ? md->text.data : "",
	    md->text.len, &e, NULL);
	pr_buf_reset(&md->text);
	if (!v)
		return 0;
	*want = pr_json_print(v, 0);
	cJSON_Delete(v);
	return 1;
}

/* A message handed out: a JSON value that prints and parses back. */
static void
check_message(const cJSON *v, const char *want)
{
	struct pr_json_error e;
	char *text = pr_json_print(v, 0);
	cJSON *again;

	check(text != NULL && want != NULL);
	check(strcmp(text, want) == 0);
	again = pr_json_parse(text, strlen(text), &e, NULL);
	check(again != NULL);
	cJSON_Delete(again);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pr_wsmsg m = { .max = MAX, .keep = KEEP };
	struct model md = { PR_BUF_INIT, false, false };
	const uint8_t *p = data, *frag;
	size_t n = size, len;
	uint8_t flags;
	bool over = false;
	char *want;
	cJSON *v;
	int rc, mrc;

	while (n > 0) {
		len = take_fragment(&p, &n, &flags, &frag);
		rc = pr_wsmsg_add(&m, flags & 1, flags & 2, flags & 4, frag, len, &v);
		mrc = model_add(&md, flags & 1, flags & 2, flags & 4, frag, len, &want);
		check(rc == mrc);
		check((rc == 1) == (v != NULL));
		if (rc == 1)
			check_message(v, want);
		/* Nothing is taken once a message went over the limit. */
		if (over)
			check(rc == 0 && m.buf.len == 0);
		if (rc == -1) {
			check(!over && m.too_big && m.buf.cap == 0);
			over = true;
		}
		check(m.buf.len <= MAX);
		/* Between messages the buffer is small or gone. */
		if (flags & 2)
			check(m.buf.len == 0 && m.buf.cap <= KEEP);
		cJSON_Delete(v);
		free(want);
	}
	pr_buf_free(&m.buf);
	pr_buf_free(&md.text);
	return 0;
}
