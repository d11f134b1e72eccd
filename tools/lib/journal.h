/*
 * An append-only JSON Lines journal (state/journal.jsonl): each record is
 * written in one write() and fsync'd before the call returns, so what the
 * journal says happened, happened, whatever kills the process next. A
 * torn last line (power loss mid-write) is ignored when reading.
 */
#ifndef PR_JOURNAL_H
#define PR_JOURNAL_H

#include "json.h"

struct pr_journal;

/* Opens (creating) path for appending. NULL with errno on failure. */
struct pr_journal *pr_journal_open(const char *path);
/* Appends rec as one line, with "t" (epoch seconds) added first. 0, or -1
 * with errno (disk full: the caller must stop). */
int pr_journal_append(struct pr_journal *j, const cJSON *rec);
void pr_journal_close(struct pr_journal *j);

/* Every complete record of the journal at path, in order, as an array
 * (empty when the file does not exist). A line that is not valid JSON is
 * skipped only when it is the last one (a torn write); elsewhere it is an
 * error: NULL with a message in err. */
cJSON *pr_journal_read(const char *path, char *err, size_t errlen);

#endif
