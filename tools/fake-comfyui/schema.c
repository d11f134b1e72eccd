/*
 * /object_info as this server serves it (the node facts, with file combos
 * filled from its root), and where its files are.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fake.h"

cJSON *
object_info(void)
{
	return pr_object_info(S.facts, S.set.root);
}

bool
root_file_exists(const char *folder, const char *path)
{
	char full[8192];
	struct stat st;

	if (strcmp(folder, "cwd") == 0) {
		/* The server resolves these against its working directory,
		 * which for ComfyUI is its root; absolute paths are as given. */
		if (path[0] == '/')
			snprintf(full, sizeof full, "%s", path);
		else
			snprintf(full, sizeof full, "%s/%s", S.set.root, path);
	} else {
		snprintf(full, sizeof full, "%s/%s/%s", S.set.root, folder, path);
	}
	return stat(full, &st) == 0;
}
