/* fault.h: fault injection for the checkpoint I/O path and evaluation
 * (tests only).
 *
 * Contract
 *  - A fault is described by the environment variable
 *        SOFTREC_FAULT="phase[@rank][#nth]"
 *    phase: one of the names below; @rank: only that rank (default: every
 *    rank); #nth: fire on the nth time the phase is reached on that rank
 *    (1-based, default 1), once. SOFTREC_FAULT_ACTION=kill (default) makes
 *    the rank raise SIGKILL on itself; =error makes the hook return SR_ERR_IO
 *    ("injected fault ...") so the error path runs; =stop raises SIGSTOP
 *    (a frozen rank, for the watchdog; it goes on after SIGCONT). Examples:
 *        SOFTREC_FAULT=ckpt_write@1        rank 1 dies in the middle of a table
 *        SOFTREC_FAULT=ckpt_read#2 SOFTREC_FAULT_ACTION=error
 *  - sr_fault_from_env parses once into a struct the caller owns (no
 *    globals); sr_fault_hit counts hits in that struct. A NULL sr_fault or an
 *    unset variable means no fault. A malformed spec is SR_ERR_CONFIG.
 *  - Phases (where the hook sits):
 *        ckpt_write          after the first half of a table's rows are written
 *        ckpt_before_commit  all ranks wrote and agreed, nothing renamed yet
 *        ckpt_after_rename   the file is renamed into place, `latest` not updated
 *        ckpt_read           before a rank reads table rows on load
 *        ckpt_latest         rank 0, before `latest.tmp` is written
 *        eval                a training run's evaluation has begun (kill or stop
 *                            only: an error there leaves the peers waiting)
 *        alloc               the nth counted allocation (sr_mem_alloc, _calloc,
 *                            _bufset_alloc on an armed sr_mem) fails with
 *                            SR_ERR_NOMEM; SOFTREC_FAULT_ACTION is ignored
 *        alloc-count         nothing fails; the owner of the armed sr_mem prints
 *                            "softrec: alloc-count: rank R: N" when done (the
 *                            sweep's trial count, tests/scripts/alloc_sweep.sh)
 *        start               a training run's start-up, before the dataset is read
 *                            (kill or stop: the peers wait in its collectives)
 *        finish              a training run's end: test evaluated, metrics line
 *                            written, before the run's last collective (kill or stop)
 *    The alloc phases act through sr_fault_arm_mem: the owner of an sr_mem
 *    (the trainer, data synth) arms it from its parsed fault.
 */
#ifndef SR_IO_FAULT_H
#define SR_IO_FAULT_H

#include <stdint.h>

#include "core/error.h"
#include "core/mem.h"

typedef enum sr_fault_phase {
    SR_FAULT_NONE = 0,
    SR_FAULT_CKPT_WRITE,
    SR_FAULT_CKPT_BEFORE_COMMIT,
    SR_FAULT_CKPT_AFTER_RENAME,
    SR_FAULT_CKPT_READ,
    SR_FAULT_CKPT_LATEST,
    SR_FAULT_EVAL,
    SR_FAULT_ALLOC,
    SR_FAULT_ALLOC_COUNT,
    SR_FAULT_START,
    SR_FAULT_FINISH,
    SR_FAULT_PHASE_COUNT
} sr_fault_phase;

typedef enum sr_fault_action { SR_FAULT_KILL = 0, SR_FAULT_ERROR = 1, SR_FAULT_STOP = 2 } sr_fault_action;

typedef struct sr_fault {
    sr_fault_phase phase; /* SR_FAULT_NONE: disabled */
    int rank;             /* -1: every rank */
    int64_t nth;          /* fire on this hit (1-based) */
    int64_t hits;         /* times the phase was reached on this rank */
    sr_fault_action action;
} sr_fault;

/* Parse spec ("phase[@rank][#nth]", NULL or "" = none) and action ("kill",
 * "error", NULL = kill). */
sr_status sr_fault_parse(sr_fault *f, const char *spec, const char *action, sr_error *err);

/* sr_fault_parse(getenv("SOFTREC_FAULT"), getenv("SOFTREC_FAULT_ACTION")). */
sr_status sr_fault_from_env(sr_fault *f, sr_error *err);

/* "ckpt_write", ... ("none" for SR_FAULT_NONE). */
const char *sr_fault_phase_name(sr_fault_phase p);

/* The hook: count a hit of phase p on rank; when the fault fires, kill the
 * process (never returns) or record SR_ERR_IO naming `where` and the phase
 * and return it. f may be NULL. Not collective. */
sr_status sr_fault_hit(sr_fault *f, sr_fault_phase p, int rank, const char *where, sr_error *err);

/* Arm m for an alloc fault on this rank: fail its f->nth counted allocation,
 * or count them (alloc-count). Any other fault, or another rank's: m is left
 * unarmed. f may be NULL. */
void sr_fault_arm_mem(const sr_fault *f, int rank, sr_mem *m);

/* Under alloc-count on this rank: print m's count of allocations to stderr
 * (`who` names the owner). Otherwise nothing. */
void sr_fault_report_mem(const sr_fault *f, int rank, const sr_mem *m, const char *who);

#endif
