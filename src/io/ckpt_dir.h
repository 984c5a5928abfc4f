/* ckpt_dir.h: the run directory's checkpoint commit protocol.
 *
 * Layout: <run_dir>/checkpoints/
 *     ckpt-000000001234.h5          committed checkpoint of step 1234
 *     ckpt-000000001234.h5.sha256   its whole-file digest (below)
 *     latest                        one line: the name of the newest commit
 *     .tmp-<step>-<pid>.h5 / .sha256, latest.tmp   in-flight temporaries
 * Only names matching ckpt-<12 digits>.h5 are ever taken for checkpoints; a
 * temporary can never be mistaken for one.
 *
 * Save (collective, sr_ckpt_dir_save):
 *  0. rank 0 proves the file system has room for the whole file (a scratch
 *     file of an upper bound of its size, then that space allocated to the
 *     temporary: sr_ckpt_save), so a full disk is a plain "No space left on
 *     device" error before any HDF5 write, never a failure inside parallel
 *     HDF5's collective calls (where the ranks diverge and hang);
 *  1. every rank writes its rows into .tmp-<step>-<pid>.h5 (sr_ckpt_save:
 *     tables, block digests, state), flush, close; all ranks agree that every
 *     rank succeeded (any failure: the temporary is deleted, nothing else
 *     changes, every rank returns the error);
 *  2. rank 0 fsyncs the file; all ranks hash it (below); rank 0 writes the
 *     digest file beside it (temporary + fsync + rename), renames the file
 *     to ckpt-<step>.h5 and fsyncs the directory: the checkpoint is
 *     committed;
 *  3. rank 0 writes latest.tmp, fsyncs, renames it to latest, fsyncs the
 *     directory;
 *  4. rank 0 deletes committed checkpoints beyond `keep` (newest kept) and
 *     any with a step above this one (left by a run that went back to an
 *     older checkpoint: they belong to an abandoned timeline). Failures to
 *     delete are warnings.
 * A crash at any point leaves `latest` naming a complete, committed file.
 * A file committed in step 2 whose `latest` update never happened (crash
 * between 2 and 3) is ignored by the loader and deleted by the next save.
 *
 * Load (collective, sr_ckpt_dir_load): candidates are the checkpoint `latest`
 * names, then older committed ones, newest first (no `latest`, or one naming
 * a missing file: every committed one, newest first, with a warning). Each
 * candidate is loaded with sr_ckpt_load (schema, block digests, state) and
 * then its whole-file digest is checked (which also covers HDF5 metadata and
 * padding). The first that passes on every rank is used; each one that fails
 * prints "softrec: warning: checkpoint <path> is unusable (<reason>);
 * falling back to <older>" on rank 0. When none loads, the newest one's error
 * is returned. The tables may have been overwritten by a failed candidate.
 *
 * Whole-file digest: SHA-256 of every 16 MiB chunk of the file (a size
 * fixed for all rank counts), chunk b hashed by rank b mod P with pread, so
 * it costs 1/P of a read per rank. Text: "softrec-ckpt-digest 1",
 * "chunk_bytes 16777216", "size <bytes>", then one hex digest per line. It
 * covers what the in-file checks do not (HDF5 metadata outside checksummed
 * headers, padding, bytes appended). A committed file without one (copied
 * by hand) loads with a warning; a malformed one makes the file unusable.
 *
 * Errors are agreed: every rank returns the same status and message.
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

/* Collective: load the newest usable checkpoint with fallback (above).
 * path_out (may be NULL) receives the file used, "" when the directory has
 * no checkpoint at all (then SR_OK and nothing is touched: a fresh start). */
sr_status sr_ckpt_dir_load(const sr_comm *c, const char *run_dir, sr_ckpt_table *tables, int ntables,
                           sr_ckpt_state *state, int nstate, sr_ckpt_info *info, sr_fault *fault, char *path_out,
                           size_t len, sr_error *err);

/* File name of a step's checkpoint ("ckpt-000000001234.h5"). */
void sr_ckpt_dir_name(int64_t step, char *buf, size_t len);

/* 1 and *step when name is exactly a committed checkpoint's name. */
int sr_ckpt_dir_parse_name(const char *name, int64_t *step);

#endif
