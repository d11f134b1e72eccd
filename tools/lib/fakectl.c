/*
 * The stand-ins' shared control requests. See fakectl.h.
 */
#include <stdbool.h>
#include <string.h>

#include "fakectl.h"

cJSON *
pr_fakectl_answer(const struct pr_fakectl *c, const char *method, const char *path)
{
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
	cJSON *v = NULL;

	if (get && strcmp(path, "/fake/state") == 0)
		return c->state();
	if (post && strcmp(path, "/fake/state/clear") == 0) {
		pthread_mutex_lock(c->lock);
		memset(c->counters, 0, c->counters_size);
		cJSON_Delete(*c->log);
		*c->log = pr_json_array();
		pthread_mutex_unlock(c->lock);
		return c->state();
	}
	if (get && strcmp(path, "/fake/log") == 0) {
		pthread_mutex_lock(c->lock);
		v = pr_json_copy(*c->log);
		pthread_mutex_unlock(c->lock);
		return v;
	}
	if (post && strcmp(path, "/fake/log/clear") == 0) {
		pthread_mutex_lock(c->lock);
		cJSON_Delete(*c->log);
		*c->log = pr_json_array();
		pthread_mutex_unlock(c->lock);
		return pr_json_array();
	}
	if (get && strcmp(path, "/fake/faults") == 0)
		return pr_faultset_list(c->faults);
	if (post && strcmp(path, "/fake/faults/clear") == 0) {
		pr_faultset_clear(c->faults);
		return pr_json_array();
	}
	return NULL;
}

void
pr_fakectl_log(const struct pr_fakectl *c, cJSON *entry)
{
	pthread_mutex_lock(c->lock);
	if (cJSON_GetArraySize(*c->log) < PR_FAKECTL_LOG_MAX) {
		cJSON_AddItemToArray(*c->log, entry);
		entry = NULL;
	}
	pthread_mutex_unlock(c->lock);
	cJSON_Delete(entry);
}
