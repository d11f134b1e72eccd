/*
 * pr-submit: what one run knows. main.c reads the jobs and runs the
 * phases; jobs.c loads them, computes cache keys and replays the journal;
 * preflight.c checks them against the servers; server.c speaks to one
 * ComfyUI; schedule.c decides which ready job goes to which server
 * next; run.c is the loop that submits, waits and finishes jobs;
 * collect.c fetches, verifies and derives their files; progress.c tells
 * the user.
 */
#ifndef PR_SUBMIT_H
#define PR_SUBMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "pr.h"
#include "hash.h"
#include "httpc.h"
#include "journal.h"
#include "wsclient.h"

enum job_state {
	JOB_WAITING,    /* not on a server: dependencies, staging or a retry */
	JOB_QUEUED,     /* ours on a server, queued or running */
	JOB_DONE,
	JOB_FAILED,
	JOB_SKIPPED,
};

struct server;

struct job {
	cJSON *rec;             /* the input record (owned) */
	const char *id, *video;
	const char *pass, *model;       /* NULL when the record has none */
	size_t line;            /* of the input, for messages */
	struct job **deps;
	size_t ndeps;
	char key[PR_SHA256_HEX];
	enum job_state state;
	bool cached;
	bool preflight_ok;
	uint64_t runs_on;       /* bit k: passed preflight on server k */
	int passed_over;        /* jobs of other models sent ahead of it in a row */
	double ready_since;     /* 0: not ready */

	/* The current submission. */
	char prompt_id[40];
	struct server *srv;
	int attempts;           /* submissions made for this job, all runs */
	bool oom_retried;
	bool started, ended;    /* seen executing; an end seen on the socket */
	/* What the socket announced ("executed" outputs by node, then its
	 * success): a server that restarts forgets the prompt but keeps
	 * the files, which are then collected instead of rendered again. */
	cJSON *heard;
	bool heard_success;
	bool uncertain;         /* POST outcome unknown: check before resending */
	bool timed_out;
	double retry_at;        /* not before this (backoff) */
	int failures;           /* transient failures in a row */
	double t_submitted, t_started, t_finished, t_fetched, t_collected, t_interrupt;
	double missing_since;   /* first seen in neither queue nor history */
	double history_failing; /* since when its history cannot be read; 0: it can */
	int history_unreadable; /* answers in a row too big, endless or not JSON */

	/* Progress. */
	char node[64];
	long step, steps;
	double last_event;

	cJSON *files;           /* [{role, path, size, sha256}] once done */
	cJSON *error;           /* {node_id, node_type, exception_type, message} */
	bool journaled_end;     /* done/failed written to the journal */
};

/* The longest any call to a server's API may take (seconds), however
 * fast its answer comes: an endless one must end. Files get
 * --transfer-timeout. */
#define CALL_TIMEOUT 300.0

/* At most this many --server: a job's servers are a bit mask. */
#define MAX_SERVERS 64

struct server {
	char *url;
	size_t index;           /* in run.servers, its bit in job.runs_on */
	char **affinity;        /* passes or models it takes; NULL: any job */
	size_t naffinity;
	const char *model;      /* of the last job queued on it: loaded next */
	cJSON *moved;           /* prompt ids moved off it while it was down */
	struct pr_http *http;
	struct pr_ws *ws;
	cJSON *object_info;
	int64_t max_upload;     /* 0: unknown */
	int inflight;
	unsigned ws_seen;       /* connections counted so far */
	double next_poll, ws_retry_at, ws_backoff, down_since;
	bool usable;            /* answered at start */
	cJSON *staged;          /* {as: sha256} uploaded this run */
};

struct opts {
	const char *state, *out, *events;
	double job_timeout;     /* 0: none */
	double wait_server;
	int queue_depth;
	int model_batch;        /* 0: plan order, no grouping by model */
	double move_after;
	int64_t max_output;     /* bytes one collected file may have */
	double transfer_timeout; /* seconds one file's download or upload may take */
	bool interrupt_on_exit;
	bool no_preflight;
};

struct run {
	struct opts o;
	struct job *jobs;
	size_t njobs;
	struct server *servers;
	size_t nservers;
	struct pr_wsctx *wsctx;
	struct pr_journal *journal;
	char journal_path[4096];
	char client_id[40];
	FILE *events;
	bool tty;
	double t0, next_status;
	int executed;           /* prompts this run finished on a server */
	bool infra;             /* an infrastructure failure happened */
};

/* jobs.c */
void jobs_read(struct run *R, FILE *fp, const char *name);
void jobs_keys(struct run *R);
void jobs_replay(struct run *R, const cJSON *journal);
/* The collected node ids: the partial_execution_targets the job is
 * validated and run with (NULL when it collects nothing). */
cJSON *job_targets(const struct job *j);
struct job *job_by_prompt(struct run *R, const char *prompt_id);
/* A local path for a record path: absolute, or under --out. */
char *job_local_path(const struct run *R, const char *path);
/* The job that produces path (collect or derive), or NULL. */
struct job *job_producer(struct run *R, const char *path);
void job_fail(struct run *R, struct job *j, cJSON *error, bool journal);
cJSON *job_error(const char *node_id, const char *node_type,
    const char *exception_type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
cJSON *job_result(const struct run *R, const struct job *j);
void journal_event(struct run *R, cJSON *ev);
/* pr_sha256_file, remembered while the file's size and mtime stay. */
int file_sha256(const char *path, char hex[PR_SHA256_HEX], long long *size);
void file_hashes_free(void);

/* server.c */
/* url may end in #AFFINITY: a comma-separated list of passes or models. */
void server_init(struct server *s, const char *url);
void server_free(struct server *s);
/* Waits (bounded) for the server to answer, then fetches /object_info and
 * /features. 0, or -1 with a message in err. */
int server_start(struct server *s, double wait, char *err, size_t errlen);
/* Uploads local as the server name "sub/name". 0, or -1 with err;
 * *transient tells a retry may help. */
int server_stage(struct server *s, const char *local, const char *as,
    bool *transient, char *err, size_t errlen);
/* GET a JSON document. NULL with err on failure (transport or status);
 * *status is the answer's HTTP status, also when its body was over a
 * bound (too big, endless), and 0 when none came. */
cJSON *server_get_json(struct server *s, const char *path, long *status,
    char *err, size_t errlen);
/* The queue's prompt ids: running and pending arrays of strings. */
int server_queue(struct server *s, cJSON **running, cJSON **pending,
    char *err, size_t errlen);
void server_interrupt(struct server *s, const char *prompt_id);
void server_free_memory(struct server *s);
bool server_has_file(struct server *s, const char *folder, const char *name);

/* preflight.c: every problem on stderr; the number found. */
int preflight(struct run *R);

/* schedule.c */
/* Whether an affinity names a pass or model no job has; the bad name. */
const char *schedule_check_affinity(const struct run *R);
/* Whether s is one of the servers j should go to while they are there
 * (its affinity, else the servers without one, else any). */
bool schedule_preferred(const struct run *R, const struct job *j, const struct server *s);
/* Whether s counts as gone: given up, or down longer than --move-after. */
bool schedule_gone(const struct run *R, const struct server *s, double now);
/* The ready job s should queue next, or NULL. */
struct job *schedule_next(struct run *R, struct server *s, double now);
/* Notes when each job became ready (the order ready jobs go in). */
void schedule_observe(struct run *R, double now);
/* j was queued on s: the other ready jobs s could have taken wait longer. */
void schedule_sent(struct run *R, struct job *j, struct server *s, double now);
bool job_ready(const struct job *j, double now);

/* run.c */
void run_loop(struct run *R);
extern volatile int stop_signal;

/* collect.c: fetches the job's outputs from a history entry, verifies
 * them and makes its derived files; fills j->files. 0, or -1 with
 * *error set; *transient when a rerun could still collect them. */
int collect_outputs(struct run *R, struct job *j, const cJSON *entry,
    cJSON **error, bool *transient);
/* Checks a file is a whole one of its kind. 0, or -1 with err. */
int verify_file(const char *path, const char *role, long min_frames,
    char *err, size_t errlen);

/* progress.c */
void pause_for(double seconds);
void progress_event(struct run *R, struct job *j, const char *ev, cJSON *extra);
void progress_tick(struct run *R, bool force);
void progress_end(struct run *R);

/* uuid4 text */
void make_uuid(char out[37]);

#endif
