/*
 * Collecting a finished job: its outputs as history names them (never
 * guessed), streamed from /view into the layout under --out, each checked
 * to be whole before it counts; then the files derived from them.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crash.h"
#include "submit.h"

static const char *
ext_of(const char *path)
{
	const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');

	return dot && (!slash || dot > slash) ? dot + 1 : "";
}

static bool
is_media(const char *ext)
{
	static const char *const media[] = { "mp4", "webm", "mkv", "mov", "gif", "png",
	    "jpg", "jpeg", "webp", "avi", NULL };

	for (const char *const *m = media; *m; m++)
		if (strcasecmp(ext, *m) == 0)
			return true;
	return false;
}

/* A safetensors file (.latent) is whole when its header parses and the
 * last tensor ends exactly at the end of the file. */
static int
verify_safetensors(const char *path, off_t size, char *err, size_t errlen)
{
	unsigned char len8[8];
	uint64_t n = 0, end = 0;
	struct pr_buf b = PR_BUF_INIT;
	struct pr_json_error je;
	cJSON *hdr = NULL, *t;
	FILE *fp = fopen(path, "rb");
	int rc = -1;

	if (!fp) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fread(len8, 1, 8, fp) != 8) {
		snprintf(err, errlen, "%s: shorter than a safetensors header", path);
		goto out;
	}
	for (int i = 7; i >= 0; i--)
		n = n << 8 | len8[i];
	if (n > (uint64_t)100 << 20 || 8 + n > (uint64_t)size) {
		snprintf(err, errlen, "%s: safetensors header of %llu bytes does not fit in %lld",
		    path, (unsigned long long)n, (long long)size);
		goto out;
	}
	b.data = pr_xmalloc(n + 1);
	b.cap = n + 1;
	if (fread(b.data, 1, n, fp) != n) {
		snprintf(err, errlen, "%s: cannot read its header", path);
		goto out;
	}
	b.len = n;
	b.data[n] = '\0';
	if (!(hdr = pr_json_parse(b.data, n, &je, NULL)) || !cJSON_IsObject(hdr)) {
		snprintf(err, errlen, "%s: safetensors header is not a JSON object", path);
		goto out;
	}
	cJSON_ArrayForEach(t, hdr) {
		uint64_t to;
		if (strcmp(t->string, "__metadata__") == 0)
			continue;
		if (pr_json_to_u64(cJSON_GetArrayItem(pr_json_get(t, "data_offsets"), 1), &to) < 0) {
			snprintf(err, errlen, "%s: tensor %s has no data_offsets", path, t->string);
			goto out;
		}
		if (to > end)
			end = to;
	}
	if (8 + n + end != (uint64_t)size) {
		snprintf(err, errlen, "%s: %lld bytes, but its tensors end at %llu: truncated or padded",
		    path, (long long)size, (unsigned long long)(8 + n + end));
		goto out;
	}
	rc = 0;
out:
	cJSON_Delete(hdr);
	pr_buf_free(&b);
	fclose(fp);
	return rc;
}

int
verify_file(const char *path, const char *role, long min_frames, char *err, size_t errlen)
{
	struct stat sb;
	const char *ext = ext_of(path);

	if (stat(path, &sb) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (sb.st_size == 0) {
		snprintf(err, errlen, "%s: empty file", path);
		return -1;
	}
	if (strcmp(role, "latent") == 0 || strcasecmp(ext, "latent") == 0 ||
	    strcasecmp(ext, "safetensors") == 0)
		return verify_safetensors(path, sb.st_size, err, errlen);
	if (is_media(ext)) {
		struct pr_video_info info;
		char why[256];
		if (pr_video_probe(path, &info, why, sizeof why) < 0) {
			snprintf(err, errlen, "%s: does not decode: %s", path, why);
			return -1;
		}
		if (info.frames < (min_frames > 0 ? min_frames : 1)) {
			snprintf(err, errlen, "%s: %ld frames, expected at least %ld", path,
			    info.frames, min_frames > 0 ? min_frames : 1);
			return -1;
		}
	}
	return 0;
}

/* The file entry of a node's UI output: any kind ("images", "gifs",
 * "latents", ...), preferring one whose extension matches where it goes. */
static const cJSON *
output_file(const cJSON *ui, const char *want_ext)
{
	const cJSON *kind, *f, *first = NULL;

	cJSON_ArrayForEach(kind, ui) {
		if (!cJSON_IsArray(kind))
			continue;
		cJSON_ArrayForEach(f, kind) {
			const char *name = pr_json_get_string(f, "filename");
			if (!name)
				continue;
			if (!first)
				first = f;
			if (strcasecmp(ext_of(name), want_ext) == 0)
				return f;
		}
	}
	return first;
}

/* Streams one file from /view. 0; -1 with *transient when trying again
 * later may work. */
static int
fetch(struct server *s, const cJSON *f, const char *dest, char *err, size_t errlen,
    bool *transient)
{
	const char *sub = pr_json_get_string(f, "subfolder");
	const char *type = pr_json_get_string(f, "type");
	char *ename = pr_http_escape(pr_json_get_string(f, "filename"));
	char *esub = pr_http_escape(sub ? sub : "");
	char *etype = pr_http_escape(type ? type : "output");
	char *path = pr_xasprintf("/view?filename=%s&subfolder=%s&type=%s", ename, esub, etype);
	double pause = 0.5;
	bool bounded;
	int rc = -1;

	free(ename);
	free(esub);
	free(etype);
	for (int attempt = 0; attempt < 6 && !stop_signal; attempt++) {
		struct pr_http_response r = { 0 };
		int64_t size;
		int got = pr_http_download(s->http, path, dest, &size, &r);

		if (got == 0 && r.status == 200) {
			pr_crash_point("downloaded");
			rc = 0;
		} else if (got == 0 && r.status < 500) {
			snprintf(err, errlen, "GET %s%s: HTTP %ld", s->url, path, r.status);
			*transient = false;
		} else {
			if (got < 0)
				snprintf(err, errlen, "%s", r.err);
			else
				snprintf(err, errlen, "GET %s%s: HTTP %ld", s->url, path, r.status);
			*transient = true;
		}
		/* Over --max-output-size or --transfer-timeout: the same again
		 * would cost as much for nothing. The render is still in the
		 * server's history: a rerun collects it once /view behaves. */
		if ((bounded = got < 0 && r.over_bound))
			snprintf(err, errlen, "%s (%s)", r.err, strstr(r.err, "larger than") ?
			    "--max-output-size" : "--transfer-timeout");
		pr_http_response_free(&r);
		/* No pause after the last try: nothing comes after it. */
		if (rc == 0 || !*transient || bounded || attempt == 5 || stop_signal)
			break;
		pause_for(pause);
		pause *= 2;
	}
	free(path);
	return rc;
}

/*
 * Temporary files a killed run left beside dest (the download's
 * ".part.XXXXXX", the atomic write's ".tmp.XXXXXX"): the state lock means
 * no other run is writing them.
 */
static void
remove_stale_temps(const char *dest)
{
	const char *slash = strrchr(dest, '/');
	char *dir = slash ? pr_xstrndup(dest, (size_t)(slash - dest)) : pr_xstrdup(".");
	const char *base = slash ? slash + 1 : dest;
	size_t n = strlen(base);
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, base, n) != 0 ||
		    (strncmp(e->d_name + n, ".part.", 6) != 0 && strncmp(e->d_name + n, ".tmp.", 5) != 0))
			continue;
		char *path = pr_xasprintf("%s/%s", dir, e->d_name);
		unlink(path);
		free(path);
	}
	if (d)
		closedir(d);
	free(dir);
}

static void
add_file(cJSON *files, const struct run *R, const char *role, const char *path)
{
	char hex[PR_SHA256_HEX], *local = job_local_path(R, path);
	long long size = 0;
	cJSON *f = pr_json_object();

	pr_sha256_file(local, hex, &size);
	free(local);
	pr_json_set_string(f, "role", role);
	pr_json_set_string(f, "path", path);
	pr_json_set_int(f, "size", size);
	pr_json_set_string(f, "sha256", hex);
	cJSON_AddItemToArray(files, f);
}

/* Frame K of a collected video as a PNG, by index: no time seek (unsafe
 * after VFR), no shell. */
static int
derive_frame(const char *src, long frame, const char *dest, char *err, size_t errlen)
{
	struct pr_video_info info;
	struct pr_buf png = PR_BUF_INIT, ferr = PR_BUF_INIT;
	char why[256], filter[64];
	int rc;

	if (pr_video_probe(src, &info, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s: %s", src, why);
		return -1;
	}
	if (frame < 0 || frame >= info.frames) {
		snprintf(err, errlen, "frame %ld of %s: it has %ld frames", frame, src, info.frames);
		return -1;
	}
	snprintf(filter, sizeof filter, "select=eq(n\\,%ld)", frame);
	char *argv[] = { "ffmpeg", "-nostdin", "-v", "error", "-i", (char *)src, "-vf", filter,
	    "-fps_mode", "passthrough", "-frames:v", "1", "-c:v", "png", "-f", "image2pipe",
	    "-", NULL };
	rc = pr_run(argv, &png, (size_t)256 << 20, &ferr);
	if (rc != 0 || png.len == 0) {
		snprintf(err, errlen, "ffmpeg could not take frame %ld of %s: %s", frame, src,
		    rc < 0 ? strerror(errno) : ferr.len ? ferr.data : "no output");
		rc = -1;
	} else if (pr_file_write_atomic(dest, png.data, png.len) < 0) {
		snprintf(err, errlen, "%s: %s", dest, strerror(errno));
		rc = -1;
	} else {
		rc = verify_file(dest, "image", 1, err, errlen);
	}
	pr_buf_free(&png);
	pr_buf_free(&ferr);
	return rc;
}

int
collect_outputs(struct run *R, struct job *j, const cJSON *entry, cJSON **error,
    bool *transient)
{
	const cJSON *outputs = pr_json_get(entry, "outputs");
	const cJSON *wf = pr_json_get(j->rec, "workflow");
	const cJSON *c;
	cJSON *files = pr_json_array();
	char err[1024];

	*transient = false;
	cJSON_ArrayForEach(c, pr_json_get(j->rec, "collect")) {
		const char *node = pr_json_get_string(c, "node");
		const char *role = pr_json_get_string(c, "role");
		const char *path = pr_json_get_string(c, "path");
		const char *class = pr_json_get_string(pr_json_get(wf, node), "class_type");
		const cJSON *f = output_file(pr_json_get(outputs, node), ext_of(path));
		char *dest;
		long min = 1;
		int64_t keep_to;

		if (!f) {
			*error = job_error(node, class, NULL, "node %s produced no output file "
			    "(history lists none for it)", node);
			goto fail;
		}
		if (strcmp(role, "segment") == 0 &&
		    pr_json_to_i64(cJSON_GetArrayItem(pr_json_get(j->rec, "keep"), 1), &keep_to) == 0)
			min = (long)keep_to;
		dest = job_local_path(R, path);
		remove_stale_temps(dest);
		if (fetch(j->srv, f, dest, err, sizeof err, transient) < 0) {
			free(dest);
			*error = job_error(node, class, NULL, "cannot collect %s: %s", path, err);
			goto fail;
		}
		if (verify_file(dest, role, min, err, sizeof err) < 0) {
			/* A bad file must not look like a result to anyone. */
			unlink(dest);
			free(dest);
			*error = job_error(node, class, NULL, "collected %s is not whole: %s", path, err);
			goto fail;
		}
		free(dest);
		add_file(files, R, role, path);
	}
	/* The derive steps are timed apart: frame extraction is the part of
	 * the gap between dependent jobs that ffmpeg, not the scheduler, owns. */
	j->t_fetched = pr_wall();
	cJSON_ArrayForEach(c, pr_json_get(j->rec, "derive")) {
		const char *from = pr_json_get_string(c, "from");
		const char *path = pr_json_get_string(c, "path");
		int64_t frame;
		char *src = job_local_path(R, from), *dest = job_local_path(R, path);
		remove_stale_temps(dest);
		int rc = pr_json_to_i64(pr_json_get(c, "frame"), &frame) < 0 ? -1 :
		    derive_frame(src, (long)frame, dest, err, sizeof err);

		if (rc < 0)
			unlink(dest);
		free(src);
		free(dest);
		if (rc < 0) {
			*error = job_error(NULL, NULL, NULL, "cannot derive %s: %s", path, err);
			goto fail;
		}
		add_file(files, R, pr_json_get_string(c, "role"), path);
	}
	cJSON_Delete(j->files);
	j->files = files;
	return 0;
fail:
	cJSON_Delete(files);
	return -1;
}
