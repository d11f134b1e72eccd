/* Values flowing between nodes: shared, counted, never changed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"

struct value *
value_new(enum vkind kind)
{
	struct value *v = pr_xcalloc(1, sizeof *v);

	v->refs = 1;
	v->kind = kind;
	return v;
}

struct value *
value_frames(enum vkind kind, size_t n, int w, int h)
{
	struct value *v = value_new(kind);

	v->n = n;
	v->codes = pr_xcalloc(n ? n : 1, sizeof *v->codes);
	v->w = w;
	v->h = h;
	return v;
}

struct value *
value_ref(struct value *v)
{
	if (v)
		v->refs++;
	return v;
}

void
value_unref(struct value *v)
{
	if (!v || --v->refs > 0)
		return;
	free(v->s);
	free(v->codes);
	cJSON_Delete(v->info);
	free(v);
}

cJSON *
value_describe(const struct value *v)
{
	char buf[160];

	/* What Python's str() would show: primitives as they are. */
	switch (v ? v->kind : V_NONE) {
	case V_INT:
		return pr_json_int(v->i);
	case V_FLOAT:
		return cJSON_CreateNumber(v->f);
	case V_STRING:
		return pr_json_string(v->s);
	case V_BOOL:
		return cJSON_CreateBool(v->b);
	case V_FRAMES:
		snprintf(buf, sizeof buf, "<IMAGE batch of %zu frames, %dx%d>", v->n, v->w, v->h);
		return pr_json_string(buf);
	case V_LATENT:
		snprintf(buf, sizeof buf, "<LATENT of %zu frames, %dx%d>", v->n, v->w, v->h);
		return pr_json_string(buf);
	case V_THING: {
		char *s = pr_json_print(v->info, 0), *out;
		cJSON *r;

		out = pr_xmalloc(strlen(s) + 3);
		sprintf(out, "<%s>", s);
		r = pr_json_string(out);
		free(s);
		free(out);
		return r;
	}
	default:
		return cJSON_CreateNull();
	}
}
