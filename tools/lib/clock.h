/* Time in seconds as a double: plenty of precision for timeouts, backoff
 * and logs, and simple arithmetic. */
#ifndef PR_CLOCK_H
#define PR_CLOCK_H

/* For intervals and deadlines: never jumps with the system clock. */
double pr_monotonic(void);
/* Seconds since the epoch, for timestamps and token expiry. */
double pr_wall(void);
/* Sleeps that long, however many signals arrive meanwhile. */
void pr_sleep(double seconds);

#endif
