/*
 * The stand-ins' shared options. See standin.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "cli.h"
#include "standin.h"

bool
pr_loopback(const char *addr)
{
	struct in_addr a;

	return inet_pton(AF_INET, addr, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

int
pr_port_arg(const char *usage, const char *arg)
{
	uint64_t u;

	if (pr_parse_u64(arg, &u) < 0 || u > 65535)
		pr_usage_error(usage, "--port \"%s\": expected 0 to 65535", arg);
	return (int)u;
}

void
pr_loopback_arg(const char *usage, const char *addr)
{
	if (!pr_loopback(addr))
		pr_usage_error(usage, "refusing to listen on \"%s\": only loopback addresses "
		    "(127.0.0.0/8) are allowed", addr);
}

void
pr_fault_arg(const char *usage, const char *arg,
    int (*add)(const cJSON *spec, char *why, size_t whylen))
{
	struct pr_json_error e;
	char why[256];
	cJSON *f;

	if (!(f = pr_json_parse(arg, strlen(arg), &e, NULL)))
		pr_usage_error(usage, "--fault: column %zu: %s", e.col, e.msg);
	if (add(f, why, sizeof why) < 0) {
		cJSON_Delete(f);
		pr_usage_error(usage, "--fault: %s", why);
	}
	cJSON_Delete(f);
}
