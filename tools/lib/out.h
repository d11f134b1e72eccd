/* Writing records. Tools collect their output first and write it at the
 * end, so bad input never leaves half a result on stdout. */
#ifndef PR_OUT_H
#define PR_OUT_H

#include "buf.h"
#include "json.h"

/* Appends rec to out as one compact JSON line. */
void pr_record_append(struct pr_buf *out, const cJSON *rec);

/* Writes b to stdout and flushes it; a failed write (disk full, closed
 * pipe) ends the program with status 3. */
void pr_stdout_write(const struct pr_buf *b);

/* Closes stdout, checking for late write errors; call before exiting. */
void pr_stdout_close(void);

#endif
