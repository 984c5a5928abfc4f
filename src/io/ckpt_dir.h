/* ckpt_dir.h: the run directory's checkpoint commit protocol.
 *
 * Contract (steps and reasons: docs/reliability.md, "Commit protocol")
 *  - <run_dir>/checkpoints/ holds committed files ckpt-<12-digit step>.h5,
 *    each with a whole-file digest <name>.sha256, and `latest` naming the
 *    newest; temporaries (.tmp-*, latest.tmp) are never taken for
 *    checkpoints. A crash at any point leaves `latest` naming a complete,
 *    committed, verifiable file.
 *  - Save commits a step (rank 0 proves there is room first, so a full disk
 *    is a plain SR_ERR_IO) and keeps the newest `keep` commits.
 *  - Load tries `latest`, then older commits, newest first; each candidate
 *    passes sr_ckpt_load and its whole-file digest (size included) or is
 *    skipped with a warning on rank 0; none usable: the newest one's error.
 *    A caller's accept hook sees each candidate's info first and may refuse
 *    it (a different run: an error, no fallback).
 *  - Verify runs exactly the checks a load runs on one file (the same
 *    functions), with nothing requested: the same files pass and fail.
 *  - Every function is collective; errors are agreed across ranks.
 */
#ifndef SR_IO_CKPT_DIR_H
#define SR_IO_CKPT_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "comm/comm.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "io/fault.h"

#define SR_CKPT_DIR_NAME "checkpoints"
#define SR_CKPT_DIR_PATH_MAX 1400

/* Collective, call once at start of training: create <run_dir>/checkpoints
 * if missing, delete leftover temporaries and orphan digests (best effort),
 * and check that a file can be created there (SR_ERR_IO "<dir>: cannot write
 * in the checkpoint directory: <OS reason>", e.g. a read-only mount).
 * run_dir must exist. Loading needs none of this: sr_ckpt_dir_load and
 * sr_ckpt_load only read. */
sr_status sr_ckpt_dir_cleanup(const sr_comm *c, const char *run_dir, sr_error *err);

/* Collective: commit a checkpoint of `step` (protocol above). keep >= 1.
 * fault may be NULL. */
sr_status sr_ckpt_dir_save(const sr_comm *c, const char *run_dir, int64_t step, const sr_ckpt_info *info,
                           const sr_ckpt_table *tables, int ntables, const sr_ckpt_state *state, int nstate,
                           int64_t keep, sr_fault *fault, sr_error *err);

/* Collective: path of the checkpoint `latest` names (agreed on all ranks;
 * the newest committed one when `latest` is missing or dangling), or "" when
 * there is none. Does not verify it. */
sr_status sr_ckpt_dir_latest(const sr_comm *c, const char *run_dir, char *path_out, size_t len, sr_error *err);

/* A caller's decision on a candidate before its tables load: fn sees the
 * candidate's root attributes (sr_ckpt_read_info) on every rank and
 * returns SR_OK to load it or an error that ends the load (no fallback:
 * the run, not the file, is wrong). It must decide the same on every rank. */
typedef struct sr_ckpt_accept {
    sr_status (*fn)(void *ctx, const char *path, const sr_ckpt_info *info, sr_error *err);
    void *ctx;
} sr_ckpt_accept;

/* Collective: load the newest usable checkpoint with fallback (above).
 * accept may be NULL. A missing or unusable `latest` with committed files
 * present is a warning on rank 0. path_out (may be NULL) receives the file
 * used, "" when the directory has no checkpoint at all (then SR_OK and
 * nothing is touched: a fresh start). */
sr_status sr_ckpt_dir_load(const sr_comm *c, const char *run_dir, sr_ckpt_table *tables, int ntables,
                           sr_ckpt_state *state, int nstate, sr_ckpt_info *info, const sr_ckpt_accept *accept,
                           sr_fault *fault, char *path_out, size_t len, sr_error *err);

/* Collective: every check a load of path runs, nothing loaded, no trainer
 * needed (sr_ckpt_verify, then the whole-file digest and size). *had_digest
 * (may be NULL): 0 when path has no digest file (a warning, as for a load).
 * info as in sr_ckpt_load (may be NULL). */
sr_status sr_ckpt_dir_verify(const sr_comm *c, const char *path, sr_ckpt_info *info, int *had_digest,
                             sr_error *err);

/* File name of a step's checkpoint ("ckpt-000000001234.h5"). */
void sr_ckpt_dir_name(int64_t step, char *buf, size_t len);

/* 1 and *step when name is exactly a committed checkpoint's name. */
int sr_ckpt_dir_parse_name(const char *name, int64_t *step);

#endif
