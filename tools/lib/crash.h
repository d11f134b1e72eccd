/*
 * Crash points for tests: PR_CRASH_AT=NAME[:N] makes the process kill
 * itself with SIGKILL the Nth time (default 1st) it passes the point
 * NAME, exactly as kill -9 would at that moment. Unset, a point costs one
 * getenv on first use. The resume tests use it to hit the narrow windows
 * (journaled but not yet posted, ...) a timed kill would rarely find.
 */
#ifndef PR_CRASH_H
#define PR_CRASH_H

void pr_crash_point(const char *name);

#endif
