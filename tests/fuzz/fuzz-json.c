/*
 * The exact-JSON layer: any bytes parse or are refused with a message;
 * what parses prints, and the printed text parses back to the same text
 * (numbers keep their digits: 2^64 - 1 and 8.0 stay as written).
 */
#include <string.h>

#include "pr.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pr_json_error e;
	cJSON *v, *again;
	char *text, *text2;

	if (!(v = pr_json_parse((const char *)data, size, &e, NULL))) {
		check(e.msg[0] != '\0');
		return 0;
	}
	text = pr_json_print(v, 0);
	check(text != NULL);
	again = pr_json_parse(text, strlen(text), &e, NULL);
	check(again != NULL);
	text2 = pr_json_print(again, 0);
	check(strcmp(text, text2) == 0);
	free(text);
	free(text2);
	cJSON_Delete(v);
	cJSON_Delete(again);
	return 0;
}
