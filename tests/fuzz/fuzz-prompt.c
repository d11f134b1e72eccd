/*
 * The prompt file parser (pr-parse): any bytes make one record or are
 * refused, never a crash; a record's frame count is within the limit and
 * its texts are valid UTF-8 JSON strings. The tool's own code, compiled
 * in with its main renamed.
 */
#include "fuzz.h"

int pr_parse_main(int argc, char **argv);
#define main pr_parse_main
#include "../../tools/pr-parse.c"
#undef main

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct opts o = { false, false, DEFAULT_MAX_FRAMES };
	struct item it = { (char *)"fuzz/clip.txt", (char *)"clip", NULL, false };
	uint64_t frames;

	parse_text(&o, &it, (const char *)data, size);
	check(it.bad == (it.rec == NULL));
	if (it.rec) {
		check(pr_json_to_u64(pr_json_get(it.rec, "total_frames"), &frames) == 0);
		check(frames >= 1 && frames <= DEFAULT_MAX_FRAMES);
		check(cJSON_IsString(pr_json_get(it.rec, "positive")));
		cJSON_Delete(it.rec);
	}
	return 0;
}
