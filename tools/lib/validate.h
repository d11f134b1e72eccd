/*
 * Prompt validation the way ComfyUI 0.3.64 does it (execution.py,
 * validate_prompt and validate_inputs), with the same error types, messages
 * and body shapes. The ComfyUI stand-in answers POST /prompt with it, and
 * pr-submit's preflight checks jobs with it before spending a GPU second,
 * so both say the same thing about a workflow.
 */
#ifndef PR_VALIDATE_H
#define PR_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "json.h"

/*
 * Where the file-loading nodes' files are. A node that validates its own
 * inputs (x-validate in the node facts, e.g. LoadImage) names a file that
 * must exist: exists() answers for one folder ("input", "output", "temp"
 * for annotated names such as "x.png [output]", or "cwd" for paths the
 * server resolves against its working directory, absolute paths included)
 * and a path relative to it. The path has been checked for neither ".."
 * nor a leading '/': that is the callback's business.
 */
struct pr_validate_files {
	bool (*exists)(void *ctx, const char *folder, const char *path);
	void *ctx;
};

/* The outcome. The caller frees the trees with pr_validation_free(). */
struct pr_validation {
	/* NULL when the prompt is accepted; else the "error" object of the
	 * HTTP 400 body: {type, message, details, extra_info}. */
	cJSON *error;
	/* Always an object: per failed node {errors, dependent_outputs,
	 * class_type}. Non-empty on acceptance too: outputs that failed
	 * validation are dropped and the rest run (HTTP 200 with node_errors). */
	cJSON *node_errors;
	/* Accepted: the ids of the output nodes to run, in prompt order. */
	cJSON *outputs;
};

/*
 * Validates prompt (the API-format graph) against object_info (the
 * /object_info document as a server sends it: combos of files already
 * filled in) and facts (our node facts, tools/lib/nodes.json, for the
 * x-validate and x-links rules a server does not send; NULL or a class
 * missing from it means no such rules). partial_targets is the request's
 * partial_execution_targets (NULL when absent).
 *
 * What makes ComfyUI itself crash with HTTP 500 (a prompt that is neither
 * an object nor empty, a node that is neither an object nor a string or
 * list) is reported as error type "server_error" for the caller to turn
 * into a 500; a bad "inputs" is a 400 as in Python.
 *
 * Where Python iterates a set (the outputs, a node's inputs) the order of
 * errors is unspecified; this uses prompt order and the order of the
 * class's "required" then "optional" inputs.
 */
void pr_validate_prompt(const cJSON *prompt, const cJSON *partial_targets,
    const cJSON *object_info, const cJSON *facts,
    const struct pr_validate_files *files, struct pr_validation *out);

/* The outcome for a request without "prompt": error no_prompt, no node
 * errors (ComfyUI checks this before validating anything). */
void pr_validation_no_prompt(struct pr_validation *out);

void pr_validation_free(struct pr_validation *v);

#endif
