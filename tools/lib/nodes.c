#include "err.h"
#include "nodes.h"

static cJSON *facts;

const cJSON *
pr_nodes(void)
{
	struct pr_json_error e;

	if (!facts && !(facts = pr_json_parse(pr_nodes_json, pr_nodes_json_len, &e, NULL)))
		pr_die(PR_EXIT_INFRA, "built-in node facts: line %zu: %s", e.line, e.msg);
	return facts;
}
