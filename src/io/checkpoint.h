/* checkpoint.h: one checkpoint file, layout-independent.
 *
 * Contract (layout and reasons: docs/reliability.md, "Checkpoint file format")
 *  - One HDF5 file: every table whole (global rows x d float32, global id
 *    order) whatever the rank count and shard layout that wrote it, so it
 *    reloads at any rank count (resharding) and outside tools can read it;
 *    named state values under /state; the run's info as root attributes.
 *  - Every block of SR_CKPT_BLOCK_ROWS rows and every state entry carries a
 *    SHA-256 digest. A load verifies every block of every table the file
 *    lists (requested or not) and the digest of every /state entry before
 *    any row is trusted, so a load and sr_ckpt_verify pass and fail on the
 *    same files; a mismatch is SR_ERR_DATA naming the file, the object and
 *    the block. Version 1 files (tables only) still load.
 *  - The same contents at the same rank count give the same bytes.
 *  - Every function is collective; errors are agreed across ranks.
 */
#ifndef SR_IO_CHECKPOINT_H
#define SR_IO_CHECKPOINT_H

#include <stdint.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "core/error.h"
#include "io/fault.h"

#define SR_CKPT_FORMAT "softrec-checkpoint"
#define SR_CKPT_VERSION 2
#define SR_CKPT_BLOCK_ROWS 4096 /* rows per checksum block, fixed for all rank counts */

/* One table's local part. Global row of local row k: sr_shard_global(map,
 * rank, k) when map is set, else first_global + k. data is read-only on
 * save. */
typedef struct sr_ckpt_table {
    const char *name;     /* HDF5 path, e.g. "/model/item_embedding" (< 200 chars) */
    float *data;          /* local_rows x d */
    int64_t local_rows;
    int64_t global_rows;
    int64_t d;
    const sr_shard *map;
    int64_t first_global;
} sr_ckpt_table;

typedef enum sr_ckpt_vtype { SR_CKPT_I64 = 0, SR_CKPT_U64 = 1, SR_CKPT_F64 = 2 } sr_ckpt_vtype;

/* A named piece of training state: count int64, uint64 or double values
 * (step, epoch, data cursor, RNG counters, best validation metric, ...).
 * F64 is stored as a float64 dataset, bit for bit (NaN and infinities
 * included) and covered by the digest like the others.
 * per_rank = 0: replicated, identical on every rank (checked on save:
 *   SR_ERR_INTERNAL otherwise); every rank gets the values on load, at any
 *   rank count.
 * per_rank = 1: each rank has its own count values, stored as [ranks, count];
 *   loading at another rank count is SR_ERR_DATA (it cannot be resharded). */
typedef struct sr_ckpt_state {
    const char *name; /* stored as /state/<name>; letters, digits, '_', '-', '/' */
    sr_ckpt_vtype type;
    void *data;       /* int64_t[count], uint64_t[count] or double[count] */
    int64_t count;
    int per_rank;
    /* Load only, int64 and double entries: ranged != 0 makes every value
     * outside [lo, hi] SR_ERR_DATA "<path>: /state/<name>: value V is
     * outside LO to HI" (doubles: also any NaN or infinity, "... is not
     * finite"), checked after the digest, so a forged value whose digest
     * was recomputed is still caught. uint64 entries are never ranged. */
    int ranged;
    int64_t lo, hi;
} sr_ckpt_state;

typedef struct sr_ckpt_info {
    int64_t step, epoch;
    int64_t num_users, num_items, dim;
    char dataset[1024];
    char dataset_sha256[72];
    char *config_ini; /* write: the text; read: malloc'ed, caller frees */
    /* The run's fingerprint: "key = value" lines of what makes two runs the
     * same run (train/state.c decides the keys). write: the text (NULL =
     * ""); read: malloc'ed ("" when the file has none), caller frees. */
    char *fingerprint;
    int format_version; /* read: the file's version */
} sr_ckpt_info;

/* Collective: write path directly (create or truncate; no commit step: use
 * ckpt_dir.h or sr_ckpt_write for that). Tables, checksums, state, info.
 * fault (may be NULL) sees SR_FAULT_CKPT_WRITE halfway through each table.
 * Before HDF5 writes anything, rank 0 reserves an upper bound of the file's
 * size ("<path>.reserve", deleted again) and allocates it to path; after
 * the close path is cut back to HDF5's end of allocation (same bytes as
 * without the reservation). No room: SR_ERR_IO "<path>: cannot reserve N
 * bytes for the checkpoint: No space left on device" before any collective
 * HDF5 call. Errors are agreed; a failed write may leave a partial file at
 * path. */
sr_status sr_ckpt_save(const sr_comm *c, const char *path, const sr_ckpt_info *info, const sr_ckpt_table *tables,
                       int ntables, const sr_ckpt_state *state, int nstate, sr_fault *fault, sr_error *err);

/* Collective read: schema check of the untrusted file (h5check.h), format
 * and version, every requested table's shape, the block checksums of every
 * table the file lists (version 2), then each rank reads its rows; the
 * digest of every /state entry in the file, and each requested state entry
 * (must exist with the given type and count; ranges). info may be NULL
 * (else free info->config_ini and info->fingerprint). fault sees
 * SR_FAULT_CKPT_READ before the rows are read. Errors are agreed. */
sr_status sr_ckpt_load(const sr_comm *c, const char *path, sr_ckpt_table *tables, int ntables, sr_ckpt_state *state,
                       int nstate, sr_ckpt_info *info, sr_fault *fault, sr_error *err);

/* Collective: sr_ckpt_load with nothing requested (version 2 only): the
 * same in-file checks a load runs, without a trainer. The whole-file digest
 * is ckpt_dir.h's (sr_ckpt_dir_verify runs both). info as in sr_ckpt_load. */
sr_status sr_ckpt_verify(const sr_comm *c, const char *path, sr_ckpt_info *info, sr_error *err);

/* Collective: format, version and the root attributes only (no digests):
 * cheap, for deciding about a file before loading it. Free as above. */
sr_status sr_ckpt_read_info(const sr_comm *c, const char *path, sr_ckpt_info *info, sr_error *err);

/* Free what a read put in info (config_ini, fingerprint). */
void sr_ckpt_info_free(sr_ckpt_info *info);

/* Compatibility (train.c, tests): sr_ckpt_save into "<path>.tmp", agree,
 * rank 0 renames it to path; no state. */
sr_status sr_ckpt_write(const sr_comm *c, const char *path, const sr_ckpt_info *info,
                        const sr_ckpt_table *tables, int ntables, sr_error *err);

/* Compatibility: sr_ckpt_load without state or fault. */
sr_status sr_ckpt_read(const sr_comm *c, const char *path, sr_ckpt_table *tables, int ntables,
                       sr_ckpt_info *info, sr_error *err);

#endif
