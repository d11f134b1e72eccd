/*
 * One ComfyUI server: its HTTP handle and socket, what it offers
 * (/object_info, /features), and the small calls the run makes on it.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "submit.h"

#define JSON_MAX ((size_t)64 << 20)     /* /object_info is a few MB */

void
server_init(struct server *s, const char *url)
{
	const char *hash = strchr(url, '#');

	memset(s, 0, sizeof *s);
	/* The fragment is ours: a URL never sends it to the server. */
	s->url = hash ? pr_xstrndup(url, (size_t)(hash - url)) : pr_xstrdup(url);
	for (const char *a = hash ? hash + 1 : NULL; a && *a;) {
		size_t n = strcspn(a, ",");
		if (n) {
			s->affinity = pr_xrealloc(s->affinity, (s->naffinity + 1) * sizeof *s->affinity);
			s->affinity[s->naffinity++] = pr_xstrndup(a, n);
		}
		a += n + (a[n] == ',');
	}
	/* A trailing slash would make "//prompt". */
	while (strlen(s->url) > 1 && s->url[strlen(s->url) - 1] == '/')
		s->url[strlen(s->url) - 1] = '\0';
	s->http = pr_http_new(s->url);
	s->staged = pr_json_object();
	s->moved = pr_json_array();
	s->ws_backoff = 0.5;
}

void
server_free(struct server *s)
{
	if (s->ws)
		pr_ws_free(s->ws);
	pr_http_free(s->http);
	cJSON_Delete(s->object_info);
	cJSON_Delete(s->staged);
	cJSON_Delete(s->moved);
	for (size_t i = 0; i < s->naffinity; i++)
		free(s->affinity[i]);
	free(s->affinity);
	free(s->url);
}

cJSON *
server_get_json(struct server *s, const char *path, long *status, char *err,
    size_t errlen)
{
	struct pr_http_response r = { 0 };
	struct pr_json_error je;
	cJSON *v = NULL;

	*status = 0;
	if (pr_http_get(s->http, path, JSON_MAX, &r) < 0) {
		snprintf(err, errlen, "%s", r.err);
		/* Too big or endless: the server is there, its answer of no
		 * use, and waiting will not change it. */
		if (r.over_bound)
			*status = r.status;
	} else if ((*status = r.status) != 200) {
		snprintf(err, errlen, "GET %s%s: HTTP %ld", s->url, path, r.status);
	} else if (!(v = pr_json_parse(r.body.data ? r.body.data : "", r.body.len, &je, NULL))) {
		snprintf(err, errlen, "GET %s%s: not JSON: %s", s->url, path, je.msg);
	}
	pr_http_response_free(&r);
	return v;
}

int
server_start(struct server *s, double wait, char *err, size_t errlen)
{
	double deadline = pr_wall() + wait, pause = 0.25;
	long status;
	cJSON *v;

	if (!s->http) {
		snprintf(err, errlen, "%s: not an http:// or https:// URL", s->url);
		return -1;
	}
	/* Pods start ComfyUI late: its port opens only after every custom
	 * node has loaded. */
	for (;;) {
		v = server_get_json(s, "/system_stats", &status, err, errlen);
		if (v || status || pr_wall() + pause > deadline || stop_signal)
			break;
		pause_for(pause);
		if (pause < 2)
			pause *= 2;
	}
	if (!v) {
		if (!status) {
			size_t n = strlen(err);
			snprintf(err + n, errlen - n, " (waited %.0f s; see --wait-server)", wait);
		}
		return -1;
	}
	cJSON_Delete(v);
	if (!(s->object_info = server_get_json(s, "/object_info", &status, err, errlen)))
		return -1;
	if ((v = server_get_json(s, "/features", &status, err, errlen))) {
		int64_t n;
		if (pr_json_to_i64(pr_json_get(v, "max_upload_size"), &n) == 0 && n > 0)
			s->max_upload = n;
		cJSON_Delete(v);
	}
	s->usable = true;
	return 0;
}

int
server_stage(struct server *s, const char *local, const char *as,
    bool *transient, char *err, size_t errlen)
{
	struct pr_http_response r = { 0 };
	struct pr_json_error je;
	const char *slash = strrchr(as, '/');
	char *sub = slash ? pr_xstrndup(as, (size_t)(slash - as)) : pr_xstrdup("");
	const char *name = slash ? slash + 1 : as;
	cJSON *ans = NULL;
	int rc = -1;

	*transient = false;
	if (pr_http_upload(s->http, local, name, sub, true, &r) < 0) {
		/* The local file was read just before (its hash): what failed
		 * is the connection. */
		snprintf(err, errlen, "%s", r.err);
		*transient = true;
	} else if (r.status != 200) {
		snprintf(err, errlen, "upload of %s as %s: HTTP %ld", local, as, r.status);
		*transient = r.status >= 500 || r.status == 408 || r.status == 429;
	} else if (!(ans = pr_json_parse(r.body.data ? r.body.data : "", r.body.len, &je, NULL))) {
		snprintf(err, errlen, "upload of %s: the answer is not JSON", as);
	} else if (!pr_json_get_string(ans, "name") || strcmp(pr_json_get_string(ans, "name"), name) != 0 ||
	    !pr_json_get_string(ans, "subfolder") || strcmp(pr_json_get_string(ans, "subfolder"), sub) != 0) {
		/* The workflow names the file we asked for: anything else would
		 * make the job read some other file. */
		snprintf(err, errlen, "upload of %s: the server stored it as %s/%s, not as asked",
		    as, pr_json_get_string(ans, "subfolder") ? pr_json_get_string(ans, "subfolder") : "?",
		    pr_json_get_string(ans, "name") ? pr_json_get_string(ans, "name") : "?");
	} else {
		rc = 0;
	}
	cJSON_Delete(ans);
	pr_http_response_free(&r);
	free(sub);
	return rc;
}

int
server_queue(struct server *s, cJSON **running, cJSON **pending, char *err,
    size_t errlen)
{
	static const char *const keys[] = { "queue_running", "queue_pending" };
	cJSON **lists[] = { running, pending };
	long status;
	cJSON *q = server_get_json(s, "/queue", &status, err, errlen);

	if (!q)
		return -1;
	for (int k = 0; k < 2; k++) {
		const cJSON *item;
		*lists[k] = pr_json_array();
		cJSON_ArrayForEach(item, pr_json_get(q, keys[k])) {
			const cJSON *pid = cJSON_GetArrayItem(item, 1);
			if (cJSON_IsString(pid))
				cJSON_AddItemToArray(*lists[k], pr_json_string(pid->valuestring));
		}
	}
	cJSON_Delete(q);
	return 0;
}

static void
post(struct server *s, const char *path, cJSON *body)
{
	struct pr_http_response r = { 0 };

	if (pr_http_post_json(s->http, path, body, 1 << 20, &r) < 0 || r.status != 200)
		pr_warn("%s%s: %s", s->url, path, r.status ? "refused" : r.err);
	pr_http_response_free(&r);
	cJSON_Delete(body);
}

/* Stops our prompt: interrupts it if running, takes it off the queue if
 * pending (POST /interrupt alone leaves a pending prompt to run later). */
void
server_interrupt(struct server *s, const char *prompt_id)
{
	cJSON *b = pr_json_object(), *ids = pr_json_array();

	cJSON_AddItemToArray(ids, pr_json_string(prompt_id));
	pr_json_set(b, "delete", ids);
	post(s, "/queue", b);
	b = pr_json_object();
	pr_json_set_string(b, "prompt_id", prompt_id);
	post(s, "/interrupt", b);
}

void
server_free_memory(struct server *s)
{
	cJSON *b = pr_json_object();

	pr_json_set(b, "unload_models", pr_json_bool(true));
	pr_json_set(b, "free_memory", pr_json_bool(true));
	post(s, "/free", b);
}

/* Whether the server's folder ("input", "output", "temp") holds name
 * ("sub/dir/file.mp4"). */
bool
server_has_file(struct server *s, const char *folder, const char *name)
{
	struct pr_http_response r = { 0 };
	const char *slash = strrchr(name, '/');
	char *file = pr_http_escape(slash ? slash + 1 : name);
	char *sub0 = slash ? pr_xstrndup(name, (size_t)(slash - name)) : pr_xstrdup("");
	char *sub = pr_http_escape(sub0);
	char *path = pr_xasprintf("/view?filename=%s&subfolder=%s&type=%s", file, sub, folder);
	bool ok = pr_http_head(s->http, path, &r) == 0 && r.status == 200;

	pr_http_response_free(&r);
	free(path);
	free(sub);
	free(sub0);
	free(file);
	return ok;
}
