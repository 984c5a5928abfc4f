/* dataset.h: the HDF5 dataset format (schema v1, docs/dataset-format.md).
 *
 * Layout of a dataset file:
 *   /                       attributes: softrec_format = "softrec-dataset",
 *                           format_version = 1, name, source, source_sha256,
 *                           split_protocol, split_seed, created_by,
 *                           num_users, num_items
 *   /train, /valid, /test   one group per split, each a CSR matrix over users:
 *       indptr  int64 [num_users + 1]  (0-based, non-decreasing, indptr[0] = 0)
 *       items   int32 [nnz] (int64 when num_items > INT32_MAX), ids in [0, num_items)
 *       time    int64 [nnz] optional (present in all splits or none)
 *   /item_popularity        int64 [num_items]: train interactions per item
 *   /user_ids, /item_ids    int64: the original id of each dense id (optional)
 *   /map/user_ids, /map/item_ids  strings: the original id of each dense id,
 *                           when the input's ids were not all integers (optional)
 *
 * Reading is parallel: every rank opens the file collectively and reads only
 * the user range it owns (hyperslabs of indptr, then of items). The reader
 * validates the schema (objects, types, shapes, monotone indptr, id ranges)
 * before trusting any bulk read, and reports the file, the HDF5 object and
 * the problem. Writing is done by one process, streaming blocks of users, into
 * "<path>.tmp.<pid>" that is renamed to <path> only on commit.
 */
#ifndef SR_IO_DATASET_H
#define SR_IO_DATASET_H

#include <stdint.h>

#include "comm/comm.h"
#include "core/csr.h"
#include "core/error.h"
#include "core/mem.h"

#define SR_DATASET_FORMAT "softrec-dataset"
#define SR_DATASET_VERSION 1


typedef struct sr_dataset_meta {
    int64_t num_users;
    int64_t num_items;
    int64_t nnz[SR_SPLIT_COUNT];
    int format_version;
    int has_time;
    int64_t split_seed;
    char name[128];
    char source[512];
    char source_sha256[72];
    char split_protocol[128];
    char created_by[128];
    /* Added: "sha256  path" lines, one per input file (sha256sum -c format);
     * empty when the file has no source_files attribute. */
    char source_files[1024];
    int has_id_maps; /* Added: /user_ids and /item_ids are present */
    /* What was trained on, independent of how it was made: SHA-256 over the
     * CSR arrays (sr_dataset_content_hex; docs/dataset-format.md). From the
     * content_sha256 attribute the writer stores; for a file without one it
     * is computed at open (one pass over the arrays on rank 0) and
     * content_computed is set. */
    char content_sha256[72];
    int content_computed;
} sr_dataset_meta;


/* Contiguous user block of rank r out of p, balanced by user count. */
void sr_dataset_user_range(int64_t num_users, int p, int r, int64_t *u0, int64_t *u1);

/* The content digest from its parts: hex digests of each split's indptr,
 * items and (has_time) time arrays, each over the values as int64
 * little-endian, [split][0 indptr, 1 items, 2 time]. */
void sr_dataset_content_hex(int64_t num_users, int64_t num_items, int has_time,
                            const char part[SR_SPLIT_COUNT][3][65], char out[65]);

/* ---- reading (collective over c) ---------------------------------------- */
typedef struct sr_dataset sr_dataset;

/* Open and validate the schema (cheap checks: attributes, objects, types,
 * shapes, indptr monotone and consistent). Errors are agreed across ranks. */
sr_status sr_dataset_open(sr_dataset **out, const sr_comm *c, const char *path, sr_error *err);
const sr_dataset_meta *sr_dataset_meta_get(const sr_dataset *ds);
/* Read rows [u0, u1) of a split; item ids are checked to be in range. Each
 * rank may pass its own range (including an empty one). Collective. */
sr_status sr_dataset_read_split(sr_dataset *ds, sr_split split, int64_t u0, int64_t u1, sr_csr *out,
                                sr_mem *mem, sr_error *err);
/* Popularity of items [i0, i1). Collective. */
sr_status sr_dataset_read_popularity(sr_dataset *ds, int64_t i0, int64_t i1, int64_t *out,
                                     sr_error *err);
void sr_dataset_close(sr_dataset **ds);
/* Added: original ids of dense ids [i0, i1) from /item_ids (items != 0) or
 * /user_ids. SR_ERR_DATA when the file has no id maps. Collective. */
sr_status sr_dataset_read_id_map(sr_dataset *ds, int items, int64_t i0, int64_t i1, int64_t *out, sr_error *err);

/* Added: the original id of each dense id as text, whatever the file holds:
 * /map/item_ids or /map/user_ids (strings of any HDF5 writer), else the
 * int64 /item_ids or /user_ids in decimal, else the dense id itself (a file
 * without maps, e.g. synthetic). name[k] is the name of dense id i0 + k.
 * Collective; each rank may pass its own range. Free with
 * sr_dataset_names_free (also safe after a failure). */
typedef struct sr_dataset_names {
    int64_t n;
    char **name;  /* n pointers into block */
    char *block;
} sr_dataset_names;
sr_status sr_dataset_read_id_names(sr_dataset *ds, int items, int64_t i0, int64_t i1, sr_dataset_names *out,
                                   sr_error *err);
void sr_dataset_names_free(sr_dataset_names *n);

/* ---- writing (one process, streaming) ----------------------------------- */
typedef struct sr_dataset_attrs {
    const char *name;
    const char *source;         /* input path(s) or "synthetic" */
    const char *source_sha256;  /* of the input file(s), "" if none */
    const char *split_protocol; /* e.g. "given", "random 80/10/10", "leave-last-out" */
    int64_t split_seed;
    int has_time;               /* time arrays are passed to append */
    /* Added (optional, NULL = none): "sha256  path" lines, one per input
     * file, stored as the source_files attribute. */
    const char *source_files;
} sr_dataset_attrs;

typedef struct sr_dataset_writer sr_dataset_writer;

sr_status sr_dataset_writer_create(sr_dataset_writer **out, const char *path, int64_t num_users,
                                   int64_t num_items, const sr_dataset_attrs *attrs, sr_error *err);
/* Append the next n_users users (in dense id order) for all three splits:
 * indptr[s] has n_users + 1 entries starting at 0, items[s] / time[s] hold
 * indptr[s][n_users] entries (time may be NULL when has_time is 0). */
sr_status sr_dataset_writer_append(sr_dataset_writer *w, int64_t n_users,
                                   const int64_t *const indptr[SR_SPLIT_COUNT],
                                   const int64_t *const items[SR_SPLIT_COUNT],
                                   const int64_t *const time[SR_SPLIT_COUNT], sr_error *err);
/* Optional: original ids (num_users / num_items entries). */
sr_status sr_dataset_writer_set_id_maps(sr_dataset_writer *w, const int64_t *user_ids,
                                        const int64_t *item_ids, sr_error *err);
/* Added, optional: original ids as text (num_users / num_items entries;
 * either may be NULL), stored as variable-length strings in /map/user_ids
 * and /map/item_ids. Once per writer. */
sr_status sr_dataset_writer_set_id_names(sr_dataset_writer *w, const char *const *user_names,
                                         const char *const *item_names, sr_error *err);
/* Check that every user was appended, write popularity (computed from the
 * appended train items) and the content_sha256 attribute (hashed while
 * appending), close and rename into place. Commit does not free
 * w: call sr_dataset_writer_abort(&w) afterwards in every case (after a
 * successful commit it only frees; after a failed one it also deletes the
 * temporary file). */
sr_status sr_dataset_writer_commit(sr_dataset_writer *w, sr_error *err);
/* Discard: close and delete the temporary file (safe after any failure). */
void sr_dataset_writer_abort(sr_dataset_writer **w);

/* Added: cheap pre-flight for an output path, so a long conversion fails
 * before it starts: the directory must exist and be writable, and an
 * existing file is an error unless overwrite != 0. Local (no MPI). */
sr_status sr_dataset_check_output(const char *path, int overwrite, sr_error *err);

#endif
