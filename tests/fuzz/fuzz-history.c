/*
 * pr-submit collecting a finished job from its /history entry
 * (collect.c's collect_outputs and output_file, with jobs.c's
 * job_local_path and job_error: the tool's own code, compiled in). The
 * download, the video probe and the pause between tries are replaced:
 * the download checks what it is asked for and writes the file the input
 * says the server sent.
 *
 * What must hold for any entry: a file is only ever written where the job
 * record says, under --out, whatever the entry names (the entry only
 * picks the file to GET); the /view query carries the entry's filename,
 * subfolder and type exactly, escaped, naming a file the entry lists for
 * that node (one with the wanted extension when there is one); the job
 * succeeds with one file per collect entry, or fails with a message.
 *
 * Input: the history entry's JSON; then optionally a NUL, a byte whose
 * low two bits say how the server answers /view (0: 200 with the rest of
 * the input as the file, 1: 404, 2: 503, 3: a broken connection) and
 * whose next two pick the job (JOBS), and the file's bytes.
 */
#define _XOPEN_SOURCE 700        /* nftw */
#include <ftw.h>

#include "../../tools/pr-submit/submit.h"
#include "urlcode.h"
#include "fuzz.h"

static int fz_download(struct pr_http *h, const char *path, const char *dest,
    int64_t *size, struct pr_http_response *r);
static int fz_probe(const char *path, struct pr_video_info *info, char *err,
    size_t errlen);
static void fz_pause(double seconds);

#define pr_http_download fz_download
#define pr_video_probe fz_probe
#define pause_for fz_pause
#include "../../tools/pr-submit/collect.c"
#undef pr_http_download
#undef pr_video_probe
#undef pause_for
#include "../../tools/pr-submit/jobs.c"
#include "../../tools/pr-submit/progress.c"

volatile int stop_signal;

/* pr-patch's collect lists: a HIGH job's latent, a LOW job's segment
 * (keep says at least 97 frames), and both in one job. */
static const char *const JOBS[] = {
	"{\"id\":\"city-walk/job_002\",\"video\":\"city-walk\",\"workflow\":{"
	"\"365\":{\"class_type\":\"SaveLatent\",\"inputs\":{}},"
	"\"344\":{\"class_type\":\"VHS_VideoCombine\",\"inputs\":{}}},"
	"\"collect\":[{\"node\":\"365\",\"role\":\"latent\",\"path\":\"latents/city-walk/job_002.latent\"},"
	"{\"node\":\"344\",\"role\":\"segment\",\"path\":\"videos/city-walk/job_002.mp4\"}],"
	"\"keep\":[0,97]}",
	"{\"id\":\"city-walk/job_001\",\"video\":\"city-walk\",\"workflow\":{"
	"\"365\":{\"class_type\":\"SaveLatent\",\"inputs\":{}}},"
	"\"collect\":[{\"node\":\"365\",\"role\":\"latent\",\"path\":\"latents/city-walk/job_001.latent\"}],"
	"\"keep\":null}",
	"{\"id\":\"city-walk/job_003\",\"video\":\"city-walk\",\"workflow\":{"
	"\"344\":{\"class_type\":\"VHS_VideoCombine\",\"inputs\":{}}},"
	"\"collect\":[{\"node\":\"344\",\"role\":\"segment\",\"path\":\"videos/city-walk/job_003.mp4\"}],"
	"\"keep\":[2,97]}",
};

static struct {
	/* --out, in a directory of this process under $TMPDIR, removed at
	 * exit (not after a finding: libFuzzer ends those with _Exit). */
	char out[4096];
	char dir[4096];
	const cJSON *entry;
	const cJSON *collect;
	int answer;             /* 0 200, 1 404, 2 503, 3 no answer */
	int job;                /* in JOBS */
	const uint8_t *file;
	size_t file_len;
	int downloads;
	int pauses;
	int transient;          /* answers worth trying again given */
} F;

static int
fz_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
fz_cleanup(void)
{
	if (F.dir[0])
		nftw(F.dir, fz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	snprintf(F.dir, sizeof F.dir, "%s/fuzz-history.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(F.dir))
		abort();
	atexit(fz_cleanup);
	snprintf(F.out, sizeof F.out, "%s/out", F.dir);
	for (const char *const *d = (const char *const[]){ "latents/city-walk",
	    "videos/city-walk", NULL }; *d; d++) {
		char *p = pr_xasprintf("%s/%s", F.out, *d);
		check(pr_mkdirs(p) == 0);
		free(p);
	}
	return 0;
}

/* The collect entry a download is for: its dest must be one of them. */
static const cJSON *
fz_collect_of(const char *dest)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, F.collect) {
		char *want = pr_xasprintf("%s/%s", F.out, pr_json_get_string(c, "path"));
		bool same = strcmp(want, dest) == 0;

		free(want);
		if (same)
			return c;
	}
	return NULL;
}

/* One query value of the /view target: escaped, and what it decodes to. */
static char *
fz_value(const char **p, const char *name, bool last)
{
	size_t n = strlen(name), len;
	const char *v, *end;

	check(strncmp(*p, name, n) == 0 && (*p)[n] == '=');
	v = *p + n + 1;
	end = last ? v + strlen(v) : strchr(v, '&');
	check(end != NULL);
	len = (size_t)(end - v);
	for (const char *s = v; s < end; s++)
		check(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%",
		    *s) != NULL);
	*p = last ? end : end + 1;
	return pr_pct_decode(v, len, false);
}

static bool
fz_same(const char *got, const char *want)
{
	return got && strcmp(got, want) == 0;
}

/* The requested file is one the entry lists for the node, fields exact,
 * and has the wanted extension when one of the node's files has it. */
static void
fz_check_request(const cJSON *c, const char *name, const char *sub, const char *type)
{
	const cJSON *ui = pr_json_get(pr_json_get(F.entry, "outputs"),
	    pr_json_get_string(c, "node"));
	const char *want = ext_of(pr_json_get_string(c, "path"));
	const cJSON *kind, *f;
	bool listed = false, any_ext = false;

	cJSON_ArrayForEach(kind, ui) {
		if (!cJSON_IsArray(kind))
			continue;
		cJSON_ArrayForEach(f, kind) {
			const char *fn = pr_json_get_string(f, "filename");
			const char *fs = pr_json_get_string(f, "subfolder");
			const char *ft = pr_json_get_string(f, "type");

			if (!fn)
				continue;
			any_ext |= strcasecmp(ext_of(fn), want) == 0;
			listed |= strcmp(fn, name) == 0 && strcmp(fs ? fs : "", sub) == 0 &&
			    strcmp(ft ? ft : "output", type) == 0;
		}
	}
	check(listed);
	if (any_ext)
		check(strcasecmp(ext_of(name), want) == 0);
}

/* Every file under --out is a collect entry's. */
static int
fz_only_dests(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag != FTW_D)
		check(flag == FTW_F && fz_collect_of(path) != NULL);
	return 0;
}

static int
fz_download(struct pr_http *h, const char *path, const char *dest, int64_t *size,
    struct pr_http_response *r)
{
	const cJSON *c = fz_collect_of(dest);
	const char *p = path;
	char *name, *sub, *type;
	FILE *fp;

	(void)h;
	F.downloads++;
	/* Where it goes is the job record's path under --out, never a name
	 * from the entry. */
	check(c != NULL);
	check(strncmp(p, "/view?", 6) == 0);
	p += 6;
	name = fz_value(&p, "filename", false);
	sub = fz_value(&p, "subfolder", false);
	type = fz_value(&p, "type", true);
	check(name && sub && type && *p == '\0');
	fz_check_request(c, name, sub, type);
	free(name);
	free(sub);
	free(type);

	*size = 0;
	switch (F.answer) {
	case 0:
		check((fp = fopen(dest, "wb")) != NULL);
		check(fwrite(F.file, 1, F.file_len, fp) == F.file_len);
		check(fclose(fp) == 0);
		*size = (int64_t)F.file_len;
		r->status = 200;
		return 0;
	case 1:
		r->status = 404;
		return 0;
	}
	F.transient++;
	if (F.answer == 2) {
		r->status = 503;
		return 0;
	}
	snprintf(r->err, sizeof r->err, "connection reset");
	return -1;
}

/* Tries come at once: the pauses between them are counted, not slept. */
static void
fz_pause(double seconds)
{
	check(seconds > 0 && seconds <= 16);
	F.pauses++;
}

/* A video's frame count: its size, so inputs choose it; 'X' first does
 * not decode. */
static int
fz_probe(const char *path, struct pr_video_info *info, char *err, size_t errlen)
{
	struct stat sb;
	FILE *fp;
	int ch;

	memset(info, 0, sizeof *info);
	check(stat(path, &sb) == 0 && (fp = fopen(path, "rb")) != NULL);
	ch = fgetc(fp);
	fclose(fp);
	if (ch == 'X') {
		snprintf(err, errlen, "invalid data");
		return -1;
	}
	info->frames = (long)sb.st_size;
	return 0;
}

static void
fz_split(const uint8_t *data, size_t size, size_t *json_len)
{
	const uint8_t *nul = memchr(data, '\0', size);

	*json_len = nul ? (size_t)(nul - data) : size;
	F.answer = 0;
	F.job = 0;
	F.file = (const uint8_t *)"";
	F.file_len = 0;
	if (nul && (size_t)(nul - data) + 1 < size) {
		F.answer = nul[1] & 3;
		F.job = (nul[1] >> 2 & 3) % 3;
		F.file = nul + 2;
		F.file_len = size - (size_t)(nul - data) - 2;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct server srv = { .url = (char *)"http://127.0.0.1:8188" };
	struct run R = { .o = { .out = F.out } };
	struct pr_json_error je;
	struct job j = { 0 };
	const cJSON *c;
	cJSON *entry, *error = NULL;
	size_t json_len, i = 0;
	bool transient = true;
	int rc;

	fz_split(data, size, &json_len);
	if (!(entry = pr_json_parse((const char *)data, json_len, &je, NULL)))
		return 0;
	j.rec = pr_json_parse(JOBS[F.job], strlen(JOBS[F.job]), &je, NULL);
	check(j.rec != NULL);
	j.id = pr_json_get_string(j.rec, "id");
	j.srv = &srv;
	F.entry = entry;
	F.collect = pr_json_get(j.rec, "collect");
	F.downloads = F.pauses = F.transient = 0;

	rc = collect_outputs(&R, &j, entry, &error, &transient);
	check(rc == 0 || rc == -1);
	/* A failure worth retrying is tried six times in all. */
	check(F.downloads <= 6 * cJSON_GetArraySize(F.collect));
	/* A pause follows each of them, but maybe the last: collect.c
	 * pauses after its sixth try too, before giving up (16 s for
	 * nothing; reported). */
	check(F.pauses == F.transient || F.pauses == F.transient - 1);
	if (rc == 0) {
		const cJSON *f;

		check(error == NULL && !transient && F.answer == 0);
		check(cJSON_GetArraySize(j.files) == cJSON_GetArraySize(F.collect));
		cJSON_ArrayForEach(f, j.files) {
			c = cJSON_GetArrayItem(F.collect, (int)i++);
			check(fz_same(pr_json_get_string(f, "path"), pr_json_get_string(c, "path")));
			check(fz_same(pr_json_get_string(f, "role"), pr_json_get_string(c, "role")));
		}
	} else {
		check(cJSON_IsObject(error) && pr_json_get_string(error, "message"));
		check(!transient || F.transient > 0);
	}
	/* Nothing but the job's own files was written; they go before the
	 * next input. */
	check(nftw(F.out, fz_only_dests, 16, FTW_PHYS) == 0);
	cJSON_ArrayForEach(c, F.collect) {
		char *dest = pr_xasprintf("%s/%s", F.out, pr_json_get_string(c, "path"));
		unlink(dest);
		free(dest);
	}
	cJSON_Delete(error);
	cJSON_Delete(j.files);
	cJSON_Delete(j.rec);
	cJSON_Delete(entry);
	return 0;
}
