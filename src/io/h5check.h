/* h5check.h: schema checks for untrusted HDF5 files, before any bulk read.
 *
 * Contract
 *  - sr_h5check_scan walks every link of the file (bounded count) and
 *    rejects what lets a crafted file reach outside itself or run code:
 *    external, soft and user-defined links, datasets with external storage,
 *    virtual datasets, and filters outside the allow-list (deflate, shuffle,
 *    fletcher32; anything else may need a plugin, i.e. native code).
 *  - sr_h5check_object checks one dataset against a spec: present (when
 *    required), a hard-linked dataset, dtype class and size, rank, shape.
 *    Metadata only.
 *  - Where a dataset holds indices (id_bound >= 0) sr_h5check_ids reads
 *    elements [lo, hi) in chunks of SR_H5CHECK_CHUNK (bounded memory, any
 *    file size) and checks 0 <= v < id_bound.
 *  - sr_h5check_run does all three collectively: metadata checks on every
 *    rank (same file, same verdict), index ranges split in rank order, then
 *    sr_comm_agree, so every rank returns the same error: the lowest failing
 *    rank's, which for index ranges is the first bad position of the file,
 *    at any rank count. c == NULL runs serially (fuzzing, tools).
 *  - Errors are SR_ERR_DATA and read "<file>: <object>: <problem>", with the
 *    same wording as the dataset reader (tests compare exact text).
 */
#ifndef SR_IO_H5CHECK_H
#define SR_IO_H5CHECK_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "comm/comm.h"
#include "core/error.h"

#define SR_H5CHECK_CHUNK ((int64_t)1 << 16) /* elements per index-range read */
#define SR_H5CHECK_MAX_LINKS 100000         /* more links than this: rejected */

typedef enum sr_h5_class {
    SR_H5_ANY = 0,
    SR_H5_INTEGER,
    SR_H5_FLOAT,
    SR_H5_STRING
} sr_h5_class;

typedef struct sr_h5check_obj {
    const char *path;        /* absolute path of a dataset, e.g. "/train/items" */
    int required;            /* missing = error (else: skipped) */
    sr_h5_class cls;         /* expected dtype class */
    size_t size_min, size_max; /* dtype size in bytes (0 = any) */
    int ndims;               /* expected rank (-1 = any; at most 2 otherwise) */
    int64_t dims[2];         /* expected extent per dimension (-1 = any) */
    int64_t id_bound;        /* >= 0: 1-D indices in [0, id_bound); -1: not indices */
    const char *id_what;     /* noun for range errors, e.g. "item id" */
} sr_h5check_obj;

/* Whole-file structural scan (see above). path is only for messages. */
/* "int64", "float32", "string", ...: an HDF5 type as messages name it. */
void sr_h5_dtype_name(hid_t t, char *buf, size_t n);

sr_status sr_h5check_scan(hid_t file, const char *path, sr_error *err);

/* One dataset against its spec; *exists tells whether it is present. */
sr_status sr_h5check_object(hid_t file, const char *path, const sr_h5check_obj *o, int *exists, sr_error *err);

/* Index range of elements [lo, hi) of a 1-D integer dataset. dxpl may be
 * H5P_DEFAULT. Not collective (independent reads). */
sr_status sr_h5check_ids(hid_t file, hid_t dxpl, const char *path, const sr_h5check_obj *o, int64_t lo,
                         int64_t hi, sr_error *err);

/* Collective (c != NULL) or serial (c == NULL): scan, every object, index
 * ranges; agreed across ranks. */
sr_status sr_h5check_run(const sr_comm *c, hid_t file, const char *path, const sr_h5check_obj *objs, int n,
                         sr_error *err);

/* The optional renumbering maps /map/user_orig_id [num_users] and
 * /map/item_orig_id [num_items] ("data reorder", io/reorder.h): both or
 * neither, 1-D integer, and each a permutation of 0..n-1 (read in chunks,
 * n bits of memory). Serial; every rank gets the same verdict. */
sr_status sr_h5check_id_maps(hid_t file, const char *path, int64_t num_users, int64_t num_items, sr_error *err);

/* Serial convenience for tools and the fuzzer: open path read-only with the
 * default (POSIX) driver, sr_h5check_run(NULL, ...), close. */
sr_status sr_h5check_path(const char *path, const sr_h5check_obj *objs, int n, sr_error *err);

#endif
