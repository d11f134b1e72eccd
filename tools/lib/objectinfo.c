/*
 * The /object_info document a ComfyUI server with a given root sends,
 * made from our node facts (tools/lib/nodes.json): combos of files filled
 * from the root's folders as folder_paths lists them, our x- keys removed.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "err.h"
#include "json.h"
#include "objectinfo.h"

static bool
is_x_key(const char *k)
{
	return k && k[0] == 'x' && k[1] == '-';
}


struct strs {
	char **v;
	size_t n, cap;
};

static void
strs_add(struct strs *s, char *p)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 32;
		s->v = pr_xrealloc(s->v, s->cap * sizeof *s->v);
	}
	s->v[s->n++] = p;
}

static void
strs_free(struct strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

static int
cmp_str(const void *a, const void *b)
{
	/* Python sorts str by code point: UTF-8 bytes sort the same way */
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* sorted(set(...)) */
static void
strs_sort_unique(struct strs *s)
{
	size_t k = 0;

	if (s->n)
		qsort(s->v, s->n, sizeof *s->v, cmp_str);
	for (size_t i = 0; i < s->n; i++) {
		if (k > 0 && strcmp(s->v[k - 1], s->v[i]) == 0)
			free(s->v[i]);
		else
			s->v[k++] = s->v[i];
	}
	s->n = k;
}

/* os.path.splitext(name)[1]: leading dots do not start an extension. */
static const char *
splitext(const char *path)
{
	const char *base = strrchr(path, '/');
	const char *dot, *p;

	base = base ? base + 1 : path;
	dot = strrchr(base, '.');
	if (!dot)
		return "";
	for (p = base; p < dot; p++)
		if (*p != '.')
			return dot;
	return "";
}

static bool
ext_in(const char *ext, const cJSON *list)
{
	char low[32];
	size_t n = strlen(ext);

	if (n >= sizeof low)
		return false;
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)(ext[i] >= 'A' && ext[i] <= 'Z' ? ext[i] + 32 : ext[i]);
	return pr_json_has_string(list, low);
}

/* folder_paths.recursive_search: every file under dir (symlinks
 * followed, ".git" folders skipped), as paths relative to it with '/'. */
static void
walk(const char *dir, const char *rel, const cJSON *exts, struct strs *out, int depth)
{
	DIR *d;
	struct dirent *e;

	if (depth > 64 || !(d = opendir(dir)))
		return;
	while ((e = readdir(d))) {
		struct stat st;
		char *path, *r;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		path = pr_xasprintf("%s/%s", dir, e->d_name);
		r = *rel ? pr_xasprintf("%s/%s", rel, e->d_name) : pr_xstrdup(e->d_name);
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			if (strcmp(e->d_name, ".git") != 0)
				walk(path, r, exts, out, depth + 1);
			free(r);
		} else if (ext_in(splitext(r), exts)) {
			strs_add(out, r);
		} else {
			free(r);
		}
		free(path);
	}
	closedir(d);
}

/* The image extensions of Python's mimetypes tables (strict and not). */
static bool
is_image_name(const char *name)
{
	static const char *const images[] = {
		".avif", ".bmp", ".gif", ".heic", ".heif", ".ico", ".ief", ".jpe", ".jpeg",
		".jpg", ".pbm", ".pct", ".pgm", ".pic", ".pict", ".png", ".pnm", ".ppm",
		".ras", ".rgb", ".svg", ".tif", ".tiff", ".webp", ".xbm", ".xpm", ".xwd",
	};
	static const char *const encodings[] = { ".gz", ".Z", ".bz2", ".xz", ".br" };
	char *base = pr_xstrdup(name);
	const char *ext = splitext(base);
	char low[16];
	bool found = false;

	/* guess_type sees through compression suffixes: x.png.gz is an image */
	if (strcmp(ext, ".svgz") == 0 || strcmp(ext, ".SVGZ") == 0) {
		ext = ".svg";
	} else {
		for (size_t i = 0; i < sizeof encodings / sizeof *encodings; i++)
			if (strcmp(ext, encodings[i]) == 0) {
				base[ext - base] = '\0';
				ext = splitext(base);
				break;
			}
	}
	if (strlen(ext) < sizeof low) {
		size_t i;

		for (i = 0; ext[i]; i++)
			low[i] = (char)(ext[i] >= 'A' && ext[i] <= 'Z' ? ext[i] + 32 : ext[i]);
		low[i] = '\0';
		for (i = 0; i < sizeof images / sizeof *images && !found; i++)
			found = strcmp(low, images[i]) == 0;
	}
	free(base);
	return found;
}

/* The files directly in the input folder that a loader lists. */
static void
list_input(const char *dir, const char *match, struct strs *out)
{
	DIR *d;
	struct dirent *e;

	if (!(d = opendir(dir)))
		return;
	while ((e = readdir(d))) {
		struct stat st;
		char *path = pr_xasprintf("%s/%s", dir, e->d_name);
		const char *name = e->d_name;
		bool ok = stat(path, &st) == 0 && S_ISREG(st.st_mode);

		free(path);
		if (!ok)
			continue;
		if (strcmp(match, "image") == 0) {
			ok = is_image_name(name);
		} else if (strcmp(match, "video") == 0) {
			/* VHS: f.split('.')[-1].lower() among its extensions */
			const char *dot = strrchr(name, '.');

			ok = false;
			if (dot) {
				static const char *const vids[] = { "webm", "mp4", "mkv", "gif", "mov" };
				char low[8];
				size_t n = strlen(dot + 1), i;

				if (n < sizeof low) {
					for (i = 0; i <= n; i++)
						low[i] = (char)(dot[1 + i] >= 'A' && dot[1 + i] <= 'Z' ? dot[1 + i] + 32 : dot[1 + i]);
					for (i = 0; i < 5 && !ok; i++)
						ok = strcmp(low, vids[i]) == 0;
				}
			}
		} else {
			size_t n = strlen(name), t = strlen(match);

			ok = n >= t && strcmp(name + n - t, match) == 0;
		}
		if (ok)
			strs_add(out, pr_xstrdup(name));
	}
	closedir(d);
	strs_sort_unique(out);
}

/* A combo's file list per its x-files entries, in entry order. */
static void
fill_files(const cJSON *xfiles, const char *root, cJSON *options)
{
	for (const cJSON *f = cJSON_IsArray(xfiles) ? xfiles->child : NULL; f; f = f->next) {
		const cJSON *dirs = pr_json_get(f, "dirs");
		struct strs s = { NULL, 0, 0 };

		if (!root)
			continue;
		if (cJSON_IsTrue(pr_json_get(f, "top"))) {
			const char *match = pr_json_get_string(f, "match");
			char *dir = pr_xasprintf("%s/%s", root, cJSON_IsArray(dirs) && cJSON_IsString(dirs->child)
			    ? dirs->child->valuestring : "input");

			list_input(dir, match ? match : "", &s);
			free(dir);
		} else {
			for (const cJSON *d = cJSON_IsArray(dirs) ? dirs->child : NULL; d; d = d->next) {
				char *dir;

				if (!cJSON_IsString(d))
					continue;
				dir = pr_xasprintf("%s/%s", root, d->valuestring);
				walk(dir, "", pr_json_get(f, "ext"), &s, 0);
				free(dir);
			}
			/* the folders of one key are merged into one sorted set */
			strs_sort_unique(&s);
		}
		for (size_t i = 0; i < s.n; i++)
			cJSON_AddItemToArray(options, pr_json_string(s.v[i]));
		strs_free(&s);
	}
}

static cJSON *
serve_spec(const cJSON *spec, const char *root)
{
	const cJSON *dict = cJSON_IsArray(spec) ? cJSON_GetArrayItem(spec, 1) : NULL;
	const cJSON *xfiles = cJSON_IsObject(dict) ? pr_json_get(dict, "x-files") : NULL;
	cJSON *r, *d = NULL;
	int i = 0;

	if (!cJSON_IsArray(spec))
		return pr_json_copy(spec);
	r = pr_json_array();
	for (const cJSON *c = spec->child; c; c = c->next, i++) {
		if (i == 0 && xfiles && cJSON_IsArray(c)) {
			cJSON *opts = pr_json_array();
			bool after = cJSON_IsString(pr_json_get(dict, "x-static")) &&
			    strcmp(pr_json_get_string(dict, "x-static"), "after") == 0;

			if (!after)
				for (const cJSON *o = c->child; o; o = o->next)
					cJSON_AddItemToArray(opts, pr_json_copy(o));
			fill_files(xfiles, root, opts);
			if (after)
				for (const cJSON *o = c->child; o; o = o->next)
					cJSON_AddItemToArray(opts, pr_json_copy(o));
			cJSON_AddItemToArray(r, opts);
		} else if (i == 1 && cJSON_IsObject(c)) {
			if (cJSON_IsTrue(pr_json_get(c, "x-bare")))
				continue;
			d = pr_json_object();
			for (const cJSON *k = c->child; k; k = k->next)
				if (!is_x_key(k->string))
					pr_json_set(d, k->string, pr_json_copy(k));
			cJSON_AddItemToArray(r, d);
		} else {
			cJSON_AddItemToArray(r, pr_json_copy(c));
		}
	}
	return r;
}

/*
 * The /object_info document a server with the files under root would
 * send, from our facts: each x-files combo filled (folder_paths rules:
 * recursive, relative paths with '/', extension filter, sorted; the input
 * folder's loaders list its top level only), static options before the
 * files unless x-static says after, every x- key gone, an x-bare dict
 * dropped. root NULL: no files at all.
 */
cJSON *
pr_object_info(const cJSON *facts, const char *root)
{
	cJSON *out = pr_json_object();

	for (const cJSON *cls = cJSON_IsObject(facts) ? facts->child : NULL; cls; cls = cls->next) {
		cJSON *oc = pr_json_object();

		for (const cJSON *k = cls->child; k; k = k->next) {
			if (is_x_key(k->string))
				continue;
			if (strcmp(k->string, "input") == 0 && cJSON_IsObject(k)) {
				cJSON *in = pr_json_object();

				for (const cJSON *g = k->child; g; g = g->next) {
					cJSON *og;

					if (!cJSON_IsObject(g)) {
						pr_json_set(in, g->string, pr_json_copy(g));
						continue;
					}
					og = pr_json_object();
					for (const cJSON *s = g->child; s; s = s->next)
						pr_json_set(og, s->string, serve_spec(s, root));
					pr_json_set(in, g->string, og);
				}
				pr_json_set(oc, k->string, in);
			} else {
				pr_json_set(oc, k->string, pr_json_copy(k));
			}
		}
		pr_json_set(out, cls->string, oc);
	}
	return out;
}
