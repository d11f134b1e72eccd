/*
 * One process per state folder: an exclusive flock on DIR/lock, which the
 * kernel releases when the holder dies however it dies, so a stale lock
 * from a killed run is simply taken over. The holder's pid is written in
 * the file for the message a second process gets.
 */
#ifndef PR_LOCK_H
#define PR_LOCK_H

#include <stddef.h>

/* The lock's fd (keep it open for the life of the process), or -1 with a
 * message in err: busy ("held by pid N") or an error. */
int pr_lock_state(const char *dir, char *err, size_t errlen);

#endif
