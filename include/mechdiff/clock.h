/* clock.h — the monotonic clock the runner and the digests time things with
 * (intervals, rates, deadlines; never dates: md_progress_utc / md_h5_now). */
#ifndef MECHDIFF_CLOCK_H
#define MECHDIFF_CLOCK_H

/* Seconds on CLOCK_MONOTONIC (an arbitrary origin: only differences mean
 * anything). */
double md_clock_seconds(void);

#endif
