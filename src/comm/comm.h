/* comm.h: the communicator, checked MPI calls and the cross-rank error
 * protocol (docs/reliability.md, "Errors across ranks").
 *
 * sr_comm wraps a duplicated MPI communicator whose error handler is
 * MPI_ERRORS_RETURN, so every MPI call returns its error instead of killing
 * the job, and every call is checked with SR_MPI / SR_MPI_CHECK, which
 * record SR_ERR_MPI with the call site's file:line and MPI's error text.
 *  - a problem every rank can detect (bad config, bad dataset, an MPI
 *    argument error) goes through sr_comm_agree(), then sr_comm_exit():
 *    rank 0 prints it once and every rank exits with the same code;
 *  - a problem only one rank sees (I/O, NaN, OOM in the middle of a step)
 *    goes to sr_comm_abort(): "[rank r] file:line: msg" and MPI_Abort, so no
 *    peer is left waiting in a collective.
 */
#ifndef SR_COMM_COMM_H
#define SR_COMM_COMM_H

#include <mpi.h>
#include <stdint.h>

#include "core/error.h"

/* Payload bytes this rank contributed to collectives (the data it put in:
 * an all-reduce of n doubles counts 8n, an all-gather its own block, a
 * reduce-scatter its whole send buffer, an all-to-all what it sends to the
 * other ranks). Wire bytes depend on MPI's algorithm (a ring all-reduce
 * moves 2(P-1)/P of the payload). Nothing is counted on one rank. */
typedef struct sr_comm_stats {
    int64_t bytes;
    int64_t calls;
} sr_comm_stats;

typedef struct sr_comm {
    MPI_Comm comm;        /* owned duplicate */
    int rank;
    int size;
    sr_comm_stats *stats; /* owned by sr_comm_init; NULL: not counted */
} sr_comm;

/* Duplicate parent (collective) and set MPI_ERRORS_RETURN on the duplicate;
 * when parent is MPI_COMM_WORLD, on it too (before the dup, so the dup
 * itself is checked). */
sr_status sr_comm_init(sr_comm *c, MPI_Comm parent, sr_error *err);
void sr_comm_destroy(sr_comm *c);

/* Add one collective's payload to c->stats (no-op without stats or P = 1). */
static inline void sr_comm_count(const sr_comm *c, int64_t bytes)
{
    if (c->stats && c->size > 1) {
        c->stats->bytes += bytes;
        c->stats->calls++;
    }
}

/* Collective: combine per-rank status. Returns SR_OK when no rank failed;
 * otherwise every rank's err holds the lowest failing rank's error (code,
 * file:line and message) and the code is returned on every rank. */
sr_status sr_comm_agree(const sr_comm *c, sr_error *err);

/* Collective, after sr_comm_agree failed: rank 0 prints "softrec: error: msg"
 * once, every rank finalizes MPI and exits with err->code. */
_Noreturn void sr_comm_exit(const sr_comm *c, const sr_error *err);

/* One rank's unrecoverable error: print with the rank and abort the job with
 * err->code. */
_Noreturn void sr_comm_abort(const sr_comm *c, const sr_error *err);

/* rc of an MPI call at file:line: SR_OK for MPI_SUCCESS, else SR_ERR_MPI
 * "<call> failed: <MPI error string>" recorded at file:line (call: the
 * call's text; only the function name is kept). */
sr_status sr_comm_check(int rc, sr_error *err, const char *call, const char *file, int line);

/* Check one MPI call where it is made (PETSc's PetscCallMPI):
 * SR_MPI_CHECK(err, call) is SR_OK or SR_ERR_MPI (recorded, the caller
 * goes on, e.g. to free and agree); SR_MPI(err, call) returns it. */
#define SR_MPI_CHECK(err, call) sr_comm_check((call), (err), #call, __FILE__, __LINE__)
#define SR_MPI(err, call) SR_TRY(SR_MPI_CHECK(err, call))

/* Checked narrowing of a 64-bit count or displacement to MPI's int. */
sr_status sr_comm_int(int64_t v, int *out, const char *what, sr_error *err);

#endif
