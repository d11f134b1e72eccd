/*
 * Crash points for tests: PR_CRASH_AT=[PROG/]NAME[:N] makes the process
 * kill itself with SIGKILL the Nth time (default 1st) it passes the point
 * NAME, exactly as kill -9 would at that moment. NAME "*" is every point
 * (the Nth point passed, whatever its name); PROG limits it to the program
 * of that name, so one variable can reach one stage of a pipeline.
 * PR_CRASH_TRACE=FILE appends "PROG PID NAME" for each point passed and
 * "PROG PID NAME kill" before the kill: a clean run counts a tool's points, so
 * a seed can pick one of them. Unset, a point costs one getenv on first
 * use. The resume tests and the fault matrix use them to hit the narrow
 * windows (journaled but not yet posted, half the output written, ...) a
 * timed kill would rarely find.
 */
#ifndef PR_CRASH_H
#define PR_CRASH_H

void pr_crash_point(const char *name);

#endif
