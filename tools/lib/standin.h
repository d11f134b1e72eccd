/*
 * What the loopback stand-ins' command lines share (fake-comfyui,
 * fake-gcs, fake-runpod): they listen on loopback only, on a port given
 * or chosen by the system, and take faults as JSON.
 */
#ifndef PR_STANDIN_H
#define PR_STANDIN_H

#include <stdbool.h>
#include <stddef.h>

#include "json.h"

/* Whether addr is an IPv4 address in 127.0.0.0/8. */
bool pr_loopback(const char *addr);
/* --port: 0 to 65535, or a usage error. */
int pr_port_arg(const char *usage, const char *arg);
/* --listen: a usage error unless addr is a loopback address, so that a
 * stand-in never answers anyone but this machine. */
void pr_loopback_arg(const char *usage, const char *addr);
/* --fault JSON: parsed and armed by add (which says why it refuses), or a
 * usage error. */
void pr_fault_arg(const char *usage, const char *arg,
    int (*add)(const cJSON *spec, char *why, size_t whylen));

#endif
