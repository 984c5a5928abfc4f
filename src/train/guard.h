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
 * 100 ms whether the current phase has run longer than its limit. From the
 * first sr_guard_step_begin (or a watched start-up) until destroy every
 * moment belongs to a phase, so every collective in between is watched:
 *   - step S: sr_guard_step_begin(S) to sr_guard_step_end(S) (the caller
 *     ends it after the step's last collective, the stop decision);
 *   - after step S: from sr_guard_step_end or sr_guard_unwatch to the next
 *     begin or watch (progress lines, epoch bookkeeping), the step's limit;
 *   - a watched phase, sr_guard_watch(SR_GUARD_SAVE / _MODEL / _EVAL) to
 *     sr_guard_unwatch: checkpoint save, model save, evaluation.
 * Steps and each watched phase keep their own history of durations:
 *     limit = max(factor x median of the last SR_GUARD_HISTORY durations,
 *                 min_seconds)
 * and min_seconds until SR_GUARD_WARMUP steps (1 save, 1 evaluation) have
 * been timed, so a stopped peer is caught within max(factor x median,
 * min_seconds) plus the 100 ms tick. Then it prints
 *     softrec: watchdog: rank R stuck in step S for T s (limit L s)
 * ("in checkpoint save", "in evaluation", "after step S", ...) to stderr
 * and ends the job: MPI_Abort(MPI_COMM_WORLD, SR_WATCHDOG) when MPI was
 * initialised with MPI_THREAD_MULTIPLE (only then may a second thread call
 * MPI), otherwise _exit(SR_WATCHDOG); mpirun and srun end the whole job
 * about 1 s after a rank exits without MPI_Finalize. Before the first step
 * nothing is watched unless the caller watches SR_GUARD_START (training
 * does, from before the dataset is read); after destroy nothing is.
 *
 * Launcher death. Under a launcher (Open MPI, PMIx or SLURM variables set)
 * a rank must not outlive its job: create asks the kernel for SIGKILL when
 * the parent dies (prctl PR_SET_PDEATHSIG) if the parent is a launcher
 * process (mpirun, orted, prted, slurmstepd, ...; the signal follows the
 * parent thread, and those fork from threads that live as long as they
 * do), and the watchdog thread checks getppid() every tick and exits
 * (code SR_WATCHDOG, one line) when the parent changed. A stopped rank is
 * covered by the first only.
 *
 * Heartbeats (sr_guard_set_heartbeat_dir). A rank stopped with SIGSTOP (or
 * frozen in the kernel) cannot report itself: its peers block in the next
 * collective and their watchdogs fire. So that their line names the culprit,
 * every rank publishes a fixed-size record in <dir>/.heartbeat.<rank>, read
 * without MPI by whichever watchdog fires:
 *   - step_begin / step_end / watch / unwatch: one pwrite of (rank, step,
 *     phase, wall-clock time); no fsync (page cache only: a few us, measured
 *     by test_guard's heartbeat test);
 *   - the watchdog thread: one pwrite of an "alive" time every 100 ms, so a
 *     stopped process (all of its threads frozen) shows a stale alive time
 *     while a rank that is merely slow keeps ticking.
 * A firing watchdog reads every rank's record and appends the ranks that
 * have not responded for over SR_GUARD_SILENT_S seconds or are behind its
 * step (at most SR_GUARD_NAMED, those not responding first), e.g.
 *     softrec: watchdog: rank 0 stuck in step 57 for 1.1 s (limit 1.0 s);
 *     rank 2 has not reached step 57 (last heartbeat step 56, 1.1 s ago,
 *     not responding)
 * (one line), or "rank Q is not responding (last heartbeat step S, T s
 * ago)" for a frozen rank in the same step. Records use CLOCK_REALTIME, so
 * across nodes they are as good as the clocks' sync; on NFS a record written
 * on another node can be stale by the client cache's delay (Lustre, GPFS and
 * ranks of one node see each write at once). destroy removes this rank's
 * file; a job killed by the watchdog leaves them (a new job overwrites).
 */
#ifndef SR_TRAIN_GUARD_H
#define SR_TRAIN_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "comm/comm.h"
#include "core/error.h"

#define SR_GUARD_HISTORY 20       /* durations in a phase's median */
#define SR_GUARD_WARMUP 3         /* steps before the median is trusted */
#define SR_GUARD_SILENT_S 0.5     /* alive time older than this: not responding */
#define SR_GUARD_NAMED 4          /* other ranks named in the watchdog line */

typedef struct sr_guard sr_guard;

/* What the watchdog watches (each kind its own history and limit). */
typedef enum sr_guard_phase {
    SR_GUARD_STEP = 0,  /* a training step, up to its stop decision */
    SR_GUARD_AFTER = 1, /* between phases, after a step (the step's limit) */
    SR_GUARD_SAVE = 2,  /* checkpoint save */
    SR_GUARD_MODEL = 3, /* model.h5 save */
    SR_GUARD_EVAL = 4,  /* evaluation of a split */
    SR_GUARD_START = 5, /* start-up: dataset load, model create, resume, up to the first step */
    SR_GUARD_FINISH = 6, /* after the last step: final checkpoint, model.h5, test evaluation */
    SR_GUARD_PHASES = 7
} sr_guard_phase;

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

/* Bracket one training step: begin arms the watchdog (from then on it stays
 * armed until destroy); end records the step's duration (when the step
 * numbers match) and moves to "after step". */
void sr_guard_step_begin(sr_guard *g, int64_t step);
void sr_guard_step_end(sr_guard *g, int64_t step);

/* Collective (every rank, same dir): publish this rank's heartbeat in
 * <dir>/.heartbeat.<rank> (created or overwritten; dir must exist and be
 * shared by the job's ranks: the run directory). Each rank writes its first
 * record before any returns, so no stale file from an earlier job is read.
 * dir NULL: stop publishing (not collective). SR_ERR_IO (agreed on every
 * rank) when a rank cannot create its file: the guard then runs without
 * heartbeats on every rank, its watchdog naming only itself. Call it after
 * sr_guard_create; a second call replaces the directory. */
sr_status sr_guard_set_heartbeat_dir(sr_guard *g, const char *dir, sr_error *err);

/* The line the watchdog would print if it fired now (without the newline),
 * into buf (n bytes, truncated): for tests and diagnostics. */
void sr_guard_describe(sr_guard *g, char *buf, size_t n);

/* Bracket a save or an evaluation (SR_GUARD_SAVE, _MODEL, _EVAL): its
 * limit is limit_seconds when > 0, else from its own history (above).
 * unwatch records the duration and moves back to the enclosing phase:
 * "after step", or start-up / finish when one is watched, else (before
 * the first step, nothing watched) disarms again.
 * SR_GUARD_START and SR_GUARD_FINISH enclose: watched, they stay the phase
 * between other watched phases (START until the first step_begin, FINISH
 * until destroy). No history: START runs under factor x min_seconds
 * (reading a large dataset is much longer than a step), FINISH under
 * min_seconds (what runs in it outside the watched phases is short). */
void sr_guard_watch(sr_guard *g, sr_guard_phase phase, double limit_seconds);
void sr_guard_unwatch(sr_guard *g);

/* The limit the current phase runs under (0: not armed): for tests. */
double sr_guard_limit(sr_guard *g);

#endif
