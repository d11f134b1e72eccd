/*
 * The node classes, evaluated on identity-coded frames: a loader yields
 * the codes of the source frames it reads, samplers honour Wan's 4k+1
 * frame counts, latents remember which frames, seed and model passes they
 * hold, and the save nodes write real files (PNG, .latent safetensors,
 * h264 MP4) named the way ComfyUI and VideoHelperSuite name them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frameid.h"
#include "graph.h"
#include "proc.h"
#include "validate.h"
#include "video.h"
#include "ws.h"

/* ---- inputs ---- */

struct value *
arg(const struct node_ctx *N, const char *name)
{
	size_t i;

	for (i = 0; i < N->nargs; i++)
		if (strcmp(N->arg_names[i], name) == 0)
			return N->args[i];
	return NULL;
}

int64_t
arg_int(const struct node_ctx *N, const char *name, int64_t def)
{
	struct value *v = arg(N, name);

	if (!v)
		return def;
	switch (v->kind) {
	case V_INT: case V_BOOL: return v->i;
	case V_FLOAT: return (int64_t)v->f;
	case V_STRING: return strtoll(v->s, NULL, 10);
	default: return def;
	}
}

double
arg_float(const struct node_ctx *N, const char *name, double def)
{
	struct value *v = arg(N, name);

	if (!v)
		return def;
	switch (v->kind) {
	case V_INT: case V_BOOL: return (double)v->i;
	case V_FLOAT: return v->f;
	case V_STRING: return strtod(v->s, NULL);
	default: return def;
	}
}

const char *
arg_str(const struct node_ctx *N, const char *name, const char *def)
{
	struct value *v = arg(N, name);

	return v && v->kind == V_STRING ? v->s : def;
}

bool
arg_bool(const struct node_ctx *N, const char *name, bool def)
{
	struct value *v = arg(N, name);

	if (!v)
		return def;
	if (v->kind == V_BOOL || v->kind == V_INT)
		return v->i != 0;
	if (v->kind == V_STRING)
		return strcmp(v->s, "true") == 0 || strcmp(v->s, "True") == 0;
	return def;
}

static struct value *
arg_kind(const struct node_ctx *N, const char *name, enum vkind kind)
{
	struct value *v = arg(N, name);

	return v && v->kind == kind ? v : NULL;
}

static int
need(struct node_ctx *N, struct value *v, const char *name, const char *what)
{
	if (v)
		return 0;
	return node_fail(N, "ValueError", "input \"%s\" of %s %s carries no %s", name,
	    N->class_type, N->id, what);
}

/* ---- small helpers ---- */

static struct value *
thing(const char *type)
{
	struct value *v = value_new(V_THING);

	v->info = pr_json_object();
	pr_json_set_string(v->info, "type", type);
	return v;
}

static struct value *
int_value(int64_t i)
{
	struct value *v = value_new(V_INT);

	v->i = i;
	v->f = (double)i;
	return v;
}

/* New frames with the same codes (a filter that changes pixels only). */
static struct value *
same_frames(const struct value *src, int w, int h)
{
	struct value *v = value_frames(V_FRAMES, src->n, w, h);

	memcpy(v->codes, src->codes, src->n * sizeof *v->codes);
	return v;
}

/* Wan renders 4k+1 frames: what a sampler asked for LENGTH f makes. Kept
 * here on purpose, apart from pr-plan's, so the stand-in checks the plan
 * instead of agreeing with it by construction. */
static size_t
wan_frames(int64_t f)
{
	if (f < 1)
		return 0;
	return (size_t)(((f - 1) / 4) * 4 + 1);
}

/* "x.png [output]" -> folder "output", name "x.png". */
static void
annotated(const char *value, const char **folder, char **name)
{
	static const char *const types[] = { "input", "output", "temp" };
	size_t len = strlen(value), tl, i;

	*folder = "input";
	*name = pr_xstrdup(value);
	for (i = 0; i < 3; i++) {
		tl = strlen(types[i]);
		if (len > tl + 3 && value[len - tl - 3] == ' ' && value[len - tl - 2] == '[' &&
		    strncmp(value + len - tl - 1, types[i], tl) == 0 && value[len - 1] == ']') {
			(*name)[len - tl - 3] = '\0';
			*folder = types[i];
		}
	}
}

static char *
root_path(const char *folder, const char *name)
{
	char *p = pr_xmalloc(strlen(S.set.root) + strlen(folder) + strlen(name) + 3);

	sprintf(p, "%s/%s/%s", S.set.root, folder, name);
	return p;
}

static char *
rel_path(const char *folder, const char *name)
{
	char *p = pr_xmalloc(strlen(folder) + strlen(name) + 2);

	sprintf(p, "%s/%s", folder, name);
	return p;
}

/* ---- ComfyUI's output names (folder_paths.get_save_image_path) ---- */

struct save_path {
	char *folder;       /* absolute */
	char *subfolder;    /* as reported: the prefix's directory part */
	char *name;         /* the prefix's last part */
};

static void
save_path_free(struct save_path *p)
{
	free(p->folder);
	free(p->subfolder);
	free(p->name);
}

/* os.path.normpath, lexically. */
static char *
normpath(const char *path)
{
	struct pr_buf b = PR_BUF_INIT;
	char *copy = pr_xstrdup(path), *tok, *save;
	size_t keep;
	bool abs = path[0] == '/';

	if (abs)
		pr_buf_addc(&b, '/');
	for (tok = strtok_r(copy, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (strcmp(tok, ".") == 0)
			continue;
		if (strcmp(tok, "..") == 0 && b.len && !(b.len >= 2 &&
		    strcmp(b.data + b.len - 2, "..") == 0 && (b.len == 2 || b.data[b.len - 3] == '/'))) {
			keep = b.len;
			while (keep > 0 && b.data[keep - 1] != '/')
				keep--;
			if (abs && keep <= 1) {
				b.len = 1;
			} else {
				b.len = keep ? keep - 1 : 0;
			}
			b.data[b.len] = '\0';
			continue;
		}
		if (b.len && b.data[b.len - 1] != '/')
			pr_buf_addc(&b, '/');
		pr_buf_adds(&b, tok);
	}
	free(copy);
	if (!b.len)
		pr_buf_addc(&b, '.');
	return pr_buf_steal(&b);
}

static int
save_path(struct node_ctx *N, const char *prefix, const char *base_folder, struct save_path *p)
{
	char *norm = normpath(prefix), *slash, *base, *full, *canon;
	int rc = 0;

	memset(p, 0, sizeof *p);
	slash = strrchr(norm, '/');
	p->name = pr_xstrdup(slash ? slash + 1 : norm);
	p->subfolder = slash ? pr_xstrndup(norm, (size_t)(slash - norm)) : pr_xstrdup("");
	base = root_path(base_folder, "");
	base[strlen(base) - 1] = '\0';             /* no trailing slash */
	if (p->subfolder[0] == '/')
		full = pr_xstrdup(p->subfolder);
	else if (p->subfolder[0])
		full = rel_path(base, p->subfolder);
	else
		full = pr_xstrdup(base);
	canon = normpath(full);
	if (strncmp(canon, base, strlen(base)) != 0 ||
	    (canon[strlen(base)] != '\0' && canon[strlen(base)] != '/')) {
		rc = node_fail(N, "Exception", "**** ERROR: Saving image outside the output folder "
		    "is not allowed.\n full_output_folder: %s\n         output_dir: %s\n"
		    "         commonpath: %s\n", canon, base, "/");
		free(canon);
		canon = NULL;
	} else if (pr_mkdirs(canon) < 0) {
		rc = node_fail(N, "OSError", "%s: %s", canon, strerror(errno));
	}
	p->folder = canon;
	free(base);
	free(full);
	free(norm);
	return rc;
}

/*
 * The next file number in folder: 1 + the highest existing one. ComfyUI
 * counts <name>_<digits>_ (any extension); VideoHelperSuite, with its own
 * regex, <name>_<digits><anything>.<ext>, ignoring case.
 */
static long
next_counter(const char *folder, const char *name, bool vhs)
{
	size_t len = strlen(name);
	struct dirent *de;
	long best = 0, n;
	char *end;
	DIR *d;

	if (!(d = opendir(folder)))
		return 1;
	while ((de = readdir(d))) {
		if ((vhs ? strncasecmp(de->d_name, name, len) : strncmp(de->d_name, name, len)) != 0 ||
		    de->d_name[len] != '_')
			continue;
		n = strtol(de->d_name + len + 1, &end, 10);
		if (end != de->d_name + len + 1 && (vhs ? strchr(end, '.') != NULL : *end == '_') &&
		    n > best)
			best = n;
	}
	closedir(d);
	return best + 1;
}

static cJSON *
file_entry(const char *filename, const char *subfolder, const char *type)
{
	cJSON *e = pr_json_object();

	pr_json_set_string(e, "filename", filename);
	pr_json_set_string(e, "subfolder", subfolder);
	pr_json_set_string(e, "type", type);
	return e;
}

/* The file's path relative to the root, for the control endpoint. */
static void
wrote(struct node_ctx *N, const char *abs)
{
	size_t n = strlen(S.set.root);

	node_wrote(N, strncmp(abs, S.set.root, n) == 0 ? abs + n + 1 : abs);
}

/* ---- the .latent file: safetensors with our frames in the metadata ---- */

static int
write_latent(struct node_ctx *N, const char *path, const struct value *lat, const cJSON *prompt_json)
{
	cJSON *hdr = pr_json_object(), *meta = pr_json_object(), *t, *shape, *mine, *codes;
	struct pr_buf b = PR_BUF_INIT, out = PR_BUF_INIT;
	int pw, ph, tl;
	size_t data, i, padded;
	uint64_t len;
	unsigned char le[8];
	char *tmp;
	int rc;

	physical_size(lat->w, lat->h, &pw, &ph);
	tl = lat->n ? (int)((lat->n - 1) / 4 + 1) : 1;
	data = (size_t)16 * (size_t)tl * (size_t)(pw / 8 + 1) * (size_t)(ph / 8 + 1) * 4;
	mine = pr_json_object();
	pr_json_set_int(mine, "w", lat->w);
	pr_json_set_int(mine, "h", lat->h);
	codes = pr_json_array();
	for (i = 0; i < lat->n; i++)
		cJSON_AddItemToArray(codes, lat->codes[i] == PR_FRAMEID_NONE ? cJSON_CreateNull()
		    : pr_json_int(lat->codes[i]));
	pr_json_set(mine, "codes", codes);
	pr_json_set(mine, "passes", lat->info ? pr_json_copy(lat->info) : pr_json_array());
	pr_json_write(&b, prompt_json, 0);
	pr_json_set_string(meta, "prompt", b.data ? b.data : "{}");
	pr_buf_reset(&b);
	pr_json_write(&b, mine, 0);
	pr_json_set_string(meta, "fake-comfyui", b.data);
	cJSON_Delete(mine);
	pr_json_set(hdr, "__metadata__", meta);
	t = pr_json_object();
	pr_json_set_string(t, "dtype", "F32");
	shape = pr_json_array();
	cJSON_AddItemToArray(shape, pr_json_int(1));
	cJSON_AddItemToArray(shape, pr_json_int(16));
	cJSON_AddItemToArray(shape, pr_json_int(tl));
	cJSON_AddItemToArray(shape, pr_json_int(ph / 8 + 1));
	cJSON_AddItemToArray(shape, pr_json_int(pw / 8 + 1));
	pr_json_set(t, "shape", shape);
	shape = pr_json_array();
	cJSON_AddItemToArray(shape, pr_json_int(0));
	cJSON_AddItemToArray(shape, pr_json_int((int64_t)data));
	pr_json_set(t, "data_offsets", shape);
	pr_json_set(hdr, "latent_tensor", t);
	t = pr_json_object();
	pr_json_set_string(t, "dtype", "F32");
	shape = pr_json_array();
	cJSON_AddItemToArray(shape, pr_json_int(0));
	pr_json_set(t, "shape", shape);
	shape = pr_json_array();
	cJSON_AddItemToArray(shape, pr_json_int((int64_t)data));
	cJSON_AddItemToArray(shape, pr_json_int((int64_t)data));
	pr_json_set(t, "data_offsets", shape);
	pr_json_set(hdr, "latent_format_version_0", t);
	pr_buf_reset(&b);
	pr_json_write(&b, hdr, 0);
	cJSON_Delete(hdr);
	/* The header is space-padded to 8 bytes, as safetensors writes it. */
	padded = (b.len + 7) / 8 * 8;
	while (b.len < padded)
		pr_buf_addc(&b, ' ');
	len = b.len;
	for (i = 0; i < 8; i++)
		le[i] = (unsigned char)(len >> (8 * i));
	pr_buf_add(&out, le, 8);
	pr_buf_add(&out, b.data, b.len);
	tmp = pr_xcalloc(1, data ? data : 1);
	pr_buf_add(&out, tmp, data);
	free(tmp);
	rc = pr_file_write_atomic(path, out.data, out.len);
	if (rc < 0)
		node_fail(N, "OSError", "%s: %s", path, strerror(errno));
	pr_buf_free(&b);
	pr_buf_free(&out);
	return rc;
}

static struct value *
read_latent(struct node_ctx *N, const char *path)
{
	struct pr_buf b = PR_BUF_INIT;
	struct pr_json_error e;
	cJSON *hdr = NULL, *mine = NULL, *c;
	const char *text;
	struct value *v = NULL;
	uint64_t len = 0;
	size_t i;

	if (pr_file_read(path, (size_t)1 << 30, &b) < 0) {
		node_fail(N, "FileNotFoundError", "%s: %s", path, strerror(errno));
		goto out;
	}
	for (i = 0; i < 8 && i < b.len; i++)
		len |= (uint64_t)(unsigned char)b.data[i] << (8 * i);
	if (b.len < 8 || len > b.len - 8 ||
	    !(hdr = pr_json_parse(b.data + 8, (size_t)len, &e, NULL))) {
		node_fail(N, "safetensors_rust.SafetensorError", "Error while deserializing header: %s",
		    path);
		goto out;
	}
	text = pr_json_get_string(pr_json_get(hdr, "__metadata__"), "fake-comfyui");
	if (!text || !(mine = pr_json_parse(text, strlen(text), &e, NULL))) {
		node_fail(N, "ValueError", "%s: not a latent this stand-in wrote (no frames in it)", path);
		goto out;
	}
	c = pr_json_get(mine, "codes");
	v = value_frames(V_LATENT, (size_t)cJSON_GetArraySize(c),
	    (int)cJSON_GetNumberValue(pr_json_get(mine, "w")), 0);
	{
		int64_t w = 0, h = 0;

		pr_json_to_i64(pr_json_get(mine, "w"), &w);
		pr_json_to_i64(pr_json_get(mine, "h"), &h);
		v->w = (int)w;
		v->h = (int)h;
	}
	i = 0;
	cJSON_ArrayForEach(c, pr_json_get(mine, "codes")) {
		int64_t code;

		v->codes[i++] = pr_json_to_i64(c, &code) == 0 ? (uint32_t)code : PR_FRAMEID_NONE;
	}
	v->info = pr_json_copy(pr_json_get(mine, "passes"));
out:
	cJSON_Delete(hdr);
	cJSON_Delete(mine);
	pr_buf_free(&b);
	return v;
}

/* ---- reading videos, with a small memory of what was decoded ---- */

struct decoded {
	char *path;
	long long size, mtime;
	uint32_t *codes;
	size_t n;
	struct pr_video_info info;
};

static struct decoded seen[8];
static unsigned seen_next;

/* The codes of every frame of a video (decoded small: the code survives
 * scaling) and its probe, remembered while the file is unchanged. */
static const struct decoded *
decode_video(struct node_ctx *N, const char *path)
{
	char err[512];
	struct stat st;
	struct decoded *d;
	size_t i;

	if (stat(path, &st) < 0) {
		node_fail(N, "FileNotFoundError", "%s: %s", path, strerror(errno));
		return NULL;
	}
	for (i = 0; i < 8; i++) {
		d = &seen[i];
		if (d->path && strcmp(d->path, path) == 0 && d->size == (long long)st.st_size &&
		    d->mtime == (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec)
			return d;
	}
	d = &seen[seen_next++ % 8];
	free(d->path);
	free(d->codes);
	memset(d, 0, sizeof *d);
	if (pr_video_probe(path, &d->info, err, sizeof err) < 0 ||
	    pr_video_read_codes(path, 64, 48, &d->codes, &d->n, err, sizeof err) < 0) {
		free(d->codes);
		memset(d, 0, sizeof *d);
		node_fail(N, "RuntimeError", "%s", err);
		return NULL;
	}
	d->path = pr_xstrdup(path);
	d->size = (long long)st.st_size;
	d->mtime = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	return d;
}

/* The loaded size: VHS keeps the aspect ratio when one side is 0. */
static void
loaded_size(int sw, int sh, int64_t cw, int64_t ch, int *w, int *h)
{
	*w = sw;
	*h = sh;
	if (cw > 0 && ch > 0) {
		*w = (int)cw;
		*h = (int)ch;
	} else if (cw > 0 && sw > 0) {
		*w = (int)cw;
		*h = (int)((double)sh * (double)cw / sw + 0.5);
	} else if (ch > 0 && sh > 0) {
		*h = (int)ch;
		*w = (int)((double)sw * (double)ch / sh + 0.5);
	}
}

static int
load_video(struct node_ctx *N, const char *path, const char *rel)
{
	const struct decoded *d = decode_video(N, path);
	double fps, force = arg_float(N, "force_rate", 0), t;
	int64_t skip = arg_int(N, "skip_first_frames", 0), cap = arg_int(N, "frame_load_cap", 0);
	int64_t nth = arg_int(N, "select_every_nth", 1), k, src;
	size_t nsel = 0, total, i;
	uint32_t *picked;
	struct value *v, *vi;
	int w, h;

	if (!d)
		return -1;
	node_read(N, rel);
	fps = d->info.fps_den ? (double)d->info.fps_num / d->info.fps_den : 30;
	/* force_rate resamples in time; the frames that remain are those
	 * whose time falls on the new rate's grid. */
	total = d->n;
	if (force > 0 && fabs(force - fps) > 1e-6)
		total = (size_t)floor((double)d->n * force / fps);
	if (nth < 1)
		nth = 1;
	picked = pr_xcalloc(total + 1, sizeof *picked);
	for (k = skip; (size_t)k < total; k += nth) {
		if (cap > 0 && (int64_t)nsel >= cap)
			break;
		t = force > 0 && fabs(force - fps) > 1e-6 ? (double)k / force : (double)k / fps;
		src = (int64_t)floor(t * fps + 1e-9);
		if ((size_t)src >= d->n)
			break;
		/* A coded source says which frame it is; any other video's
		 * frames are numbered by their position. */
		picked[nsel++] = d->codes[src] != PR_FRAMEID_NONE ? d->codes[src] : (uint32_t)src;
	}
	if (nsel == 0) {
		free(picked);
		return node_fail(N, "RuntimeError", "No frames generated");
	}
	loaded_size(d->info.width, d->info.height, arg_int(N, "custom_width", 0),
	    arg_int(N, "custom_height", 0), &w, &h);
	v = value_frames(V_FRAMES, nsel, w, h);
	memcpy(v->codes, picked, nsel * sizeof *picked);
	free(picked);
	N->out[0] = v;
	N->out[1] = int_value((int64_t)nsel);
	N->out[2] = value_new(V_NONE);
	vi = thing("VHS_VIDEOINFO");
	pr_json_set(vi->info, "source_fps", cJSON_CreateNumber(fps));
	pr_json_set_int(vi->info, "source_frame_count", (int64_t)d->n);
	pr_json_set_int(vi->info, "source_width", d->info.width);
	pr_json_set_int(vi->info, "source_height", d->info.height);
	pr_json_set(vi->info, "loaded_fps", cJSON_CreateNumber(force > 0 ? force : fps));
	pr_json_set_int(vi->info, "loaded_frame_count", (int64_t)nsel);
	pr_json_set_int(vi->info, "loaded_width", w);
	pr_json_set_int(vi->info, "loaded_height", h);
	N->out[3] = vi;
	(void)i;
	return 0;
}

static int
n_vhs_load_video(struct node_ctx *N)
{
	const char *folder;
	char *name, *path, *rel;
	int rc;

	annotated(arg_str(N, "video", ""), &folder, &name);
	path = root_path(folder, name);
	rel = rel_path(folder, name);
	rc = load_video(N, path, rel);
	free(name);
	free(path);
	free(rel);
	return rc;
}

static int
n_vhs_load_video_path(struct node_ctx *N)
{
	const char *given = arg_str(N, "video", "");
	char *path;
	int rc;

	if (given[0] == '/')
		path = pr_xstrdup(given);
	else
		path = rel_path(S.set.root, given);
	rc = load_video(N, path, given);
	free(path);
	return rc;
}

/* ---- writing pictures ---- */

static int
write_pngs(struct node_ctx *N, const struct value *img, const char *prefix,
    const char *base_folder, const char *type, bool temp_name)
{
	struct save_path p;
	char name[512], *abs, err[512], rnd[6];
	cJSON *list = pr_json_array();
	unsigned char r[5];
	long counter;
	int pw, ph, i;
	size_t k;

	if (temp_name) {
		/* PreviewImage: ComfyUI_temp_<5 letters>_00001_.png in temp/ */
		if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
			memset(r, 7, sizeof r);
		for (i = 0; i < 5; i++)
			rnd[i] = (char)('a' + r[i] % 26);
		rnd[5] = '\0';
		snprintf(name, sizeof name, "%s_temp_%s", prefix, rnd);
		prefix = name;
	}
	if (save_path(N, prefix, base_folder, &p) < 0) {
		save_path_free(&p);
		cJSON_Delete(list);
		return -1;
	}
	counter = next_counter(p.folder, p.name, false);
	physical_size(img->w, img->h, &pw, &ph);
	for (k = 0; k < img->n; k++, counter++) {
		snprintf(name, sizeof name, "%s_%05ld_.png", p.name, counter);
		abs = rel_path(p.folder, name);
		if (pr_image_write_code(abs, img->codes[k], pw, ph, err, sizeof err) < 0) {
			free(abs);
			save_path_free(&p);
			cJSON_Delete(list);
			return node_fail(N, "OSError", "%s", err);
		}
		node_output_faults(N, abs);
		wrote(N, abs);
		free(abs);
		cJSON_AddItemToArray(list, file_entry(name, p.subfolder, type));
	}
	N->ui = pr_json_object();
	pr_json_set(N->ui, "images", list);
	save_path_free(&p);
	return 0;
}

static int
n_save_image(struct node_ctx *N)
{
	struct value *img = arg_kind(N, "images", V_FRAMES);

	if (need(N, img, "images", "images") < 0)
		return -1;
	return write_pngs(N, img, arg_str(N, "filename_prefix", "ComfyUI"), "output", "output", false);
}

static int
n_preview_image(struct node_ctx *N)
{
	struct value *img = arg_kind(N, "images", V_FRAMES);

	if (need(N, img, "images", "images") < 0)
		return -1;
	return write_pngs(N, img, "ComfyUI", "temp", "temp", true);
}

static int
n_save_latent(struct node_ctx *N)
{
	struct value *lat = arg_kind(N, "samples", V_LATENT);
	struct save_path p;
	char name[512], *abs;
	cJSON *list;
	int rc;

	if (need(N, lat, "samples", "latent") < 0)
		return -1;
	if (save_path(N, arg_str(N, "filename_prefix", "latents/ComfyUI"), "output", &p) < 0) {
		save_path_free(&p);
		return -1;
	}
	snprintf(name, sizeof name, "%s_%05ld_.latent", p.name, next_counter(p.folder, p.name, false));
	abs = rel_path(p.folder, name);
	rc = write_latent(N, abs, lat, node_prompt(N));
	if (rc == 0) {
		node_output_faults(N, abs);
		wrote(N, abs);
		list = pr_json_array();
		cJSON_AddItemToArray(list, file_entry(name, p.subfolder, "output"));
		N->ui = pr_json_object();
		pr_json_set(N->ui, "latents", list);
	}
	free(abs);
	save_path_free(&p);
	return rc;
}

static int
n_load_latent(struct node_ctx *N)
{
	const char *folder;
	char *name, *path, *rel;
	struct value *v;

	annotated(arg_str(N, "latent", ""), &folder, &name);
	path = root_path(folder, name);
	rel = rel_path(folder, name);
	if ((v = read_latent(N, path))) {
		node_read(N, rel);
		N->out[0] = v;
	}
	free(name);
	free(path);
	free(rel);
	return v ? 0 : -1;
}

static int
n_load_image(struct node_ctx *N)
{
	const char *folder;
	char *name, *path, *rel, err[512];
	struct pr_video_info info;
	uint32_t *codes = NULL;
	size_t n = 0;
	struct value *v;
	int rc = -1;

	annotated(arg_str(N, "image", ""), &folder, &name);
	path = root_path(folder, name);
	rel = rel_path(folder, name);
	if (pr_video_probe(path, &info, err, sizeof err) < 0 ||
	    pr_video_read_codes(path, 64, 48, &codes, &n, err, sizeof err) < 0 || n == 0) {
		node_fail(N, "PIL.UnidentifiedImageError", "cannot identify image file '%s'", path);
	} else {
		node_read(N, rel);
		v = value_frames(V_FRAMES, 1, info.width * S.set.frame_scale,
		    info.height * S.set.frame_scale);
		v->codes[0] = codes[0];
		N->out[0] = v;
		N->out[1] = thing("MASK");
		rc = 0;
	}
	free(codes);
	free(name);
	free(path);
	free(rel);
	return rc;
}

/* ---- VideoHelperSuite's Video Combine ---- */

static int
n_video_combine(struct node_ctx *N)
{
	struct value *img = arg(N, "images");
	const char *format = arg_str(N, "format", "video/h264-mp4");
	bool save = arg_bool(N, "save_output", true), pingpong = arg_bool(N, "pingpong", false);
	double fps = arg_float(N, "frame_rate", 8);
	struct save_path p;
	char name[512], png[512], *abs, *abs_png, rate[64], err[512];
	struct pr_buf fr = PR_BUF_INIT;
	uint32_t *codes;
	size_t n, k;
	long counter;
	int pw, ph, rc = -1;
	cJSON *e, *list, *files;

	if (!img || (img->kind != V_FRAMES && img->kind != V_LATENT))
		return need(N, NULL, "images", "images");
	if (strcmp(format, "video/h264-mp4") != 0)
		return node_fail(N, "NotImplementedError", "fake-comfyui writes video/h264-mp4 only, "
		    "not %s", format);
	if (save_path(N, arg_str(N, "filename_prefix", "AnimateDiff"), save ? "output" : "temp", &p) < 0) {
		save_path_free(&p);
		return -1;
	}
	n = img->n + (pingpong && img->n > 2 ? img->n - 2 : 0);
	codes = pr_xcalloc(n + 1, sizeof *codes);
	memcpy(codes, img->codes, img->n * sizeof *codes);
	for (k = img->n; k < n; k++)
		codes[k] = img->codes[2 * img->n - 2 - k];
	counter = next_counter(p.folder, p.name, true);
	snprintf(name, sizeof name, "%s_%05ld.mp4", p.name, counter);
	snprintf(png, sizeof png, "%s_%05ld.png", p.name, counter);
	abs = rel_path(p.folder, name);
	abs_png = rel_path(p.folder, png);
	physical_size(img->w, img->h, &pw, &ph);
	pr_python_float(&fr, fps);
	snprintf(rate, sizeof rate, "%s", fr.data);
	/* VHS saves the first frame as a PNG (it carries the workflow). */
	if (pr_image_write_code(abs_png, codes[0], pw, ph, err, sizeof err) < 0 ||
	    pr_video_write_codes(abs, codes, n, pw, ph, rate,
	    (int)arg_int(N, "crf", 19), err, sizeof err) < 0) {
		node_fail(N, "subprocess.CalledProcessError", "%s", err);
		goto out;
	}
	node_output_faults(N, abs);
	wrote(N, abs_png);
	wrote(N, abs);
	e = file_entry(name, p.subfolder, save ? "output" : "temp");
	pr_json_set_string(e, "format", format);
	pr_json_set(e, "frame_rate", pr_json_number_text(rate));
	pr_json_set_string(e, "workflow", png);
	pr_json_set_string(e, "fullpath", abs);
	list = pr_json_array();
	cJSON_AddItemToArray(list, e);
	N->ui = pr_json_object();
	pr_json_set(N->ui, "gifs", list);
	N->out[0] = thing("VHS_FILENAMES");
	files = pr_json_array();
	cJSON_AddItemToArray(files, pr_json_string(abs_png));
	cJSON_AddItemToArray(files, pr_json_string(abs));
	pr_json_set(N->out[0]->info, "files", files);
	rc = 0;
out:
	pr_buf_free(&fr);
	free(codes);
	free(abs);
	free(abs_png);
	save_path_free(&p);
	return rc;
}

/* ---- the Wan model side ---- */

static int
n_model_loader(struct node_ctx *N)
{
	const char *model = arg_str(N, "model", arg_str(N, "ckpt_name", arg_str(N, "unet_name", "")));
	struct value *lora = arg(N, "lora"), *v;

	if (node_load_model(N, model) < 0)
		return -1;
	v = thing("WANVIDEOMODEL");
	pr_json_set_string(v->info, "model", model);
	if (lora && lora->kind == V_THING)
		pr_json_set(v->info, "loras", pr_json_copy(pr_json_get(lora->info, "loras")));
	N->out[0] = v;
	return 0;
}

static int
n_lora_select(struct node_ctx *N)
{
	struct value *prev = arg(N, "prev_lora"), *v = thing("WANVIDLORA");
	cJSON *list, *one = pr_json_object();

	list = prev && prev->kind == V_THING && pr_json_get(prev->info, "loras")
	    ? pr_json_copy(pr_json_get(prev->info, "loras")) : pr_json_array();
	pr_json_set_string(one, "lora", arg_str(N, "lora", ""));
	pr_json_set(one, "strength", cJSON_CreateNumber(arg_float(N, "strength", 1)));
	cJSON_AddItemToArray(list, one);
	pr_json_set(v->info, "loras", list);
	N->out[0] = v;
	return 0;
}

static int
n_text_encode(struct node_ctx *N)
{
	struct value *v = thing("WANVIDEOTEXTEMBEDS");

	pr_json_set_string(v->info, "positive", arg_str(N, "positive_prompt", ""));
	pr_json_set_string(v->info, "negative", arg_str(N, "negative_prompt", ""));
	N->out[0] = v;
	return 0;
}

/* WanVideo VACE Encode: the control frames, cut to what Wan renders. */
static int
n_vace_encode(struct node_ctx *N)
{
	struct value *frames = arg_kind(N, "input_frames", V_FRAMES);
	struct value *ref = arg_kind(N, "ref_images", V_FRAMES), *v;
	int64_t asked = arg_int(N, "num_frames", 81);
	size_t n = wan_frames(asked), i;

	if (frames && frames->n < n)
		return node_fail(N, "RuntimeError", "input_frames has %zu frames, fewer than the "
		    "%zu that num_frames %" PRId64 " renders", frames->n, n, asked);
	v = value_frames(V_THING, n, (int)arg_int(N, "width", 832), (int)arg_int(N, "height", 480));
	for (i = 0; i < n; i++)
		v->codes[i] = frames ? frames->codes[i] : PR_FRAMEID_NONE;
	v->info = pr_json_object();
	pr_json_set_string(v->info, "type", "WANVIDIMAGE_EMBEDS");
	pr_json_set(v->info, "reference", ref && ref->n ? pr_json_int(ref->codes[0]) : cJSON_CreateNull());
	N->out[0] = v;
	return 0;
}

/*
 * WanVideo Sampler: runs steps [start_step, end_step) of steps with the
 * loaded model. Without samples it starts from noise over the embeds'
 * frames; with samples it continues them, whatever frames they hold, so
 * a latent handed to the wrong chunk shows in the video.
 */
static int
n_sampler(struct node_ctx *N)
{
	struct value *model = arg_kind(N, "model", V_THING);
	struct value *embeds = arg_kind(N, "image_embeds", V_THING);
	struct value *samples = arg_kind(N, "samples", V_LATENT), *v;
	int64_t steps = arg_int(N, "steps", 30), from = arg_int(N, "start_step", 0);
	int64_t to = arg_int(N, "end_step", -1), s;
	const struct value *src;
	double step_time;
	cJSON *pass, *seed;
	char seedtext[32];

	if (need(N, model, "model", "model") < 0 || need(N, embeds, "image_embeds", "embeds") < 0)
		return -1;
	if (to < 0 || to > steps)
		to = steps;
	if (from < 0 || from >= to)
		return node_fail(N, "ValueError", "start_step %" PRId64 " is not before end_step %" PRId64,
		    from, to);
	pthread_mutex_lock(&S.lock);
	step_time = S.set.step_time;
	pthread_mutex_unlock(&S.lock);
	for (s = from + 1; s <= to; s++)
		if (node_wait(N, step_time) < 0 || node_progress(N, (long)(s - from), (long)(to - from)) < 0)
			return -1;
	src = samples ? samples : embeds;
	v = value_frames(V_LATENT, src->n, embeds->w, embeds->h);
	memcpy(v->codes, src->codes, src->n * sizeof *v->codes);
	v->info = samples && samples->info ? pr_json_copy(samples->info) : pr_json_array();
	pass = pr_json_object();
	pr_json_set_string(pass, "model", pr_json_get_string(model->info, "model") ?
	    pr_json_get_string(model->info, "model") : "");
	/* The seed exactly as given: up to 2^64-1. */
	seed = NULL;
	{
		const cJSON *lit = pr_json_get(N->literals, "seed");

		if (lit && cJSON_IsRaw(lit))
			seed = pr_json_number_text(lit->valuestring);
	}
	if (!seed) {
		snprintf(seedtext, sizeof seedtext, "%" PRId64, arg_int(N, "seed", 0));
		seed = pr_json_number_text(seedtext);
	}
	pr_json_set(pass, "seed", seed);
	pr_json_set_int(pass, "from", from);
	pr_json_set_int(pass, "to", to);
	pr_json_set_int(pass, "steps", steps);
	if (samples && (samples->n != embeds->n ||
	    memcmp(samples->codes, embeds->codes, samples->n * sizeof *samples->codes) != 0))
		pr_json_set(pass, "frames_differ_from_control", cJSON_CreateTrue());
	cJSON_AddItemToArray(v->info, pass);
	N->out[0] = v;
	N->out[1] = value_ref(v);
	return 0;
}

static int
n_decode(struct node_ctx *N)
{
	struct value *lat = arg_kind(N, "samples", V_LATENT);

	if (need(N, lat, "samples", "latent") < 0)
		return -1;
	N->out[0] = same_frames(lat, lat->w, lat->h);
	return 0;
}

static int
n_empty_image(struct node_ctx *N)
{
	int64_t n = arg_int(N, "batch_size", 1), i;
	struct value *v;

	if (n < 1)
		n = 1;
	v = value_frames(V_FRAMES, (size_t)n, (int)arg_int(N, "width", 512),
	    (int)arg_int(N, "height", 512));
	for (i = 0; i < n; i++)
		v->codes[i] = PR_FRAMEID_NONE;
	N->out[0] = v;
	return 0;
}

static int
n_empty_latent(struct node_ctx *N)
{
	int64_t n = arg_int(N, "batch_size", 1), i;
	struct value *v;

	if (n < 1)
		n = 1;
	v = value_frames(V_LATENT, (size_t)n, (int)arg_int(N, "width", 512),
	    (int)arg_int(N, "height", 512));
	for (i = 0; i < n; i++)
		v->codes[i] = PR_FRAMEID_NONE;
	v->info = pr_json_array();
	N->out[0] = v;
	return 0;
}

/* ---- image filters: sizes change, frames keep their codes ---- */

static struct value *
images_in(struct node_ctx *N)
{
	static const char *const names[] = { "images", "image", "frames" };
	struct value *v;
	size_t i;

	for (i = 0; i < 3; i++)
		if ((v = arg_kind(N, names[i], V_FRAMES)))
			return v;
	return NULL;
}

static int
n_pass_frames(struct node_ctx *N)
{
	struct value *img = images_in(N);

	if (need(N, img, "images", "images") < 0)
		return -1;
	N->out[0] = same_frames(img, img->w, img->h);
	return 0;
}

static int
n_scale_by(struct node_ctx *N)
{
	struct value *img = images_in(N);
	double s = arg_float(N, "scale_by", 1);

	if (need(N, img, "image", "images") < 0)
		return -1;
	N->out[0] = same_frames(img, (int)(img->w * s + 0.5), (int)(img->h * s + 0.5));
	return 0;
}

static int
n_scale(struct node_ctx *N)
{
	struct value *img = images_in(N);
	int64_t w = arg_int(N, "width", 0), h = arg_int(N, "height", 0);

	if (need(N, img, "image", "images") < 0)
		return -1;
	if (w == 0 && h == 0) {
		w = img->w;
		h = img->h;
	} else if (w == 0) {
		w = (int64_t)((double)img->w * (double)h / img->h + 0.5);
	} else if (h == 0) {
		h = (int64_t)((double)img->h * (double)w / img->w + 0.5);
	}
	N->out[0] = same_frames(img, (int)w, (int)h);
	return 0;
}

static int
round_to(double v, int64_t m)
{
	if (m < 1)
		m = 1;
	return (int)(floor(v / (double)m + 0.5) * (double)m);
}

static int
n_cr_upscale(struct node_ctx *N)
{
	struct value *img = images_in(N);
	const char *mode = arg_str(N, "mode", "rescale");
	int64_t mod = arg_int(N, "rounding_modulus", 8);
	double f = arg_float(N, "rescale_factor", 2), w, h;

	if (need(N, img, "image", "images") < 0)
		return -1;
	if (strcmp(mode, "resize") == 0) {
		w = (double)arg_int(N, "resize_width", 1024);
		h = (double)img->h * w / img->w;
	} else {
		w = img->w * f;
		h = img->h * f;
	}
	N->out[0] = same_frames(img, round_to(w, mod), round_to(h, mod));
	return 0;
}

/* RIFE: between each two frames, multiplier - 1 new ones: (n-1)*m + 1. */
static int
n_rife(struct node_ctx *N)
{
	struct value *img = images_in(N), *v;
	int64_t m = arg_int(N, "multiplier", 2), j;
	size_t i, k = 0;

	if (need(N, img, "frames", "images") < 0)
		return -1;
	if (m < 1)
		m = 1;
	v = value_frames(V_FRAMES, img->n ? (img->n - 1) * (size_t)m + 1 : 0, img->w, img->h);
	for (i = 0; i < img->n; i++) {
		v->codes[k++] = img->codes[i];
		if (i + 1 == img->n)
			break;
		for (j = 1; j < m; j++)
			v->codes[k++] = img->codes[i] == PR_FRAMEID_NONE ? PR_FRAMEID_NONE :
			    (CODE_BETWEEN | (img->codes[i] & (CODE_BETWEEN - 1)));
	}
	N->out[0] = v;
	return 0;
}

static int
n_batch_multiple(struct node_ctx *N)
{
	static const char *const names[] = { "image_1", "image_2", "image_3", "image_4", "image_5" };
	struct value *first = arg_kind(N, "image_1", V_FRAMES), *p, *v;
	size_t i, n = 0, k = 0;

	if (need(N, first, "image_1", "images") < 0)
		return -1;
	for (i = 0; i < 5; i++)
		if ((p = arg_kind(N, names[i], V_FRAMES)))
			n += p->n;
	v = value_frames(V_FRAMES, n, first->w, first->h);
	for (i = 0; i < 5; i++)
		if ((p = arg_kind(N, names[i], V_FRAMES))) {
			memcpy(v->codes + k, p->codes, p->n * sizeof *p->codes);
			k += p->n;
		}
	N->out[0] = v;
	return 0;
}

static int
n_int_constant(struct node_ctx *N)
{
	N->out[0] = int_value(arg_int(N, "value", 0));
	return 0;
}

static int
n_opaque(struct node_ctx *N)
{
	/* Loaders and settings whose result only matters as "present". */
	N->out[0] = thing(N->class_type);
	return 0;
}

static int
n_get_image_size(struct node_ctx *N)
{
	struct value *img = images_in(N);
	char text[128];
	unsigned char *frame;
	size_t idlen = strlen(N->id), tl, len;

	if (need(N, img, "image", "images") < 0)
		return -1;
	N->out[0] = int_value(img->w);
	N->out[1] = int_value(img->h);
	N->out[2] = int_value((int64_t)img->n);
	/* send_progress_text: binary event 3, broadcast (no target). */
	snprintf(text, sizeof text, "width: %d, height: %d\n batch size: %zu", img->w, img->h, img->n);
	tl = strlen(text);
	len = 8 + idlen + tl;
	frame = pr_xmalloc(len);
	frame[0] = frame[1] = frame[2] = 0;
	frame[3] = 3;
	frame[4] = (unsigned char)(idlen >> 24);
	frame[5] = (unsigned char)(idlen >> 16);
	frame[6] = (unsigned char)(idlen >> 8);
	frame[7] = (unsigned char)idlen;
	memcpy(frame + 8, N->id, idlen);
	memcpy(frame + 8 + idlen, text, tl);
	ws_send_binary(frame, len, TO_ALL, NULL);
	free(frame);
	return 0;
}

static int
n_preview_any(struct node_ctx *N)
{
	struct value *v = arg(N, "source");
	cJSON *list = pr_json_array();
	char buf[64];

	switch (v ? v->kind : V_NONE) {
	case V_INT: snprintf(buf, sizeof buf, "%" PRId64, v->i); break;
	case V_STRING: snprintf(buf, sizeof buf, "%.60s", v->s); break;
	case V_BOOL: snprintf(buf, sizeof buf, "%s", v->b ? "True" : "False"); break;
	case V_FLOAT: {
		struct pr_buf b = PR_BUF_INIT;

		pr_python_float(&b, v->f);
		snprintf(buf, sizeof buf, "%s", b.data);
		pr_buf_free(&b);
		break;
	}
	default: snprintf(buf, sizeof buf, "None"); break;
	}
	cJSON_AddItemToArray(list, pr_json_string(buf));
	N->ui = pr_json_object();
	pr_json_set(N->ui, "text", list);
	return 0;
}

/* SaveImageWebsocket: each image as a binary preview, with a progress
 * tick; no file, no "executed" output. */
static int
n_save_image_websocket(struct node_ctx *N)
{
	struct value *img = images_in(N);
	struct pr_buf png = PR_BUF_INIT;
	char path[4096], err[512];
	int pw, ph;
	size_t k;

	if (need(N, img, "images", "images") < 0)
		return -1;
	physical_size(img->w, img->h, &pw, &ph);
	snprintf(path, sizeof path, "%s/temp/.ws-%s.png", S.set.root, N->id);
	for (k = 0; k < img->n; k++) {
		if (node_progress(N, (long)k, (long)img->n) < 0)
			return -1;
		if (pr_image_write_code(path, img->codes[k], pw, ph, err, sizeof err) < 0 ||
		    pr_file_read(path, (size_t)64 << 20, &png) < 0) {
			pr_buf_free(&png);
			return node_fail(N, "OSError", "%s", err);
		}
		ws_send_preview(N->id, node_prompt_id(N), png.data, png.len,
		    node_client(N) ? TO_CLIENT : TO_ALL, node_client(N));
	}
	unlink(path);
	pr_buf_free(&png);
	return 0;
}

static const struct node_impl impls[] = {
	{ "BatchColorCorrection", n_pass_frames, NULL, false },
	{ "CR Upscale Image", n_cr_upscale, NULL, false },
	{ "DepthAnythingV2Preprocessor", n_pass_frames, NULL, false },
	{ "EmptyImage", n_empty_image, NULL, false },
	{ "EmptyLatentImage", n_empty_latent, NULL, false },
	{ "FastFilmGrain", n_pass_frames, NULL, false },
	{ "GetImageSize", n_get_image_size, NULL, false },
	{ "INTConstant", n_int_constant, NULL, false },
	{ "ImageBatchMultiple+", n_batch_multiple, NULL, false },
	{ "ImageInvert", n_pass_frames, NULL, false },
	{ "ImageScale", n_scale, NULL, false },
	{ "ImageScaleBy", n_scale_by, NULL, false },
	{ "LoadImage", n_load_image, "image", false },
	{ "LoadLatent", n_load_latent, "latent", false },
	{ "LoadWanVideoT5TextEncoder", n_opaque, NULL, false },
	{ "PreviewAny", n_preview_any, NULL, false },
	{ "PreviewImage", n_preview_image, NULL, false },
	{ "RIFE VFI", n_rife, NULL, false },
	{ "SaveImage", n_save_image, NULL, false },
	{ "SaveImageWebsocket", n_save_image_websocket, NULL, true },
	{ "SaveLatent", n_save_latent, NULL, false },
	{ "VHS_LoadVideo", n_vhs_load_video, "video", false },
	{ "VHS_LoadVideoPath", n_vhs_load_video_path, NULL, false },
	{ "VHS_VideoCombine", n_video_combine, NULL, false },
	{ "WanVideoBlockSwap", n_opaque, NULL, false },
	{ "WanVideoDecode", n_decode, NULL, false },
	{ "WanVideoLoraSelect", n_lora_select, NULL, false },
	{ "WanVideoModelLoader", n_model_loader, NULL, false },
	{ "WanVideoSampler", n_sampler, NULL, false },
	{ "WanVideoTextEncode", n_text_encode, NULL, false },
	{ "WanVideoVACEEncode", n_vace_encode, NULL, false },
	{ "WanVideoVAELoader", n_opaque, NULL, false },
	{ NULL, NULL, NULL, false },
};

const struct node_impl *
node_impl(const char *class_type)
{
	const struct node_impl *i;

	for (i = impls; class_type && i->class_type; i++)
		if (strcmp(i->class_type, class_type) == 0)
			return i;
	return NULL;
}
