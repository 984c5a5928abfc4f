/* checkpoint.h: model files in global id order (DESIGN.md section 4).
 *
 * A checkpoint is one HDF5 file, layout-independent: each table is stored
 * whole (global rows x d float32) in global id order, whatever the rank count
 * and shard layout that wrote it, so it reloads at any rank count and outside
 * tools (h5py, another trainer) can read it or hand softrec starting weights
 * (train.init). Root attributes: softrec_format = "softrec-checkpoint",
 * format_version, step, epoch, num_users, num_items, dim, dataset,
 * dataset_sha256, config (the resolved config as INI text).
 *
 * Writing is collective: every rank writes its rows into "<path>.tmp" with
 * MPI-IO, the file is flushed and closed, ranks agree that all succeeded, and
 * rank 0 renames it into place, so a reader never sees a half-written file.
 */
#ifndef SR_IO_CHECKPOINT_H
#define SR_IO_CHECKPOINT_H

#include <stdint.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "core/error.h"

#define SR_CKPT_FORMAT "softrec-checkpoint"
#define SR_CKPT_VERSION 1

/* One table's local part. Global row of local row k: sr_shard_global(map,
 * rank, k) when map is set, else first_global + k. */
typedef struct sr_ckpt_table {
    const char *name;     /* HDF5 path, e.g. "/model/item_embedding" */
    float *data;          /* local_rows x d */
    int64_t local_rows;
    int64_t global_rows;
    int64_t d;
    const sr_shard *map;
    int64_t first_global;
} sr_ckpt_table;

typedef struct sr_ckpt_info {
    int64_t step, epoch;
    int64_t num_users, num_items, dim;
    char dataset[1024];
    char dataset_sha256[72];
    char *config_ini; /* write: the text; read: malloc'ed, caller frees */
} sr_ckpt_info;

/* Collective write with the commit protocol above. */
sr_status sr_ckpt_write(const sr_comm *c, const char *path, const sr_ckpt_info *info,
                        const sr_ckpt_table *tables, int ntables, sr_error *err);

/* Collective read: validates format, version and every table's shape
 * (global_rows x d must match), then each rank reads its rows. info may be
 * NULL. Errors are agreed across ranks. */
sr_status sr_ckpt_read(const sr_comm *c, const char *path, sr_ckpt_table *tables, int ntables,
                       sr_ckpt_info *info, sr_error *err);

#endif
