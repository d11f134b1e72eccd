#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "crash.h"
#include "err.h"
#include "out.h"

void
pr_record_append(struct pr_buf *out, const cJSON *rec)
{
	pr_json_write(out, rec, 0);
	pr_buf_addc(out, '\n');
}

static void
write_failed(void)
{
	pr_die(PR_EXIT_INFRA, "error writing standard output: %s", strerror(errno));
}

void
pr_stdout_write(const struct pr_buf *b)
{
	size_t half = b->len / 2;

	/* In two halves with a crash point between: what a reader of a tool
	 * killed while writing sees must be tested, not assumed. */
	if (half && fwrite(b->data, 1, half, stdout) != half)
		write_failed();
	if (half && fflush(stdout) == EOF)
		write_failed();
	pr_crash_point("output");
	if (b->len > half && fwrite(b->data + half, 1, b->len - half, stdout) != b->len - half)
		write_failed();
	if (fflush(stdout) == EOF)
		write_failed();
}

void
pr_stdout_close(void)
{
	if (fflush(stdout) == EOF || ferror(stdout))
		write_failed();
	if (fclose(stdout) == EOF)
		write_failed();
}
