/*
 * The HTTP routes of ComfyUI 0.3.64 (server.py), answered as recorded in
 * ../shared/reference/comfyui-captures/, and our control endpoint /fake/.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "fake.h"
#include "validate.h"
#include "ws.h"

/* aiohttp's answer to an unhandled exception in a handler. */
static const char trouble[] = "500 Internal Server Error\n\nServer got itself in trouble";

void
respond_json(struct response *r, int status, const cJSON *v)
{
	r->status = status;
	r->content_type = "application/json; charset=utf-8";
	pr_buf_reset(&r->body);
	/* aiohttp's json_response: json.dumps, byte for byte. */
	pr_python_json(&r->body, v);
}

void
respond_text(struct response *r, int status, const char *text)
{
	r->status = status;
	r->content_type = "text/plain; charset=utf-8";
	pr_buf_reset(&r->body);
	pr_buf_adds(&r->body, text);
}

/* 200 with an empty body: what ComfyUI's "nothing to return" routes send. */
static void
respond_empty(struct response *r, int status)
{
	r->status = status;
	r->content_type = "application/octet-stream";
	pr_buf_reset(&r->body);
}

static void
trouble_500(struct response *r)
{
	respond_text(r, 500, trouble);
}

static cJSON *
parse_body(const struct request *q)
{
	struct pr_json_error e;

	return pr_json_parse(q->body, q->body_len, &e, NULL);
}

static void
uuid4(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[16];
	int i, j = 0;

	if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
		memset(r, 0x5a, sizeof r);
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[r[i] >> 4];
		out[j++] = hex[r[i] & 15];
	}
	out[j] = '\0';
}

/* Python's str() of a JSON value, for str(json_data.get("prompt_id")). */
static char *
python_str(const cJSON *v)
{
	if (cJSON_IsString(v))
		return pr_xstrdup(v->valuestring);
	if (cJSON_IsRaw(v))
		return pr_xstrdup(v->valuestring);
	if (cJSON_IsTrue(v))
		return pr_xstrdup("True");
	if (cJSON_IsFalse(v))
		return pr_xstrdup("False");
	if (cJSON_IsNull(v))
		return pr_xstrdup("None");
	return pr_json_print(v, 0);
}

static double
json_double(const cJSON *v)
{
	return cJSON_IsRaw(v) ? strtod(v->valuestring, NULL) : v->valuedouble;
}

static bool
is_truthy(const cJSON *v)
{
	if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v))
		return false;
	if (cJSON_IsRaw(v) || cJSON_IsNumber(v))
		return json_double(v) != 0;
	if (cJSON_IsString(v))
		return v->valuestring[0] != '\0';
	if (cJSON_IsArray(v) || cJSON_IsObject(v))
		return v->child != NULL;
	return true;
}

static bool
file_exists_cb(void *ctx, const char *folder, const char *path)
{
	(void)ctx;
	return root_file_exists(folder, path);
}

/* ---- POST /prompt ---- */

static void
post_prompt(const struct request *q, struct response *r)
{
	struct pr_validate_files files = { file_exists_cb, NULL };
	cJSON *json = parse_body(q), *res, *extra, *v, *info;
	struct pr_validation val;
	struct item *it;
	struct pr_buf num = PR_BUF_INIT;
	double number;
	char id[37];

	if (!json || !cJSON_IsObject(json)) {
		cJSON_Delete(json);
		trouble_500(r);
		return;
	}
	pthread_mutex_lock(&S.lock);
	/* float(json_data['number']) when given; else the counter, which
	 * moves even when validation fails. */
	if ((v = pr_json_get(json, "number"))) {
		if (!pr_json_is_number(v)) {
			pthread_mutex_unlock(&S.lock);
			cJSON_Delete(json);
			trouble_500(r);
			return;
		}
		number = json_double(v);
		pr_python_float(&num, number);
	} else {
		number = (double)S.counter;
		if (is_truthy(pr_json_get(json, "front")))
			number = -number;
		pr_buf_printf(&num, "%.0f", number);
		S.counter++;
	}
	pthread_mutex_unlock(&S.lock);

	if (!pr_json_get(json, "prompt")) {
		pr_validation_no_prompt(&val);
		res = pr_json_object();
		pr_json_set(res, "error", val.error);
		pr_json_set(res, "node_errors", val.node_errors);
		val.error = val.node_errors = NULL;
		respond_json(r, 400, res);
		cJSON_Delete(res);
		goto out;
	}
	extra = pr_json_get(json, "extra_data") ? pr_json_copy(pr_json_get(json, "extra_data"))
	    : pr_json_object();
	if (!cJSON_IsObject(extra)) {
		cJSON_Delete(extra);
		trouble_500(r);
		goto out;
	}
	if ((v = pr_json_get(json, "client_id")))
		pr_json_set(extra, "client_id", pr_json_copy(v));

	info = object_info();
	pr_validate_prompt(pr_json_get(json, "prompt"), pr_json_get(json, "partial_execution_targets"),
	    info, S.facts, &files, &val);
	cJSON_Delete(info);
	res = pr_json_object();
	if (val.error && strcmp(pr_json_get_string(val.error, "type"), "server_error") == 0) {
		trouble_500(r);
		cJSON_Delete(extra);
	} else if (val.error) {
		pr_json_set(res, "error", val.error);
		pr_json_set(res, "node_errors", val.node_errors);
		val.error = val.node_errors = NULL;
		respond_json(r, 400, res);
		cJSON_Delete(extra);
	} else {
		it = pr_xcalloc(1, sizeof *it);
		if ((v = pr_json_get(json, "prompt_id"))) {
			it->prompt_id = python_str(v);
		} else {
			uuid4(id);
			it->prompt_id = pr_xstrdup(id);
		}
		it->number = number;
		it->number_text = pr_xstrdup(num.data);
		it->prompt = pr_json_copy(pr_json_get(json, "prompt"));
		it->extra_data = extra;
		it->outputs = val.outputs;
		val.outputs = NULL;
		v = pr_json_get(extra, "client_id");
		it->client_id = cJSON_IsString(v) ? pr_xstrdup(v->valuestring) : NULL;
		pr_json_set_string(res, "prompt_id", it->prompt_id);
		pr_json_set(res, "number", pr_json_number_text(it->number_text));
		pr_json_set(res, "node_errors", val.node_errors);
		val.node_errors = NULL;
		pthread_mutex_lock(&S.lock);
		it->generation = S.generation;
		queue_push(it);
		broadcast_status();
		pthread_mutex_unlock(&S.lock);
		respond_json(r, 200, res);
	}
	cJSON_Delete(res);
	pr_validation_free(&val);
out:
	pr_buf_free(&num);
	cJSON_Delete(json);
}

/* ---- queue, history, interrupt, free ---- */

static cJSON *
queue_tuple(const struct item *it)
{
	cJSON *t = pr_json_array();

	cJSON_AddItemToArray(t, pr_json_number_text(it->number_text));
	cJSON_AddItemToArray(t, pr_json_string(it->prompt_id));
	cJSON_AddItemToArray(t, pr_json_copy(it->prompt));
	cJSON_AddItemToArray(t, pr_json_copy(it->extra_data));
	cJSON_AddItemToArray(t, pr_json_copy(it->outputs));
	return t;
}

static int
by_queue_order(const void *a, const void *b)
{
	const struct item *x = *(struct item *const *)a, *y = *(struct item *const *)b;

	if (x->number != y->number)
		return x->number < y->number ? -1 : 1;
	return strcmp(x->prompt_id, y->prompt_id);
}

static void
get_queue(struct response *r)
{
	cJSON *res = pr_json_object(), *running = pr_json_array(), *pending = pr_json_array();
	struct item **sorted;
	size_t i;

	pthread_mutex_lock(&S.lock);
	if (S.running)
		cJSON_AddItemToArray(running, queue_tuple(S.running));
	/* Sorted by number: what a client needs (the real heap order is not). */
	sorted = pr_xmalloc((S.npending + 1) * sizeof *sorted);
	if (S.npending) {
		memcpy(sorted, S.pending, S.npending * sizeof *sorted);
		qsort(sorted, S.npending, sizeof *sorted, by_queue_order);
	}
	for (i = 0; i < S.npending; i++)
		cJSON_AddItemToArray(pending, queue_tuple(sorted[i]));
	free(sorted);
	pthread_mutex_unlock(&S.lock);
	pr_json_set(res, "queue_running", running);
	pr_json_set(res, "queue_pending", pending);
	respond_json(r, 200, res);
	cJSON_Delete(res);
}

static void
post_queue(const struct request *q, struct response *r)
{
	cJSON *json = parse_body(q), *id;
	size_t i;

	if (!cJSON_IsObject(json)) {
		cJSON_Delete(json);
		trouble_500(r);
		return;
	}
	pthread_mutex_lock(&S.lock);
	if (is_truthy(pr_json_get(json, "clear"))) {
		for (i = 0; i < S.npending; i++)
			item_free(S.pending[i]);
		S.npending = 0;
		broadcast_status();
	}
	cJSON_ArrayForEach(id, pr_json_get(json, "delete")) {
		if (!cJSON_IsString(id))
			continue;
		/* The first pending match per id; the running one is untouched. */
		for (i = 0; i < S.npending; i++) {
			if (strcmp(S.pending[i]->prompt_id, id->valuestring) == 0) {
				item_free(S.pending[i]);
				S.pending[i] = S.pending[--S.npending];
				broadcast_status();
				break;
			}
		}
	}
	pthread_mutex_unlock(&S.lock);
	cJSON_Delete(json);
	respond_empty(r, 200);
}

static void
get_history(const struct request *q, const char *id, struct response *r)
{
	cJSON *res = pr_json_object(), *e;
	char buf[64];
	long max = -1, offset = -1, i = 0, n;
	const char *v;

	pthread_mutex_lock(&S.lock);
	if (id) {
		if ((e = pr_json_get(S.history, id)))
			cJSON_AddItemToObject(res, id, pr_json_copy(e));
	} else {
		if ((v = query_arg(q->wsi, "max_items", buf, sizeof buf)))
			max = atol(v);
		if ((v = query_arg(q->wsi, "offset", buf, sizeof buf)))
			offset = atol(v);
		n = cJSON_GetArraySize(S.history);
		if (offset < 0 && max >= 0)
			offset = n - max;
		cJSON_ArrayForEach(e, S.history) {
			if (i++ < offset)
				continue;
			cJSON_AddItemToObject(res, e->string, pr_json_copy(e));
			if (max >= 0 && cJSON_GetArraySize(res) >= max)
				break;
		}
	}
	pthread_mutex_unlock(&S.lock);
	respond_json(r, 200, res);
	cJSON_Delete(res);
}

static void
post_history(const struct request *q, struct response *r)
{
	cJSON *json = parse_body(q), *id;

	if (!cJSON_IsObject(json)) {
		cJSON_Delete(json);
		trouble_500(r);
		return;
	}
	pthread_mutex_lock(&S.lock);
	if (is_truthy(pr_json_get(json, "clear"))) {
		cJSON_Delete(S.history);
		S.history = pr_json_object();
	}
	cJSON_ArrayForEach(id, pr_json_get(json, "delete"))
		if (cJSON_IsString(id))
			cJSON_DeleteItemFromObjectCaseSensitive(S.history, id->valuestring);
	pthread_mutex_unlock(&S.lock);
	cJSON_Delete(json);
	respond_empty(r, 200);
}

static void
post_interrupt(const struct request *q, struct response *r)
{
	cJSON *json = q->body_len ? parse_body(q) : NULL;
	const char *id = pr_json_get_string(json, "prompt_id");

	/* Tolerant of any body; with a prompt_id, only that running prompt. */
	pthread_mutex_lock(&S.lock);
	if (!id || (S.running && strcmp(S.running->prompt_id, id) == 0))
		S.interrupt = true;
	pthread_mutex_unlock(&S.lock);
	cJSON_Delete(json);
	respond_empty(r, 200);
}

static void
post_free(const struct request *q, struct response *r)
{
	cJSON *json = parse_body(q);

	if (!cJSON_IsObject(json)) {
		cJSON_Delete(json);
		trouble_500(r);
		return;
	}
	pthread_mutex_lock(&S.lock);
	if (is_truthy(pr_json_get(json, "unload_models"))) {
		free(S.loaded_model);
		S.loaded_model = NULL;
	}
	if (is_truthy(pr_json_get(json, "free_memory")))
		S.free_memory = true;
	pthread_mutex_unlock(&S.lock);
	cJSON_Delete(json);
	respond_empty(r, 200);
}

/* ---- files ---- */

/* "x.png [output]" picks the folder; the annotation is removed. */
static const char *
annotation(char *name)
{
	static const char *const types[] = { "input", "output", "temp" };
	size_t len = strlen(name), i, tl;

	for (i = 0; i < 3; i++) {
		tl = strlen(types[i]);
		if (len > tl + 3 && name[len - tl - 3] == ' ' && name[len - tl - 2] == '[' &&
		    strncmp(name + len - tl - 1, types[i], tl) == 0 && name[len - 1] == ']') {
			name[len - tl - 3] = '\0';
			return types[i];
		}
	}
	return NULL;
}

static bool
known_type(const char *t)
{
	return strcmp(t, "input") == 0 || strcmp(t, "output") == 0 || strcmp(t, "temp") == 0;
}

/* os.path.abspath of dir/sub, lexically: ".." and "." folded. */
static char *
lexical_join(const char *dir, const char *sub)
{
	struct pr_buf b = PR_BUF_INIT;
	char *copy, *tok, *save, *out;
	size_t keep;

	if (sub[0] == '/')
		pr_buf_adds(&b, "");
	else
		pr_buf_adds(&b, dir);
	copy = pr_xstrdup(sub);
	for (tok = strtok_r(copy, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (strcmp(tok, ".") == 0)
			continue;
		if (strcmp(tok, "..") == 0) {
			keep = b.len;
			while (keep > 0 && b.data[keep - 1] != '/')
				keep--;
			b.len = keep ? keep - 1 : 0;
			b.data[b.len] = '\0';
			continue;
		}
		pr_buf_addc(&b, '/');
		pr_buf_adds(&b, tok);
	}
	free(copy);
	out = pr_buf_steal(&b);
	if (!*out) {
		free(out);
		out = pr_xstrdup("/");
	}
	return out;
}

static bool
inside(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static const char *
mime_type(const char *name)
{
	static const char *const map[][2] = {
		{ ".png", "image/png" }, { ".jpg", "image/jpeg" }, { ".jpeg", "image/jpeg" },
		{ ".webp", "image/webp" }, { ".gif", "image/gif" }, { ".mp4", "video/mp4" },
		{ ".webm", "video/webm" }, { ".mkv", "video/x-matroska" }, { ".mov", "video/quicktime" },
		{ ".json", "application/json" }, { ".txt", "text/plain" },
	};
	const char *dot = strrchr(name, '.');
	size_t i;

	for (i = 0; dot && i < sizeof map / sizeof map[0]; i++)
		if (strcasecmp(dot, map[i][0]) == 0)
			return map[i][1];
	return "application/octet-stream";
}

static void
get_view(const struct request *q, struct response *r)
{
	char fbuf[4096], tbuf[64], sbuf[4096], dir[8192];
	const char *filename, *type, *sub, *ann;
	char *name, *base, *full_dir = NULL, *file = NULL;
	struct stat st;

	if (!(filename = query_arg(q->wsi, "filename", fbuf, sizeof fbuf)) || !*filename) {
		respond_empty(r, 404);
		return;
	}
	name = pr_xstrdup(filename);
	ann = annotation(name);
	if (name[0] == '/' || strstr(name, "..")) {
		respond_empty(r, 400);
		goto out;
	}
	type = ann ? ann : query_arg(q->wsi, "type", tbuf, sizeof tbuf);
	if (!type)
		type = "output";
	if (!known_type(type)) {
		respond_empty(r, 400);
		goto out;
	}
	snprintf(dir, sizeof dir, "%s/%s", S.set.root, type);
	if ((sub = query_arg(q->wsi, "subfolder", sbuf, sizeof sbuf))) {
		full_dir = lexical_join(dir, sub);
		if (!inside(full_dir, dir)) {
			respond_empty(r, 403);
			goto out;
		}
	} else {
		full_dir = pr_xstrdup(dir);
	}
	/* Only the base name counts: "probe/x.png" is looked up as x.png. */
	base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
	file = pr_xmalloc(strlen(full_dir) + strlen(base) + 2);
	sprintf(file, "%s/%s", full_dir, base);
	if (stat(file, &st) < 0 || !S_ISREG(st.st_mode)) {
		respond_empty(r, 404);
		goto out;
	}
	r->status = 200;
	r->content_type = mime_type(base);
	/* ComfyUI never serves these as what they are. */
	if (strstr(r->content_type, "html") || strstr(r->content_type, "javascript") ||
	    strstr(r->content_type, "css"))
		r->content_type = "application/octet-stream";
	r->file = file;
	file = NULL;
	r->disposition = pr_xmalloc(strlen(base) + 16);
	sprintf(r->disposition, "filename=\"%s\"", base);
out:
	free(name);
	free(full_dir);
	free(file);
}

static int
same_content(const char *a, const char *b)
{
	char x[65536], y[65536];
	int fa, fb, same = 0;
	ssize_t na, nb;

	if ((fa = open(a, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	if ((fb = open(b, O_RDONLY | O_CLOEXEC)) < 0) {
		close(fa);
		return 0;
	}
	for (;;) {
		na = pr_read_full(fa, x, sizeof x);
		nb = pr_read_full(fb, y, sizeof y);
		if (na < 0 || nb < 0 || na != nb || memcmp(x, y, (size_t)na) != 0)
			break;
		if (na == 0) {
			same = 1;
			break;
		}
	}
	close(fa);
	close(fb);
	return same;
}

/* POST /upload/image: as server.py image_upload(). */
static void
post_upload(const struct request *q, struct response *r, bool mask)
{
	const char *overwrite = q->form[0], *type = q->form[1], *sub = q->form[2];
	char dir[8192], *folder = NULL, *path = NULL, *name = NULL, *dot;
	struct pr_buf b = PR_BUF_INIT;
	cJSON *res, *ref;
	struct pr_json_error e;
	int i;

	if (!type || !*type)
		type = "input";
	if (!known_type(type)) {        /* an unbound variable in server.py */
		trouble_500(r);
		return;
	}
	if (mask) {
		/* /upload/mask needs original_ref naming an existing image. */
		ref = q->form[3] ? pr_json_parse(q->form[3], strlen(q->form[3]), &e, NULL) : NULL;
		if (!pr_json_get_string(ref, "filename")) {
			cJSON_Delete(ref);
			trouble_500(r);
			return;
		}
		cJSON_Delete(ref);
	}
	if (!q->upload_path || !q->upload_name || !*q->upload_name) {
		respond_empty(r, 400);
		return;
	}
	if (!sub)
		sub = "";
	snprintf(dir, sizeof dir, "%s/%s", S.set.root, type);
	folder = lexical_join(dir, *sub ? sub : ".");
	path = lexical_join(folder, q->upload_name);
	/* Only the upload folder bounds the name, not the subfolder. */
	if (!inside(path, dir) || !inside(folder, dir)) {
		respond_empty(r, 400);
		goto out;
	}
	if (pr_mkdirs(folder) < 0) {
		trouble_500(r);
		goto out;
	}
	name = pr_xstrdup(q->upload_name);
	if (!(overwrite && (strcmp(overwrite, "true") == 0 || strcmp(overwrite, "1") == 0))) {
		for (i = 1; access(path, F_OK) == 0; i++) {
			if (same_content(path, q->upload_path))
				goto answer;     /* the same bytes: nothing written */
			free(name);
			pr_buf_reset(&b);
			dot = strrchr(q->upload_name, '.');
			if (dot && dot != q->upload_name && !strchr(dot, '/'))
				pr_buf_printf(&b, "%.*s (%d)%s", (int)(dot - q->upload_name),
				    q->upload_name, i, dot);
			else
				pr_buf_printf(&b, "%s (%d)", q->upload_name, i);
			name = pr_xstrdup(b.data);
			free(path);
			path = lexical_join(folder, name);
		}
	}
	/* The name may carry folders of its own ("a/b.png" stays inside). */
	{
		char *parent = pr_xstrdup(path);

		pr_mkdirs(dirname(parent));
		free(parent);
	}
	/* The spool file was made private (mkstemp); the upload is not. */
	{
		mode_t um = umask(0);

		umask(um);
		chmod(q->upload_path, 0666 & ~um);
	}
	if (rename(q->upload_path, path) < 0) {
		trouble_500(r);
		goto out;
	}
answer:
	res = pr_json_object();
	pr_json_set_string(res, "name", strrchr(name, '/') ? strrchr(name, '/') + 1 : name);
	pr_json_set_string(res, "subfolder", sub);
	pr_json_set_string(res, "type", type);
	respond_json(r, 200, res);
	cJSON_Delete(res);
out:
	pr_buf_free(&b);
	free(folder);
	free(path);
	free(name);
}

/* ---- discovery ---- */

static void
get_object_info(const char *cls, struct response *r)
{
	cJSON *info = object_info(), *res, *one;

	if (!cls) {
		respond_json(r, 200, info);
		cJSON_Delete(info);
		return;
	}
	res = pr_json_object();
	if ((one = pr_json_get(info, cls)))
		cJSON_AddItemToObject(res, cls, pr_json_copy(one));
	respond_json(r, 200, res);
	cJSON_Delete(res);
	cJSON_Delete(info);
}

static void
get_system_stats(struct response *r)
{
	cJSON *res = pr_json_object(), *sys = pr_json_object(), *devs = pr_json_array();
	cJSON *dev = pr_json_object(), *argv = pr_json_array();

	pr_json_set_string(sys, "os", "posix");
	pr_json_set_int(sys, "ram_total", 25769803776);
	pr_json_set_int(sys, "ram_free", 21474836480);
	pr_json_set_string(sys, "comfyui_version", "0.3.64");
	pr_json_set_string(sys, "required_frontend_version", "1.27.10");
	pr_json_set(sys, "installed_templates_version", cJSON_CreateNull());
	pr_json_set_string(sys, "required_templates_version", "0.1.94");
	pr_json_set_string(sys, "python_version", "3.11.2 (fake-comfyui)");
	pr_json_set_string(sys, "pytorch_version", "none (fake-comfyui)");
	pr_json_set(sys, "embedded_python", cJSON_CreateFalse());
	cJSON_AddItemToArray(argv, pr_json_string("fake-comfyui"));
	pr_json_set(sys, "argv", argv);
	pr_json_set_string(dev, "name", "fake-comfyui");
	pr_json_set_string(dev, "type", "cpu");
	pr_json_set(dev, "index", cJSON_CreateNull());
	pr_json_set_int(dev, "vram_total", 0);
	pr_json_set_int(dev, "vram_free", 0);
	pr_json_set_int(dev, "torch_vram_total", 0);
	pr_json_set_int(dev, "torch_vram_free", 0);
	cJSON_AddItemToArray(devs, dev);
	pr_json_set(res, "system", sys);
	pr_json_set(res, "devices", devs);
	respond_json(r, 200, res);
	cJSON_Delete(res);
}

/* ---- the control endpoint ---- */

static void
control(const struct request *q, struct response *r)
{
	const char *p = q->path + strlen("/fake/");
	cJSON *json = NULL, *res = pr_json_object(), *v;
	char why[256];

	if (strcmp(q->method, "POST") == 0 && q->body_len &&
	    !(json = parse_body(q))) {
		pr_json_set_string(res, "error", "the body is not JSON");
		respond_json(r, 400, res);
		goto out;
	}
	if (strcmp(q->method, "GET") == 0 && strcmp(p, "state") == 0) {
		pthread_mutex_lock(&S.lock);
		pr_json_set(res, "posts", pr_json_copy(S.posts));
		pr_json_set(res, "runs", pr_json_copy(S.runs));
		pr_json_set(res, "model_loads", pr_json_copy(S.loads));
		pr_json_set(res, "loaded_model", S.loaded_model ? pr_json_string(S.loaded_model)
		    : cJSON_CreateNull());
		pr_json_set_int(res, "queue_remaining", queue_remaining());
		if (S.running) {
			v = pr_json_object();
			pr_json_set_string(v, "prompt_id", S.running->prompt_id);
			pr_json_set(v, "node", S.running_node ? pr_json_string(S.running_node)
			    : cJSON_CreateNull());
			pr_json_set(res, "running", v);
		} else {
			pr_json_set(res, "running", cJSON_CreateNull());
		}
		pr_json_set_int(res, "generation", S.generation);
		/* Times above are from here, on CLOCK_MONOTONIC: several
		 * stand-ins on one machine line up by adding it. */
		pr_json_set(res, "t0", cJSON_CreateNumber(S.t0));
		pr_json_set(res, "faults", pr_json_copy(S.faults));
		pthread_mutex_unlock(&S.lock);
		pr_json_set_int(res, "sockets", ws_connected());
		respond_json(r, 200, res);
	} else if (strcmp(q->method, "POST") != 0) {
		respond_text(r, 405, "405: Method Not Allowed");
	} else if (strcmp(p, "faults") == 0) {
		if (!json || faults_add(json, why, sizeof why) < 0) {
			pr_json_set_string(res, "error", json ? why : "a fault is needed");
			respond_json(r, 400, res);
		} else {
			respond_json(r, 200, res);
		}
	} else if (strcmp(p, "faults/clear") == 0) {
		pthread_mutex_lock(&S.lock);
		cJSON_Delete(S.faults);
		S.faults = pr_json_array();
		pthread_mutex_unlock(&S.lock);
		respond_json(r, 200, res);
	} else if (strcmp(p, "restart") == 0) {
		v = pr_json_get(json, "down");
		pthread_mutex_lock(&S.lock);
		server_restart(v ? json_double(v) : 0);
		pthread_mutex_unlock(&S.lock);
		respond_json(r, 200, res);
	} else if (strcmp(p, "drop") == 0) {
		ws_drop(pr_json_get_string(json, "client_id"));
		respond_json(r, 200, res);
	} else if (strcmp(p, "config") == 0) {
		pthread_mutex_lock(&S.lock);
		if ((v = pr_json_get(json, "node_time")))
			S.set.node_time = json_double(v);
		if ((v = pr_json_get(json, "step_time")))
			S.set.step_time = json_double(v);
		if ((v = pr_json_get(json, "load_time")))
			S.set.load_time = json_double(v);
		if ((v = pr_json_get(json, "class_time")) && cJSON_IsObject(v)) {
			cJSON_Delete(S.set.class_time);
			S.set.class_time = pr_json_copy(v);
		}
		pthread_mutex_unlock(&S.lock);
		respond_json(r, 200, res);
	} else if (strcmp(p, "log/clear") == 0) {
		pthread_mutex_lock(&S.lock);
		cJSON_Delete(S.posts);
		cJSON_Delete(S.runs);
		cJSON_Delete(S.loads);
		S.posts = pr_json_array();
		S.runs = pr_json_array();
		S.loads = pr_json_array();
		pthread_mutex_unlock(&S.lock);
		respond_json(r, 200, res);
	} else {
		respond_text(r, 404, "404: Not Found");
	}
out:
	cJSON_Delete(json);
	cJSON_Delete(res);
}

/* ---- the table ---- */

static bool
get(const struct request *q, const char *path)
{
	return strcmp(q->method, "GET") == 0 && strcmp(q->path, path) == 0;
}

static bool
post(const struct request *q, const char *path)
{
	return strcmp(q->method, "POST") == 0 && strcmp(q->path, path) == 0;
}

static void
apply_http_fault(const cJSON *f, struct response *r, bool *answered)
{
	const cJSON *v;
	int64_t status, n;

	if ((v = pr_json_get(f, "delay")))
		r->delay = json_double(v);
	/* The body's lies (faults.c checked the values): whatever the route
	 * answers below is sent padded, endless, slowly or mislabelled. */
	r->pad_to = -1;
	r->length = LENGTH_TRUE;
	if ((v = pr_json_get(f, "bytes")) && pr_json_to_i64(v, &n) == 0) {
		r->pad_to = n;
		r->shaped = true;
	}
	if (cJSON_IsTrue(pr_json_get(f, "endless")))
		r->endless = r->shaped = true;
	if ((v = pr_json_get(f, "length"))) {
		r->shaped = true;
		if (cJSON_IsFalse(v))
			r->length = LENGTH_NONE;
		else if (cJSON_IsString(v))
			r->length = LENGTH_ANSWER;
		else if (pr_json_to_i64(v, &n) == 0)
			r->length = n;
	}
	if ((v = pr_json_get(f, "rate"))) {
		r->rate = json_double(v);
		r->shaped = true;
	}
	if (cJSON_IsTrue(pr_json_get(f, "close"))) {
		r->close = true;
		*answered = true;
	} else if ((v = pr_json_get(f, "status")) && pr_json_to_i64(v, &status) == 0) {
		if (status >= 500)
			respond_text(r, (int)status, trouble);
		else
			respond_text(r, (int)status, "");
		*answered = true;
	}
}

void
route(struct request *q, struct response *r)
{
	bool answered = false;
	cJSON *f;
	cJSON *json;

	if ((f = fault_for_route(q->method, q->path))) {
		apply_http_fault(f, r, &answered);
		cJSON_Delete(f);
		if (answered)
			return;
	}
	if (strncmp(q->path, "/fake/", 6) == 0) {
		control(q, r);
	} else if (post(q, "/prompt")) {
		post_prompt(q, r);
	} else if (get(q, "/prompt")) {
		json = pr_json_object();
		f = pr_json_object();
		pthread_mutex_lock(&S.lock);
		pr_json_set_int(f, "queue_remaining", queue_remaining());
		pthread_mutex_unlock(&S.lock);
		pr_json_set(json, "exec_info", f);
		respond_json(r, 200, json);
		cJSON_Delete(json);
	} else if (get(q, "/queue")) {
		get_queue(r);
	} else if (post(q, "/queue")) {
		post_queue(q, r);
	} else if (get(q, "/history")) {
		get_history(q, NULL, r);
	} else if (strcmp(q->method, "GET") == 0 && strncmp(q->path, "/history/", 9) == 0) {
		get_history(q, q->path + 9, r);
	} else if (post(q, "/history")) {
		post_history(q, r);
	} else if (post(q, "/interrupt")) {
		post_interrupt(q, r);
	} else if (post(q, "/free")) {
		post_free(q, r);
	} else if (get(q, "/view")) {
		get_view(q, r);
	} else if (post(q, "/upload/image")) {
		post_upload(q, r, false);
	} else if (post(q, "/upload/mask")) {
		post_upload(q, r, true);
	} else if (get(q, "/object_info")) {
		get_object_info(NULL, r);
	} else if (strcmp(q->method, "GET") == 0 && strncmp(q->path, "/object_info/", 13) == 0) {
		get_object_info(q->path + 13, r);
	} else if (get(q, "/system_stats")) {
		get_system_stats(r);
	} else if (get(q, "/features")) {
		json = pr_json_object();
		pr_json_set(json, "supports_preview_metadata", cJSON_CreateTrue());
		pr_json_set_int(json, "max_upload_size", S.set.max_upload);
		respond_json(r, 200, json);
		cJSON_Delete(json);
	} else if (get(q, "/embeddings")) {
		json = pr_json_array();
		respond_json(r, 200, json);
		cJSON_Delete(json);
	} else if (get(q, "/ws")) {
		/* aiohttp's answer to a GET without the Upgrade header. */
		respond_text(r, 400, "No WebSocket UPGRADE hdr: None\n Can \"Upgrade\" only to \"WebSocket\".");
	} else if (get(q, "/")) {
		respond_text(r, 200, "fake-comfyui: a ComfyUI stand-in (no frontend)\n");
		r->content_type = "text/html";
	} else if (strcmp(q->method, "GET") != 0 && strcmp(q->method, "POST") != 0) {
		respond_text(r, 405, "405: Method Not Allowed");
	} else {
		respond_text(r, 404, "404: Not Found");
	}
}
