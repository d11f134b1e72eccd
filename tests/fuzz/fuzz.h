/*
 * libFuzzer entry points (see tests/fuzz/README.md). Each fuzz-NAME.c
 * defines LLVMFuzzerTestOneInput; a crash, leak, sanitizer report or
 * failed check() is a finding.
 */
#ifndef PR_FUZZ_H
#define PR_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A property that must hold: abort (a finding) when it does not. */
#define check(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		abort(); \
	} \
} while (0)

#endif
