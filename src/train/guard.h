/* guard.h: preemption signals and the step watchdog.
 *
 * Preemption. sr_guard_create installs handlers for SIGUSR1 and SIGTERM that
 * only record the signal number in a volatile sig_atomic_t (async-signal
 * safe). That flag is softrec's one global variable: a signal handler gets
 * no argument, so the handler can reach nothing else. Only one guard may
 * exist at a time (SR_ERR_INTERNAL otherwise); destroy restores the previous
 * handlers. sr_guard_should_stop is collective: an all-reduce (MAX) of the
 * flag, so when any rank got the signal every rank sees it in the same call
 * and all stop at the same step. Under mpirun send SIGUSR1 (mpirun forwards
 * SIGUSR1/SIGUSR2 to every rank; SIGTERM to mpirun kills the job); under
 * SLURM use --signal=USR1@<secs> (to the steps) or trap B:USR1 in the batch
 * script and forward it with `kill -USR1` to srun.
 *
 * Watchdog. A thread per rank (not started when factor <= 0) checks every
 * 100 ms whether the current step (between sr_guard_step_begin and
 * sr_guard_step_end) has run longer than its limit:
 *     limit = max(factor x median of the last SR_GUARD_HISTORY step times,
 *                 min_seconds)
 * and, before SR_GUARD_WARMUP steps have finished, factor x min_seconds
 * (first steps warm caches and allocate). Then it prints
 *     softrec: watchdog: rank R stuck in step S for T s (limit L s)
 * to stderr and ends the job: MPI_Abort(MPI_COMM_WORLD, SR_GUARD_EXIT_WATCHDOG)
 * when MPI was initialised with MPI_THREAD_MULTIPLE (only then may a second
 * thread call MPI), otherwise _exit(SR_GUARD_EXIT_WATCHDOG); mpirun and srun
 * end the whole job about 1 s after a rank exits without MPI_Finalize. Time
 * outside steps (evaluation, checkpoints) is not watched unless bracketed by
 * sr_guard_watch / sr_guard_unwatch with an explicit limit.
 * A rank stopped with SIGSTOP cannot report itself: its peers block in the
 * next collective and their watchdogs fire, naming themselves and the step.
 */
#ifndef SR_TRAIN_GUARD_H
#define SR_TRAIN_GUARD_H

#include <stdint.h>

#include "comm/comm.h"
#include "core/error.h"

#define SR_GUARD_EXIT_WATCHDOG 10 /* exit code of a job ended by the watchdog */
#define SR_GUARD_HISTORY 20       /* step times in the median */
#define SR_GUARD_WARMUP 3         /* steps before the median is trusted */

typedef struct sr_guard sr_guard;

/* Install the signal handlers and start the watchdog (factor > 0). Not
 * collective. */
sr_status sr_guard_create(sr_guard **out, const sr_comm *c, double factor, double min_seconds, sr_error *err);

/* Stop the watchdog, restore the previous handlers, free; NULLs *g. */
void sr_guard_destroy(sr_guard **g);

/* Collective: the largest signal number any rank received (0: none) into
 * *sig. Returns SR_OK or SR_ERR_MPI. */
sr_status sr_guard_should_stop(sr_guard *g, int *sig, sr_error *err);

/* This rank's received signal (0: none), without communication. */
int sr_guard_signal(const sr_guard *g);

/* Bracket one training step. */
void sr_guard_step_begin(sr_guard *g, int64_t step);
void sr_guard_step_end(sr_guard *g, int64_t step);

/* Bracket another long phase with its own limit in seconds (what: e.g.
 * "checkpoint save", kept by pointer). */
void sr_guard_watch(sr_guard *g, const char *what, double limit_seconds);
void sr_guard_unwatch(sr_guard *g);

#endif
