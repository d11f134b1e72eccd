/*
 * Percent-encoding, and redacting query parameters for logs. See urlcode.h.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "urlcode.h"

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

char *
pr_pct_decode(const char *s, size_t n, bool plus)
{
	char *out = pr_xmalloc(n + 1), *o = out;
	size_t i;
	int hi, lo;

	for (i = 0; i < n; i++) {
		if (s[i] == '%') {
			/* A NUL would cut the value short where the caller cannot see. */
			if (i + 2 >= n || (hi = hexval(s[i + 1])) < 0 ||
			    (lo = hexval(s[i + 2])) < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else if (s[i] == '+' && plus) {
			*o++ = ' ';
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

void
pr_pct_encode(struct pr_buf *b, const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || strchr("-._~", *p))
			pr_buf_addc(b, (char)*p);
		else
			pr_buf_printf(b, "%%%02X", *p);
	}
}

char *
pr_redact_query(const char *target, const char *name)
{
	struct pr_buf b = PR_BUF_INIT, key = PR_BUF_INIT;
	const char *p = target, *hit, *from = target;
	size_t n;

	pr_buf_adds(&key, name);
	pr_buf_addc(&key, '=');
	n = key.len;
	while ((hit = strstr(from, key.data))) {
		from = hit + n;
		/* Only a whole parameter name: "xupload_id=" is another one. */
		if (hit == target || (hit[-1] != '?' && hit[-1] != '&'))
			continue;
		pr_buf_add(&b, p, (size_t)(hit - p) + n);
		pr_buf_adds(&b, "\xe2\x80\xa6");
		p = from = hit + n + strcspn(hit + n, "&");
	}
	pr_buf_adds(&b, p);
	pr_buf_free(&key);
	return pr_buf_steal(&b);
}
