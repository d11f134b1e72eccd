/*
 * Removing what a verified final no longer needs: the video's latents,
 * segments, reference images and combine outputs (every file its jobs'
 * results list), and pr-combine's own work folder. Only files named
 * relative to --out, with no ".." in them, are touched, and only after
 * the final and its record are on disk.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "combine.h"
#include "crash.h"

void
remove_work(struct video *v)
{
	DIR *d = opendir(v->work);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char *p = pr_xasprintf("%s/%s", v->work, e->d_name);
		if (unlink(p) < 0 && errno != ENOENT)
			pr_warn("%s: %s", p, strerror(errno));
		free(p);
	}
	closedir(d);
	if (rmdir(v->work) < 0 && errno != ENOENT)
		pr_warn("%s: %s", v->work, strerror(errno));
}

/* Removes rel's now-empty parent folders, up to --out itself. */
static void
remove_parents(const char *rel)
{
	char *dir = pr_xstrdup(rel), *slash;

	while ((slash = strrchr(dir, '/'))) {
		*slash = '\0';
		char *p = local_path(dir);
		int rc = rmdir(p);
		free(p);
		if (rc < 0)
			break;
	}
	free(dir);
}

void
cleanup(struct video *v)
{
	const cJSON *r, *f;

	cJSON_ArrayForEach(r, v->results) {
		cJSON_ArrayForEach(f, pr_json_get(r, "files")) {
			const char *rel = pr_json_get_string(f, "path");
			char *p;

			if (!rel || pr_path_outside(rel) || strcmp(rel, v->final_rel) == 0)
				continue;
			p = local_path(rel);
			pr_crash_point("removing");
			if (unlink(p) == 0)
				remove_parents(rel);
			else if (errno != ENOENT)
				pr_warn("%s: %s", p, strerror(errno));
			free(p);
		}
	}
}
