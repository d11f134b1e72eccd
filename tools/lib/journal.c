#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crash.h"
#include "err.h"
#include "file.h"
#include "journal.h"
#include "proc.h"

struct pr_journal {
	int fd;
};

struct pr_journal *
pr_journal_open(const char *path)
{
	struct pr_journal *j;
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666)) < 0)
		return NULL;
	j = pr_xcalloc(1, sizeof *j);
	j->fd = fd;
	return j;
}

int
pr_journal_append(struct pr_journal *j, const cJSON *rec)
{
	struct pr_buf b = PR_BUF_INIT;
	struct timespec ts;
	const cJSON *c;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	pr_buf_printf(&b, "{\"t\":%lld.%03ld", (long long)ts.tv_sec, ts.tv_nsec / 1000000);
	cJSON_ArrayForEach(c, rec) {
		pr_buf_addc(&b, ',');
		pr_json_write_string(&b, c->string);
		pr_buf_addc(&b, ':');
		pr_json_write(&b, c, 0);
	}
	pr_buf_adds(&b, "}\n");
	/* One write for the whole line: O_APPEND keeps it in one piece. */
	if (pr_write_full(j->fd, b.data, b.len) < 0 || fsync(j->fd) < 0)
		rc = -1;
	pr_buf_free(&b);
	pr_crash_point("journal");
	return rc;
}

void
pr_journal_close(struct pr_journal *j)
{
	if (!j)
		return;
	close(j->fd);
	free(j);
}

cJSON *
pr_journal_read(const char *path, char *err, size_t errlen)
{
	struct pr_buf text = PR_BUF_INIT;
	struct pr_json_error e;
	cJSON *all = pr_json_array(), *rec;
	char *line, *nl;
	size_t no = 0;

	if (pr_file_read(path, (size_t)1 << 31, &text) < 0) {
		if (errno == ENOENT) {
			pr_buf_free(&text);
			return all;
		}
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	for (line = text.data; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		no++;
		rec = pr_json_parse(line, nl ? (size_t)(nl - line) : strlen(line), &e, NULL);
		if (!rec || !cJSON_IsObject(rec)) {
			cJSON_Delete(rec);
			/* A torn final write: the record never happened. */
			if (!nl || !nl[1])
				break;
			snprintf(err, errlen, "%s:%zu: damaged journal record: %s", path, no,
			    e.msg[0] ? e.msg : "not an object");
			goto fail;
		}
		cJSON_AddItemToArray(all, rec);
	}
	pr_buf_free(&text);
	return all;
fail:
	pr_buf_free(&text);
	cJSON_Delete(all);
	return NULL;
}
