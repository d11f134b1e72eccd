/*
 * The rules engine: any rules file loads or is refused with a message;
 * one that loads is applied to the shipped render workflow for a HIGH and
 * a LOW job, and either patches it or says why not. The rules come from
 * a file (pr_rules_load reads a path): a memfd, so nothing touches disk.
 */
#define _GNU_SOURCE     /* memfd_create */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pr.h"
#include "rules.h"
#include "fuzz.h"

static cJSON *workflow, *jobs[2];

static cJSON *
load(const char *path)
{
	struct pr_buf b = PR_BUF_INIT;
	struct pr_json_error e;
	cJSON *v;

	if (pr_file_read(path, 64 << 20, &b) < 0 ||
	    !(v = pr_json_parse(b.data, b.len, &e, NULL))) {
		fprintf(stderr, "fuzz-rules: cannot read %s\n", path);
		exit(1);
	}
	pr_buf_free(&b);
	return v;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const job_text[2] = {
		"{\"video\":\"clip\",\"id\":\"clip/job_001\",\"n\":1,\"n3\":\"001\",\"pass\":\"high\","
		"\"chunk\":0,\"start\":0,\"frames\":81,\"model\":\"high.gguf\",\"lora\":\"h.safetensors\","
		"\"positive\":\"a \\\"dancer\\\" $(x) `y` ${z}\",\"negative\":\"blurry\","
		"\"input_video\":\"src.mp4\",\"total_frames\":200,\"source\":\"p/clip.txt\","
		"\"input_video_path\":\"/tmp/src.mp4\",\"latent\":\"latents/clip/job_001.latent\"}",
		"{\"video\":\"clip\",\"id\":\"clip/job_004\",\"n\":4,\"n3\":\"004\",\"pass\":\"low\","
		"\"chunk\":1,\"start\":71,\"frames\":81,\"model\":\"low.gguf\",\"lora\":\"l.safetensors\","
		"\"positive\":\"p\",\"negative\":\"n\",\"input_video\":\"src.mp4\",\"total_frames\":200,"
		"\"source\":\"p/clip.txt\",\"input_video_path\":\"/tmp/src.mp4\","
		"\"latent\":\"latents/clip/job_003.latent\",\"reference\":\"references/clip/job_002_ref.png\","
		"\"ref_frame\":71}",
	};
	const char *dir = getenv("PR_FUZZ_WORKFLOWS") ? getenv("PR_FUZZ_WORKFLOWS") : "workflows";
	char path[4096];
	struct pr_json_error e;

	(void)argc;
	(void)argv;
	snprintf(path, sizeof path, "%s/prompt.json", dir);
	workflow = load(path);
	for (int i = 0; i < 2; i++)
		jobs[i] = pr_json_parse(job_text[i], strlen(job_text[i]), &e, NULL);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pr_rules *r;
	char path[64], err[1024];
	int fd, status = 0;

	if ((fd = memfd_create("rules", 0)) < 0)
		return 0;
	if (pr_write_full(fd, data, size) < 0) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	err[0] = '\0';
	r = pr_rules_load(path, &status, err, sizeof err);
	close(fd);
	if (!r) {
		check(err[0] != '\0' && status != 0);
		return 0;
	}
	for (int i = 0; i < 2; i++) {
		struct pr_patched p = { 0 };
		err[0] = '\0';
		if (pr_rules_apply(r, workflow, jobs[i], NULL, &p, err, sizeof err) < 0)
			check(err[0] != '\0');
		else
			check(cJSON_IsObject(p.workflow));
		pr_patched_free(&p);
	}
	pr_rules_free(r);
	return 0;
}
