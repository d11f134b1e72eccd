/*
 * json-numbers: carries JSON number literals through jq untouched. jq 1.6
 * reads numbers as doubles, so 18446744073709551615 and 8.0 come out as
 * 18446744073709552000 and 8. --quote turns every number into the string
 * "\u0001<literal>"; --unquote turns such strings back into the literal.
 *
 *   json-numbers --quote < in.json | jq ... | json-numbers --unquote
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pr.h"

#define MARK '\001'

static void
walk(cJSON *v, int quote)
{
	cJSON *c;
	char *s;

	for (c = v->child; c; c = c->next) {
		if (quote && cJSON_IsRaw(c)) {
			s = pr_xasprintf("%c%s", MARK, c->valuestring);
			free(c->valuestring);
			c->valuestring = s;
			c->type = cJSON_String | (c->type & ~0xff);
		} else if (!quote && cJSON_IsString(c) && c->valuestring[0] == MARK) {
			s = pr_xstrdup(c->valuestring + 1);
			if (!pr_json_number_valid(s, strlen(s)))
				pr_die(PR_EXIT_USAGE, "not a number: %s", s);
			free(c->valuestring);
			c->valuestring = s;
			c->type = cJSON_Raw | (c->type & ~0xff);
		} else {
			walk(c, quote);
		}
	}
}

int
main(int argc, char **argv)
{
	struct pr_buf in = PR_BUF_INIT, out = PR_BUF_INIT;
	struct pr_json_error e;
	char chunk[65536];
	size_t n;
	cJSON *v;
	int quote;

	pr_init(argv[0]);
	if (argc != 2 || (strcmp(argv[1], "--quote") != 0 && strcmp(argv[1], "--unquote") != 0))
		pr_die(PR_EXIT_USAGE, "usage: json-numbers --quote | --unquote < json");
	quote = strcmp(argv[1], "--quote") == 0;
	while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
		pr_buf_add(&in, chunk, n);
	if (!(v = pr_json_parse(in.data ? in.data : "", in.len, &e, NULL)))
		pr_die(PR_EXIT_USAGE, "<stdin>:%zu: %s", e.line, e.msg);
	walk(v, quote);
	pr_json_write(&out, v, quote ? 0 : 2);
	pr_buf_addc(&out, '\n');
	pr_stdout_write(&out);
	pr_stdout_close();
	cJSON_Delete(v);
	pr_buf_free(&in);
	pr_buf_free(&out);
	return 0;
}
