/* dataset.c: schema v1 reader (parallel, validating) and writer (one process,
 * streaming, atomic commit). See dataset.h for the contract and
 * docs/dataset-format.md for the format.
 *
 * Error messages always start with the file path as the caller gave it, then
 * the HDF5 object, then the problem, so one line tells the user what to fix.
 * HDF5's own error stack printing is switched off; where HDF5 knows the
 * reason (e.g. "truncated file") its innermost message is quoted.
 */
#include "io/dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comm/collectives.h"
#include "io/h5check.h"
#include "io/h5util.h"
#include "io/sha256.h"

#ifndef H5_HAVE_PARALLEL
#error "softrec needs parallel HDF5 (libhdf5-openmpi-dev)"
#endif

#define SR_PATH_MAX 1024
/* Chunk length (elements) of the extendible arrays: large enough for fast
 * sequential reads, small enough that tiny test files stay tiny. */
#define SR_CHUNK (1 << 15)


void sr_dataset_user_range(int64_t num_users, int p, int r, int64_t *u0, int64_t *u1)
{
    int64_t base = num_users / p, rem = num_users % p;
    int64_t lo = (int64_t)r * base + (r < rem ? r : rem);
    *u0 = lo;
    *u1 = lo + base + (r < rem ? 1 : 0);
}

/* ---- HDF5 helpers --------------------------------------------------------- */

static void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* Innermost HDF5 error description (the root cause) as one line, then clear the stack. */
static const char *h5_reason(char buf[256]) { return sr_h5_reason(buf, 256); }

static void h5_close_id(hid_t *id)
{
    if (*id < 0) return;
    switch (H5Iget_type(*id)) {
    case H5I_FILE: H5Fclose(*id); break;
    case H5I_GROUP: H5Gclose(*id); break;
    case H5I_DATASET: H5Dclose(*id); break;
    case H5I_DATASPACE: H5Sclose(*id); break;
    case H5I_DATATYPE: H5Tclose(*id); break;
    case H5I_ATTR: H5Aclose(*id); break;
    case H5I_GENPROP_LST: H5Pclose(*id); break;
    default: break;
    }
    *id = H5I_INVALID_HID;
}

/* ---- reader --------------------------------------------------------------- */

struct sr_dataset {
    const sr_comm *c;
    char path[SR_PATH_MAX];
    hid_t file, dxpl;
    hid_t indptr[SR_SPLIT_COUNT], items[SR_SPLIT_COUNT], time[SR_SPLIT_COUNT];
    hid_t pop;
    hid_t ids[2]; /* /user_ids, /item_ids (or invalid) */
    hid_t names[2]; /* /map/user_ids, /map/item_ids: string ids (or invalid) */
    sr_dataset_meta meta;
};

const sr_dataset_meta *sr_dataset_meta_get(const sr_dataset *ds) { return &ds->meta; }

void sr_dataset_close(sr_dataset **pds)
{
    if (!pds || !*pds) return;
    sr_dataset *ds = *pds;
    for (int s = 0; s < SR_SPLIT_COUNT; s++) {
        h5_close_id(&ds->indptr[s]);
        h5_close_id(&ds->items[s]);
        h5_close_id(&ds->time[s]);
    }
    h5_close_id(&ds->pop);
    h5_close_id(&ds->ids[0]);
    h5_close_id(&ds->ids[1]);
    h5_close_id(&ds->names[0]);
    h5_close_id(&ds->names[1]);
    h5_close_id(&ds->dxpl);
    h5_close_id(&ds->file);
    H5Eclear2(H5E_DEFAULT);
    free(ds);
    *pds = NULL;
}

/* Stage 1, local: does the path exist and look like HDF5? */
static sr_status probe_file(const char *path, sr_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        SR_FAIL(err, SR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) SR_FAIL(err, SR_ERR_IO, "%s: cannot open: is a directory", path);
    if (access(path, R_OK) != 0) SR_FAIL(err, SR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (st.st_size == 0) SR_FAIL(err, SR_ERR_DATA, "%s: not an HDF5 file (empty file)", path);
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) {
        H5Eclear2(H5E_DEFAULT);
        SR_FAIL(err, SR_ERR_DATA, "%s: not an HDF5 file (no HDF5 signature)", path);
    }
    return SR_OK;
}

/* A link must exist, be a hard link (no external files) and, for datasets,
 * keep its raw data inside this file. Returns 0 if absent (not an error). */
static sr_status check_link(const sr_dataset *ds, hid_t loc, const char *obj, const char *kind,
                            int *exists, sr_error *err)
{
    *exists = 0;
    htri_t ex = H5Lexists(loc, obj, H5P_DEFAULT);
    if (ex < 0) {
        H5Eclear2(H5E_DEFAULT);
        return SR_OK; /* a parent is missing: caller reports the parent */
    }
    if (ex == 0) return SR_OK;
    H5L_info_t li;
    if (H5Lget_info(loc, obj, &li, H5P_DEFAULT) < 0) {
        char r[256];
        SR_FAIL(err, SR_ERR_DATA, "%s: %s: cannot inspect link (%s)", ds->path, obj, h5_reason(r));
    }
    if (li.type == H5L_TYPE_EXTERNAL)
        SR_FAIL(err, SR_ERR_DATA, "%s: %s: is an external link to another file, not allowed", ds->path, obj);
    if (li.type != H5L_TYPE_HARD)
        SR_FAIL(err, SR_ERR_DATA, "%s: %s: is a soft or user-defined link, expected a %s", ds->path, obj, kind);
    *exists = 1;
    return SR_OK;
}

/* Open a 1-D integer dataset and check its length (want < 0: any). */
static sr_status open_int_dataset(const sr_dataset *ds, const char *obj, int required, int64_t want,
                                  const char *want_what, hid_t *out, int64_t *len, sr_error *err)
{
    int exists = 0;
    *out = H5I_INVALID_HID;
    SR_TRY(check_link(ds, ds->file, obj, "dataset", &exists, err));
    if (!exists) {
        if (required) SR_FAIL(err, SR_ERR_DATA, "%s: missing dataset %s", ds->path, obj);
        return SR_OK;
    }
    H5O_info_t oi;
    if (H5Oget_info_by_name2(ds->file, obj, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET) {
        H5Eclear2(H5E_DEFAULT);
        SR_FAIL(err, SR_ERR_DATA, "%s: %s: is not a dataset", ds->path, obj);
    }
    hid_t d = H5Dopen2(ds->file, obj, H5P_DEFAULT);
    if (d < 0) {
        char r[256];
        SR_FAIL(err, SR_ERR_DATA, "%s: %s: cannot open dataset (%s)", ds->path, obj, h5_reason(r));
    }
    sr_status st = SR_OK;
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d), dcpl = H5Dget_create_plist(d);
    char tn[32];
    if (t < 0 || sp < 0 || dcpl < 0) {
        char r[256];
        st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: cannot read its metadata (%s)",
                          ds->path, obj, h5_reason(r));
    } else if (H5Pget_external_count(dcpl) > 0) {
        st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                          "%s: %s: uses external storage (raw data in another file), not allowed", ds->path, obj);
    } else if (H5Pget_layout(dcpl) == H5D_VIRTUAL) {
        st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                          "%s: %s: is a virtual dataset (data in other files), not allowed", ds->path, obj);
    } else if (H5Tget_class(t) != H5T_INTEGER) {
        sr_h5_dtype_name(t, tn, sizeof tn);
        st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: dtype %s, expected an integer type",
                          ds->path, obj, tn);
    } else {
        int nd = H5Sget_simple_extent_ndims(sp);
        hsize_t dims[H5S_MAX_RANK];
        if (nd != 1) {
            st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: has %d dimensions, expected 1-D",
                              ds->path, obj, nd);
        } else {
            H5Sget_simple_extent_dims(sp, dims, NULL);
            *len = (int64_t)dims[0];
            if (want >= 0 && *len != want)
                st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                                  "%s: %s: shape [%lld], expected [%lld] (%s)", ds->path, obj,
                                  (long long)*len, (long long)want, want_what);
        }
    }
    h5_close_id(&t);
    h5_close_id(&sp);
    h5_close_id(&dcpl);
    if (st != SR_OK) {
        H5Dclose(d);
        return st;
    }
    *out = d;
    return SR_OK;
}

/* Scalar (or 1-element) attribute of the root group. */
static sr_status attr_open(const sr_dataset *ds, const char *name, int required, hid_t *out, sr_error *err)
{
    *out = H5I_INVALID_HID;
    htri_t ex = H5Aexists(ds->file, name);
    if (ex < 0) {
        char r[256];
        SR_FAIL(err, SR_ERR_DATA, "%s: cannot read attribute %s (%s)", ds->path, name, h5_reason(r));
    }
    if (ex == 0) {
        if (required) SR_FAIL(err, SR_ERR_DATA, "%s: missing attribute %s on /", ds->path, name);
        return SR_OK;
    }
    hid_t a = H5Aopen(ds->file, name, H5P_DEFAULT);
    hid_t sp = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
    if (a < 0 || sp < 0) {
        char r[256];
        h5_close_id(&a);
        SR_FAIL(err, SR_ERR_DATA, "%s: cannot read attribute %s (%s)", ds->path, name, h5_reason(r));
    }
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    if (np != 1) {
        H5Aclose(a);
        SR_FAIL(err, SR_ERR_DATA, "%s: attribute %s has %lld values, expected one", ds->path, name,
                (long long)np);
    }
    *out = a;
    return SR_OK;
}

static sr_status attr_int(const sr_dataset *ds, const char *name, int required, int64_t *val, sr_error *err)
{
    hid_t a;
    SR_TRY(attr_open(ds, name, required, &a, err));
    if (a < 0) return SR_OK;
    hid_t t = H5Aget_type(a);
    char tn[32];
    sr_status st = SR_OK;
    if (H5Tget_class(t) != H5T_INTEGER) {
        sr_h5_dtype_name(t, tn, sizeof tn);
        st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: attribute %s: dtype %s, expected an integer",
                          ds->path, name, tn);
    } else if (H5Aread(a, H5T_NATIVE_INT64, val) < 0) {
        char r[256];
        st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: attribute %s: cannot read (%s)", ds->path,
                          name, h5_reason(r));
    }
    H5Tclose(t);
    H5Aclose(a);
    return st;
}

/* String attribute of any writer (h5util.h) into buf, truncated to fit. */
static sr_status attr_string(const sr_dataset *ds, const char *name, int required, char *buf, size_t n,
                             sr_error *err)
{
    hid_t a;
    buf[0] = '\0';
    SR_TRY(attr_open(ds, name, required, &a, err));
    if (a < 0) return SR_OK;
    hid_t t = H5Aget_type(a);
    sr_status st = SR_OK;
    char tn[32], *s = NULL;
    int rc = 0;
    if (H5Tget_class(t) != H5T_STRING) {
        sr_h5_dtype_name(t, tn, sizeof tn);
        st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: attribute %s: dtype %s, expected a string",
                          ds->path, name, tn);
    } else if ((rc = sr_h5_attr_read_text(a, &s)) == SR_H5_NOMEM) {
        st = sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "%s: attribute %s: allocating its text: out of memory",
                          ds->path, name);
    } else if (rc < 0) {
        char r[256];
        st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: attribute %s: cannot read (%s)",
                          ds->path, name, h5_reason(r));
    } else {
        snprintf(buf, n, "%s", s);
    }
    free(s);
    H5Tclose(t);
    H5Aclose(a);
    return st;
}

/* Stage 3: attributes, objects, dtypes, shapes. Metadata only, identical on
 * every rank, so every rank reaches the same verdict. */
static sr_status check_schema(sr_dataset *ds, sr_error *err)
{
    sr_dataset_meta *m = &ds->meta;
    char fmt[128];
    htri_t ex = H5Aexists(ds->file, "softrec_format");
    if (ex <= 0) {
        H5Eclear2(H5E_DEFAULT);
        SR_FAIL(err, SR_ERR_DATA, "%s: not a softrec dataset (attribute softrec_format missing)", ds->path);
    }
    SR_TRY(attr_string(ds, "softrec_format", 1, fmt, sizeof fmt, err));
    if (strcmp(fmt, SR_DATASET_FORMAT) != 0)
        SR_FAIL(err, SR_ERR_DATA, "%s: not a softrec dataset (softrec_format = '%s', expected '%s')", ds->path, fmt,
                SR_DATASET_FORMAT);
    int64_t v = 0;
    SR_TRY(attr_int(ds, "format_version", 1, &v, err));
    if (v != SR_DATASET_VERSION)
        SR_FAIL(err, SR_ERR_DATA, "%s: format_version %lld is not supported (this softrec reads %d)", ds->path,
                (long long)v, SR_DATASET_VERSION);
    m->format_version = (int)v;
    SR_TRY(attr_int(ds, "num_users", 1, &m->num_users, err));
    SR_TRY(attr_int(ds, "num_items", 1, &m->num_items, err));
    if (m->num_users < 0) SR_FAIL(err, SR_ERR_DATA, "%s: attribute num_users = %lld is negative", ds->path, (long long)m->num_users);
    if (m->num_items < 0) SR_FAIL(err, SR_ERR_DATA, "%s: attribute num_items = %lld is negative", ds->path, (long long)m->num_items);
    m->split_seed = -1;
    SR_TRY(attr_int(ds, "split_seed", 0, &m->split_seed, err));
    SR_TRY(attr_string(ds, "name", 0, m->name, sizeof m->name, err));
    SR_TRY(attr_string(ds, "source", 0, m->source, sizeof m->source, err));
    SR_TRY(attr_string(ds, "source_sha256", 0, m->source_sha256, sizeof m->source_sha256, err));
    SR_TRY(attr_string(ds, "source_files", 0, m->source_files, sizeof m->source_files, err));
    SR_TRY(attr_string(ds, "split_protocol", 0, m->split_protocol, sizeof m->split_protocol, err));
    SR_TRY(attr_string(ds, "created_by", 0, m->created_by, sizeof m->created_by, err));
    SR_TRY(attr_string(ds, "content_sha256", 0, m->content_sha256, sizeof m->content_sha256, err));
    if (m->content_sha256[0] && strspn(m->content_sha256, "0123456789abcdef") != 64)
        SR_FAIL(err, SR_ERR_DATA, "%s: attribute content_sha256: expected 64 lowercase hex digits", ds->path);

    int ntime = 0;
    for (int s = 0; s < SR_SPLIT_COUNT; s++) {
        char obj[64];
        int exists = 0;
        snprintf(obj, sizeof obj, "/%s", sr_split_name((sr_split)s));
        SR_TRY(check_link(ds, ds->file, obj, "group", &exists, err));
        if (!exists) SR_FAIL(err, SR_ERR_DATA, "%s: missing group %s", ds->path, obj);
        H5O_info_t oi;
        if (H5Oget_info_by_name2(ds->file, obj, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_GROUP) {
            H5Eclear2(H5E_DEFAULT);
            SR_FAIL(err, SR_ERR_DATA, "%s: %s: is not a group", ds->path, obj);
        }
        int64_t len = 0;
        snprintf(obj, sizeof obj, "/%s/indptr", sr_split_name((sr_split)s));
        SR_TRY(open_int_dataset(ds, obj, 1, m->num_users + 1, "num_users + 1", &ds->indptr[s], &len, err));
        snprintf(obj, sizeof obj, "/%s/items", sr_split_name((sr_split)s));
        SR_TRY(open_int_dataset(ds, obj, 1, -1, "", &ds->items[s], &m->nnz[s], err));
        snprintf(obj, sizeof obj, "/%s/time", sr_split_name((sr_split)s));
        SR_TRY(open_int_dataset(ds, obj, 0, m->nnz[s], "length of items", &ds->time[s], &len, err));
        if (ds->time[s] >= 0) ntime++;
    }
    if (ntime != 0 && ntime != SR_SPLIT_COUNT)
        SR_FAIL(err, SR_ERR_DATA, "%s: /*/time present in %d of 3 splits, expected all or none", ds->path, ntime);
    m->has_time = ntime == SR_SPLIT_COUNT;
    int64_t len = 0;
    SR_TRY(open_int_dataset(ds, "/item_popularity", 1, m->num_items, "num_items", &ds->pop, &len, err));
    SR_TRY(open_int_dataset(ds, "/user_ids", 0, m->num_users, "num_users", &ds->ids[0], &len, err));
    SR_TRY(open_int_dataset(ds, "/item_ids", 0, m->num_items, "num_items", &ds->ids[1], &len, err));
    m->has_id_maps = ds->ids[0] >= 0 && ds->ids[1] >= 0;
    return SR_OK;
}

/* Read elements [lo, hi) of a 1-D dataset into int64 memory. Every rank
 * calls it at the same points (an empty range selects none), so switching
 * the transfer mode to collective stays possible. */
static sr_status read_range(sr_dataset *ds, hid_t d, const char *obj, int64_t lo, int64_t hi, int64_t *out,
                            sr_error *err)
{
    hsize_t n = (hsize_t)(hi - lo), start = (hsize_t)lo, one = 1;
    hid_t fs = H5Dget_space(d);
    hid_t ms = H5Screate_simple(1, n ? &n : &one, NULL);
    herr_t rc = (fs < 0 || ms < 0) ? -1 : 0;
    if (rc >= 0) {
        if (n) {
            rc = H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &n, NULL);
        } else {
            rc = H5Sselect_none(fs);
            if (rc >= 0) rc = H5Sselect_none(ms);
        }
    }
    int64_t dummy;
    if (rc >= 0) rc = H5Dread(d, H5T_NATIVE_INT64, ms, fs, ds->dxpl, n ? out : &dummy);
    h5_close_id(&fs);
    h5_close_id(&ms);
    if (rc < 0) {
        char r[256];
        SR_FAIL(err, SR_ERR_DATA, "%s: %s: cannot read elements [%lld, %lld) (%s)", ds->path, obj, (long long)lo,
                (long long)hi, h5_reason(r));
    }
    return SR_OK;
}

/* Stage 4: each rank checks its slice of every indptr. Rank r checks the
 * pairs (i, i+1) for i in its user range, so every pair is checked exactly
 * once and the lowest failing rank holds the first bad user: the agreed
 * message is the same at any rank count. */
static sr_status check_indptr(sr_dataset *ds, sr_error *err)
{
    const sr_dataset_meta *m = &ds->meta;
    int64_t u0, u1;
    sr_dataset_user_range(m->num_users, ds->c->size, ds->c->rank, &u0, &u1);
    int64_t *buf = malloc((size_t)(u1 - u0 + 1) * sizeof *buf);
    if (!buf) SR_FAIL(err, SR_ERR_NOMEM, "%s: out of memory reading indptr", ds->path);
    sr_status first = SR_OK;
    for (int s = 0; s < SR_SPLIT_COUNT; s++) {
        char obj[64];
        snprintf(obj, sizeof obj, "/%s/indptr", sr_split_name((sr_split)s));
        /* Every rank reads (collective) even after an error, then agrees. */
        sr_status st = read_range(ds, ds->indptr[s], obj, u0, u1 + 1, buf, err);
        if (st != SR_OK || first != SR_OK) {
            if (first == SR_OK) first = st;
            continue;
        }
        if (u0 == 0 && buf[0] != 0) {
            first = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: indptr[0] = %lld, expected 0",
                                 ds->path, obj, (long long)buf[0]);
            continue;
        }
        for (int64_t i = 0; i < u1 - u0; i++) {
            if (buf[i + 1] < buf[i]) {
                first = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                                     "%s: %s: not monotone at user %lld (indptr %lld > %lld)", ds->path, obj,
                                     (long long)(u0 + i), (long long)buf[i], (long long)buf[i + 1]);
                break;
            }
        }
        if (first == SR_OK && u1 == m->num_users && buf[u1 - u0] != m->nnz[s])
            first = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                                 "%s: %s: last entry %lld != length of /%s/items (%lld)", ds->path, obj,
                                 (long long)buf[u1 - u0], sr_split_name((sr_split)s), (long long)m->nnz[s]);
    }
    free(buf);
    return first;
}

/* The string id maps, checked by h5check (string dtype, 1-D, length). */
static sr_status open_id_names(sr_dataset *ds, sr_error *err)
{
    static const char *const obj[2] = {"/map/user_ids", "/map/item_ids"};
    for (int k = 0; k < 2; k++) {
        if (H5Lexists(ds->file, "/map", H5P_DEFAULT) <= 0 || H5Lexists(ds->file, obj[k], H5P_DEFAULT) <= 0) {
            H5Eclear2(H5E_DEFAULT);
            continue;
        }
        ds->names[k] = H5Dopen2(ds->file, obj[k], H5P_DEFAULT);
        if (ds->names[k] < 0) {
            char r[256];
            SR_FAIL(err, SR_ERR_DATA, "%s: %s: cannot open dataset (%s)", ds->path, obj[k], h5_reason(r));
        }
    }
    return SR_OK;
}

void sr_dataset_content_hex(int64_t num_users, int64_t num_items, int has_time,
                            const char part[SR_SPLIT_COUNT][3][65], char out[65])
{
    static const char *const arr[3] = {"indptr", "items", "time"};
    sr_sha256 h;
    sr_sha256_init(&h);
    char line[160];
    int n = snprintf(line, sizeof line, "softrec-content 1\nnum_users %lld\nnum_items %lld\n", (long long)num_users,
                     (long long)num_items);
    sr_sha256_update(&h, line, (size_t)n);
    for (int s = 0; s < SR_SPLIT_COUNT; s++)
        for (int a = 0; a < (has_time ? 3 : 2); a++) {
            n = snprintf(line, sizeof line, "%s/%s %s\n", sr_split_name((sr_split)s), arr[a], part[s][a]);
            sr_sha256_update(&h, line, (size_t)n);
        }
    sr_sha256_hex(&h, out);
}

/* SHA-256 of elements [0, n) of a 1-D integer dataset as int64 values,
 * read in chunks. Rank 0 only (independent reads). */
static sr_status hash_array(sr_dataset *ds, hid_t d, const char *obj, int64_t n, int64_t *buf, char hex[65],
                            sr_error *err)
{
    sr_sha256 h;
    sr_sha256_init(&h);
    for (int64_t lo = 0; lo < n; lo += SR_H5CHECK_CHUNK) {
        int64_t hi = lo + SR_H5CHECK_CHUNK < n ? lo + SR_H5CHECK_CHUNK : n;
        SR_TRY(read_range(ds, d, obj, lo, hi, buf, err));
        sr_sha256_update(&h, buf, (size_t)(hi - lo) * sizeof *buf);
    }
    sr_sha256_hex(&h, hex);
    return SR_OK;
}

/* A file without content_sha256 (written before it existed, or by another
 * tool): the same digest the writer would have stored, computed on rank 0
 * and broadcast, so old files are told apart as well as new ones. */
static sr_status content_at_open(sr_dataset *ds, sr_error *err)
{
    sr_dataset_meta *m = &ds->meta;
    if (ds->c->rank == 0) {
        char part[SR_SPLIT_COUNT][3][65] = {{{0}}};
        int64_t *buf = malloc((size_t)SR_H5CHECK_CHUNK * sizeof *buf);
        if (!buf) sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "%s: out of memory", ds->path);
        for (int s = 0; buf && s < SR_SPLIT_COUNT && err->code == SR_OK; s++) {
            char obj[64];
            const char *sn = sr_split_name((sr_split)s);
            snprintf(obj, sizeof obj, "/%s/indptr", sn);
            if (hash_array(ds, ds->indptr[s], obj, m->num_users + 1, buf, part[s][0], err) != SR_OK) break;
            snprintf(obj, sizeof obj, "/%s/items", sn);
            if (hash_array(ds, ds->items[s], obj, m->nnz[s], buf, part[s][1], err) != SR_OK) break;
            snprintf(obj, sizeof obj, "/%s/time", sn);
            if (m->has_time) hash_array(ds, ds->time[s], obj, m->nnz[s], buf, part[s][2], err);
        }
        free(buf);
        if (err->code == SR_OK)
            sr_dataset_content_hex(m->num_users, m->num_items, m->has_time, (const char(*)[3][65])part,
                                   m->content_sha256);
    }
    SR_TRY(sr_comm_agree(ds->c, err));
    SR_TRY(sr_comm_bcast(ds->c, m->content_sha256, 65, MPI_CHAR, 0, err));
    m->content_computed = 1;
    return SR_OK;
}

sr_status sr_dataset_open(sr_dataset **out, const sr_comm *c, const char *path, sr_error *err)
{
    *out = NULL;
    h5_quiet();
    sr_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "%s: out of memory", path);
    if (sr_comm_agree(c, err) != SR_OK) {
        free(ds);
        return err->code;
    }
    ds->c = c;
    snprintf(ds->path, sizeof ds->path, "%s", path);
    ds->file = ds->dxpl = ds->pop = ds->ids[0] = ds->ids[1] = ds->names[0] = ds->names[1] = H5I_INVALID_HID;
    for (int s = 0; s < SR_SPLIT_COUNT; s++) ds->indptr[s] = ds->items[s] = ds->time[s] = H5I_INVALID_HID;

    sr_status st = probe_file(path, err);
    if (sr_comm_agree(c, err) != SR_OK) goto fail;

    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_mpio(fapl, c->comm, MPI_INFO_NULL) < 0) {
        char r[256];
        sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot set up MPI-IO access (%s)", path, h5_reason(r));
    } else {
        ds->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
        if (ds->file < 0) {
            char r[256];
            sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: cannot open as HDF5 (%s)", path, h5_reason(r));
        }
    }
    h5_close_id(&fapl);
    /* Independent transfers: with Open MPI 4.1's default ompio component,
     * collective reads where ranks' selections overlap (two ranks asking for
     * the same rows, or the shared indptr boundary element) returned zeros
     * for some elements (seen at 3 ranks; romio321 was correct). Each rank
     * reads one contiguous range, so independent reads lose nothing. The
     * read functions stay collective in the API (errors are agreed). */
    ds->dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (ds->dxpl < 0 || H5Pset_dxpl_mpio(ds->dxpl, H5FD_MPIO_INDEPENDENT) < 0)
        sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot set up MPI-IO transfers", path);
    if (sr_comm_agree(c, err) != SR_OK) goto fail;

    st = check_schema(ds, err);
    if (sr_comm_agree(c, err) != SR_OK) goto fail;

    /* Untrusted file: no links, storage or filters that reach outside it
     * anywhere in the file, dtypes and shapes of every object (h5check.h).
     * Item ids are range-checked where they are read (read_split), on
     * exactly the rows each rank uses; h5check can also check them here in
     * bounded chunks (id_bound = num_items) at the cost of one extra pass
     * over every split. */
    {
        const sr_dataset_meta *m = &ds->meta;
        sr_h5check_obj objs[14];
        int n = 0;
        for (int s = 0; s < SR_SPLIT_COUNT; s++) {
            static const char *const ip[] = {"/train/indptr", "/valid/indptr", "/test/indptr"};
            static const char *const it[] = {"/train/items", "/valid/items", "/test/items"};
            static const char *const tm[] = {"/train/time", "/valid/time", "/test/time"};
            objs[n++] = (sr_h5check_obj){ip[s], 1, SR_H5_INTEGER, 4, 8, 1, {m->num_users + 1, -1}, -1, NULL};
            objs[n++] = (sr_h5check_obj){it[s], 1, SR_H5_INTEGER, 4, 8, 1, {-1, -1}, -1, "item id"};
            objs[n++] = (sr_h5check_obj){tm[s], 0, SR_H5_INTEGER, 4, 8, 1, {m->nnz[s], -1}, -1, NULL};
        }
        objs[n++] = (sr_h5check_obj){"/item_popularity", 1, SR_H5_INTEGER, 4, 8, 1, {m->num_items, -1}, -1, NULL};
        objs[n++] = (sr_h5check_obj){"/user_ids", 0, SR_H5_INTEGER, 4, 8, 1, {m->num_users, -1}, -1, NULL};
        objs[n++] = (sr_h5check_obj){"/item_ids", 0, SR_H5_INTEGER, 4, 8, 1, {m->num_items, -1}, -1, NULL};
        objs[n++] = (sr_h5check_obj){"/map/user_ids", 0, SR_H5_STRING, 0, 0, 1, {m->num_users, -1}, -1, NULL};
        objs[n++] = (sr_h5check_obj){"/map/item_ids", 0, SR_H5_STRING, 0, 0, 1, {m->num_items, -1}, -1, NULL};
        st = sr_h5check_run(c, ds->file, path, objs, n, err);
        if (st == SR_OK) st = sr_h5check_id_maps(ds->file, path, m->num_users, m->num_items, err);
        if (st == SR_OK) st = open_id_names(ds, err);
    }
    if (sr_comm_agree(c, err) != SR_OK) goto fail;

    st = check_indptr(ds, err);
    if (sr_comm_agree(c, err) != SR_OK) goto fail;
    if (!ds->meta.content_sha256[0] && content_at_open(ds, err) != SR_OK) goto fail;
    (void)st;
    *out = ds;
    return SR_OK;
fail:
    sr_dataset_close(&ds);
    return err->code;
}

sr_status sr_dataset_read_split(sr_dataset *ds, sr_split split, int64_t u0, int64_t u1, sr_csr *out, sr_mem *mem,
                                sr_error *err)
{
    const sr_dataset_meta *m = &ds->meta;
    memset(out, 0, sizeof *out);
    out->u0 = u0;
    out->u1 = u1;
    char obj[64], iobj[64], tobj[64];
    snprintf(obj, sizeof obj, "/%s/indptr", sr_split_name(split));
    snprintf(iobj, sizeof iobj, "/%s/items", sr_split_name(split));
    snprintf(tobj, sizeof tobj, "/%s/time", sr_split_name(split));
    int bad_args = split < 0 || split >= SR_SPLIT_COUNT || u0 < 0 || u1 < u0 || u1 > m->num_users;
    if (bad_args)
        sr_error_set(err, SR_ERR_INTERNAL, __FILE__, __LINE__, "%s: read_split: bad user range [%lld, %lld) of %lld",
                     ds->path, (long long)u0, (long long)u1, (long long)m->num_users);
    if (sr_comm_agree(ds->c, err) != SR_OK) return err->code;

    sr_status st = SR_OK;
    out->indptr = sr_mem_alloc(mem, (size_t)(u1 - u0 + 1) * sizeof(int64_t), 0, "csr indptr", err);
    if (!out->indptr) st = SR_ERR_NOMEM;
    /* Collective calls happen unconditionally so no rank is left waiting; a
     * rank that already failed joins them with an empty selection. */
    int64_t tmp[1];
    sr_status rs = st == SR_OK ? read_range(ds, ds->indptr[split], obj, u0, u1 + 1, out->indptr, err)
                               : read_range(ds, ds->indptr[split], obj, 0, 0, tmp, err);
    if (st == SR_OK) st = rs;
    int64_t base = 0, nnz = 0;
    if (st == SR_OK) {
        base = out->indptr[0];
        nnz = out->indptr[u1 - u0] - base;
        for (int64_t i = 0; i <= u1 - u0; i++) out->indptr[i] -= base;
    }
    out->nnz = nnz;
    if (st == SR_OK) {
        out->items = sr_mem_alloc(mem, (size_t)nnz * sizeof(int64_t), 0, "csr items", err);
        if (!out->items) st = SR_ERR_NOMEM;
        if (m->has_time) {
            out->time = sr_mem_alloc(mem, (size_t)nnz * sizeof(int64_t), 0, "csr time", err);
            if (!out->time) st = SR_ERR_NOMEM;
        }
    }
    /* A rank that failed above reads nothing but still joins the collective. */
    int ok = st == SR_OK;
    int64_t lo = ok ? base : 0, hi = ok ? base + nnz : 0;
    rs = read_range(ds, ds->items[split], iobj, lo, hi, ok ? out->items : tmp, err);
    if (st == SR_OK) st = rs;
    if (m->has_time) {
        rs = read_range(ds, ds->time[split], tobj, lo, hi, ok ? out->time : tmp, err);
        if (st == SR_OK) st = rs;
    }
    if (st == SR_OK) {
        for (int64_t k = 0; k < nnz; k++) {
            int64_t it = out->items[k];
            if (it < 0 || it >= m->num_items) {
                st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                                  "%s: %s: item id %lld out of range [0, %lld) at position %lld", ds->path, iobj,
                                  (long long)it, (long long)m->num_items, (long long)(base + k));
                break;
            }
        }
    }
    if (sr_comm_agree(ds->c, err) != SR_OK) {
        sr_csr_free(out, mem);
        return err->code;
    }
    return SR_OK;
}

sr_status sr_dataset_read_popularity(sr_dataset *ds, int64_t i0, int64_t i1, int64_t *out, sr_error *err)
{
    const sr_dataset_meta *m = &ds->meta;
    if (i0 < 0 || i1 < i0 || i1 > m->num_items)
        sr_error_set(err, SR_ERR_INTERNAL, __FILE__, __LINE__, "%s: read_popularity: bad item range [%lld, %lld) of %lld",
                     ds->path, (long long)i0, (long long)i1, (long long)m->num_items);
    if (sr_comm_agree(ds->c, err) != SR_OK) return err->code;
    sr_status st = read_range(ds, ds->pop, "/item_popularity", i0, i1, out, err);
    for (int64_t i = 0; st == SR_OK && i < i1 - i0; i++) {
        if (out[i] < 0)
            st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: /item_popularity: negative count %lld at item %lld",
                              ds->path, (long long)out[i], (long long)(i0 + i));
    }
    return sr_comm_agree(ds->c, err);
}

sr_status sr_dataset_read_id_map(sr_dataset *ds, int items, int64_t i0, int64_t i1, int64_t *out, sr_error *err)
{
    const sr_dataset_meta *m = &ds->meta;
    int64_t n = items ? m->num_items : m->num_users;
    const char *obj = items ? "/item_ids" : "/user_ids";
    hid_t d = ds->ids[items ? 1 : 0];
    if (i0 < 0 || i1 < i0 || i1 > n)
        sr_error_set(err, SR_ERR_INTERNAL, __FILE__, __LINE__, "%s: read_id_map: bad range [%lld, %lld) of %lld",
                     ds->path, (long long)i0, (long long)i1, (long long)n);
    else if (d < 0)
        sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: missing dataset %s (no original id map)", ds->path, obj);
    if (sr_comm_agree(ds->c, err) != SR_OK) return err->code;
    read_range(ds, d, obj, i0, i1, out, err);
    return sr_comm_agree(ds->c, err);
}

void sr_dataset_names_free(sr_dataset_names *n)
{
    free(n->name);
    free(n->block);
    memset(n, 0, sizeof *n);
}

/* Decimal text of each integer: one block, like the string maps. */
static sr_status names_of_ints(const sr_dataset *ds, const int64_t *v, int64_t n, sr_dataset_names *out,
                               sr_error *err)
{
    out->n = n;
    out->name = malloc((size_t)(n ? n : 1) * sizeof *out->name);
    out->block = malloc((size_t)(n ? n : 1) * 21);
    if (!out->name || !out->block) {
        sr_dataset_names_free(out);
        SR_FAIL(err, SR_ERR_NOMEM, "%s: out of memory for %lld id names", ds->path, (long long)n);
    }
    for (int64_t k = 0; k < n; k++) {
        out->name[k] = out->block + k * 21;
        snprintf(out->name[k], 21, "%lld", (long long)v[k]);
    }
    return SR_OK;
}

sr_status sr_dataset_read_id_names(sr_dataset *ds, int items, int64_t i0, int64_t i1, sr_dataset_names *out,
                                   sr_error *err)
{
    const sr_dataset_meta *m = &ds->meta;
    int64_t n = items ? m->num_items : m->num_users;
    const char *obj = items ? "/map/item_ids" : "/map/user_ids";
    hid_t d = ds->names[items ? 1 : 0];
    memset(out, 0, sizeof *out);
    if (i0 < 0 || i1 < i0 || i1 > n)
        sr_error_set(err, SR_ERR_INTERNAL, __FILE__, __LINE__, "%s: read_id_names: bad range [%lld, %lld) of %lld",
                     ds->path, (long long)i0, (long long)i1, (long long)n);
    if (sr_comm_agree(ds->c, err) != SR_OK) return err->code;
    if (d >= 0) {
        sr_h5_texts t;
        int rc = sr_h5_read_texts(d, ds->dxpl, i0, i1 - i0, &t);
        if (rc == SR_H5_NOMEM) {
            sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__,
                         "%s: %s: allocating elements [%lld, %lld): out of memory", ds->path, obj, (long long)i0,
                         (long long)i1);
        } else if (rc < 0) {
            char r[256];
            sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: cannot read elements [%lld, %lld) (%s)",
                         ds->path, obj, (long long)i0, (long long)i1, h5_reason(r));
        } else {
            *out = (sr_dataset_names){.n = t.n, .name = t.text, .block = t.block};
        }
        return sr_comm_agree(ds->c, err);
    }
    /* No string map: the int64 map, else the dense id is the only name. */
    int64_t *v = malloc((size_t)(i1 - i0 + 1) * sizeof *v);
    sr_status st = v ? SR_OK : sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "%s: out of memory", ds->path);
    if (sr_comm_agree(ds->c, err) != SR_OK) {
        free(v);
        return err->code;
    }
    if (ds->ids[items ? 1 : 0] >= 0) {
        st = sr_dataset_read_id_map(ds, items, i0, i1, v, err);
    } else {
        for (int64_t k = i0; k < i1; k++) v[k - i0] = k;
    }
    if (st == SR_OK) names_of_ints(ds, v, i1 - i0, out, err);
    free(v);
    return sr_comm_agree(ds->c, err);
}

/* ---- writer --------------------------------------------------------------- */

struct sr_dataset_writer {
    char path[SR_PATH_MAX];
    char tmp[SR_PATH_MAX + 32];
    hid_t file;
    hid_t indptr[SR_SPLIT_COUNT], items[SR_SPLIT_COUNT], time[SR_SPLIT_COUNT];
    int64_t num_users, num_items, users_done;
    int64_t nnz[SR_SPLIT_COUNT];
    int64_t *pop; /* train interactions per item, num_items entries */
    int has_time;
    int ids_written;
    int names_written;
    int fd;              /* the temporary, held open: reservations, fsync, truncate */
    int64_t reserved;    /* bytes allocated to the temporary (posix_fallocate) */
    int64_t fixed_bytes; /* bound of what set_id_maps / set_id_names / commit add */
    int64_t attr_bytes;  /* text attributes */
    sr_sha256 content[SR_SPLIT_COUNT][3]; /* indptr, items, time of each split, as appended */
};

/* The content digest's parts (dataset.h) grow with every append. */
static void content_begin(sr_dataset_writer *w)
{
    const int64_t zero = 0; /* every split's indptr starts with 0 */
    for (int s = 0; s < SR_SPLIT_COUNT; s++) {
        for (int a = 0; a < 3; a++) sr_sha256_init(&w->content[s][a]);
        sr_sha256_update(&w->content[s][0], &zero, sizeof zero);
    }
}

static void content_add(sr_dataset_writer *w, int s, const int64_t *indptr, int64_t n_users, const int64_t *items,
                        const int64_t *time, int64_t nnz)
{
    sr_sha256_update(&w->content[s][0], indptr, (size_t)n_users * sizeof *indptr);
    sr_sha256_update(&w->content[s][1], items, (size_t)nnz * sizeof *items);
    if (w->has_time) sr_sha256_update(&w->content[s][2], time, (size_t)nnz * sizeof *time);
}

static sr_status content_write(sr_dataset_writer *w, sr_error *err);

/* Full disk: HDF5 meets ENOSPC only when it flushes (often in H5Fclose), and
 * a failed close leaves a half-destroyed file that crashes MPI_Finalize
 * (H5F__close_cb). So the writer keeps the temporary allocated ahead of
 * HDF5: before any HDF5 call that may add bytes, the file holds room for an
 * upper bound of its whole size, and a full disk is a plain error here,
 * while every later HDF5 write and the close still fit. The commit cuts the
 * file back to HDF5's end of allocation. */

/* Data bytes of a chunked 1-D dataset of len elements in chunks of up to
 * SR_CHUNK (a partial chunk is stored whole). */
static int64_t chunked_bytes(int64_t len, int64_t chunk, int64_t esize)
{
    if (chunk > SR_CHUNK) chunk = SR_CHUNK;
    return chunk > 0 ? (len + chunk - 1) / chunk * chunk * esize : 0;
}

/* HDF5's own bytes for a dataset of len elements: object header, B-tree
 * entries of its chunks. */
static int64_t meta_bytes(int64_t len) { return 8192 + (len + SR_CHUNK - 1) / SR_CHUNK * 96; }

/* Upper bound of the file's size once add_users more users and add_nnz[s]
 * more entries of each split are appended (fixed datasets: fixed_bytes).
 * The data is counted exactly, HDF5's metadata twice over (freed and
 * re-placed headers and B-tree nodes). */
static int64_t size_bound(const sr_dataset_writer *w, int64_t add_users, const int64_t add_nnz[SR_SPLIT_COUNT])
{
    int64_t isize = w->num_items > INT32_MAX ? 8 : 4;
    int64_t data = w->fixed_bytes, meta = ((int64_t)64 << 10) + w->attr_bytes;
    for (int s = 0; s < SR_SPLIT_COUNT; s++) {
        int64_t nnz = w->nnz[s] + (add_nnz ? add_nnz[s] : 0), rows = w->users_done + add_users + 1;
        data += chunked_bytes(rows, SR_CHUNK, 8) + chunked_bytes(nnz, SR_CHUNK, isize);
        meta += meta_bytes(rows) + meta_bytes(nnz) + 4096;
        if (w->has_time) data += chunked_bytes(nnz, SR_CHUNK, 8), meta += meta_bytes(nnz);
    }
    return data + 2 * meta;
}

/* Make sure the temporary holds bound bytes before HDF5 may write them. */
static sr_status reserve(sr_dataset_writer *w, int64_t bound, sr_error *err)
{
    if (bound <= w->reserved) return SR_OK;
    int e = posix_fallocate(w->fd, 0, (off_t)bound);
    if (e) SR_FAIL(err, SR_ERR_IO, "%s: cannot write: no room for %lld bytes in %s (%s)", w->path, (long long)bound,
                   w->tmp, strerror(e));
    w->reserved = bound;
    return SR_OK;
}

/* Bytes of a fixed-size int64 dataset of n elements (write_full: chunks
 * of min(n, SR_CHUNK)). */
static int64_t full_bytes(int64_t n) { return chunked_bytes(n, n, 8) + 2 * meta_bytes(n); }

sr_status sr_dataset_check_output(const char *path, int overwrite, sr_error *err)
{
    char dir[SR_PATH_MAX];
    if (!path || !*path) SR_FAIL(err, SR_ERR_USAGE, "no output path given");
    if (strlen(path) >= sizeof dir) SR_FAIL(err, SR_ERR_USAGE, "%s: output path too long", path);
    snprintf(dir, sizeof dir, "%s", path);
    const char *d = dirname(dir);
    struct stat st;
    if (stat(d, &st) != 0)
        SR_FAIL(err, SR_ERR_IO, "%s: cannot create: directory %s does not exist", path, d);
    if (!S_ISDIR(st.st_mode)) SR_FAIL(err, SR_ERR_IO, "%s: cannot create: %s is not a directory", path, d);
    if (access(d, W_OK) != 0)
        SR_FAIL(err, SR_ERR_IO, "%s: cannot create: directory %s is not writable (%s)", path, d, strerror(errno));
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) SR_FAIL(err, SR_ERR_IO, "%s: cannot create: is a directory", path);
        if (!overwrite)
            SR_FAIL(err, SR_ERR_IO, "%s: already exists (pass --force to replace it)", path);
    }
    return SR_OK;
}

static hid_t make_str_type(const char *s)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return t;
    size_t n = strlen(s);
    if (H5Tset_size(t, n ? n + 1 : 1) < 0 || H5Tset_strpad(t, H5T_STR_NULLTERM) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

static sr_status write_attr_str(sr_dataset_writer *w, const char *name, const char *val, sr_error *err)
{
    if (!val) val = "";
    hid_t t = make_str_type(val), sp = H5Screate(H5S_SCALAR);
    hid_t a = (t >= 0 && sp >= 0) ? H5Acreate2(w->file, name, t, sp, H5P_DEFAULT, H5P_DEFAULT) : H5I_INVALID_HID;
    herr_t rc = a >= 0 ? H5Awrite(a, t, val) : -1;
    h5_close_id(&a);
    h5_close_id(&sp);
    h5_close_id(&t);
    if (rc < 0) {
        char r[256];
        SR_FAIL(err, SR_ERR_IO, "%s: cannot write attribute %s (%s)", w->tmp, name, h5_reason(r));
    }
    return SR_OK;
}

static sr_status write_attr_int(sr_dataset_writer *w, const char *name, int64_t val, sr_error *err)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = sp >= 0 ? H5Acreate2(w->file, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT) : H5I_INVALID_HID;
    herr_t rc = a >= 0 ? H5Awrite(a, H5T_NATIVE_INT64, &val) : -1;
    h5_close_id(&a);
    h5_close_id(&sp);
    if (rc < 0) {
        char r[256];
        SR_FAIL(err, SR_ERR_IO, "%s: cannot write attribute %s (%s)", w->tmp, name, h5_reason(r));
    }
    return SR_OK;
}

/* Chunked 1-D dataset of initial length len, extendible when grow != 0. */
static sr_status create_1d(sr_dataset_writer *w, hid_t loc, const char *name, hid_t ftype, int64_t len, int grow,
                           hid_t *out, sr_error *err)
{
    hsize_t dim = (hsize_t)len, maxdim = grow ? H5S_UNLIMITED : (hsize_t)len;
    hsize_t chunk = SR_CHUNK;
    if (!grow && len > 0 && (hsize_t)len < chunk) chunk = (hsize_t)len;
    hid_t sp = H5Screate_simple(1, &dim, &maxdim);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    herr_t rc = (sp < 0 || dcpl < 0) ? -1 : 0;
    if (rc >= 0 && (grow || len > 0)) rc = H5Pset_chunk(dcpl, 1, &chunk);
    if (rc >= 0) {
        *out = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        if (*out < 0) rc = -1;
    }
    h5_close_id(&sp);
    h5_close_id(&dcpl);
    if (rc < 0) {
        char r[256];
        SR_FAIL(err, SR_ERR_IO, "%s: cannot create dataset %s (%s)", w->tmp, name, h5_reason(r));
    }
    return SR_OK;
}

/* Write n values at [off, off + n) of d, extending it first if needed. */
static sr_status write_at(sr_dataset_writer *w, hid_t d, const char *what, int64_t off, int64_t n,
                          const int64_t *vals, sr_error *err)
{
    if (n == 0) return SR_OK;
    hsize_t end = (hsize_t)(off + n), start = (hsize_t)off, cnt = (hsize_t)n;
    hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    herr_t rc = 0;
    hid_t cur = H5Dget_space(d);
    hsize_t curlen = 0;
    if (cur < 0) rc = -1;
    else H5Sget_simple_extent_dims(cur, &curlen, NULL);
    h5_close_id(&cur);
    if (rc >= 0 && end > curlen) rc = H5Dset_extent(d, &end);
    if (rc >= 0) {
        fs = H5Dget_space(d);
        ms = H5Screate_simple(1, &cnt, NULL);
        rc = (fs < 0 || ms < 0) ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &cnt, NULL);
    }
    if (rc >= 0) rc = H5Dwrite(d, H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, vals);
    h5_close_id(&fs);
    h5_close_id(&ms);
    if (rc < 0) {
        char r[256];
        SR_FAIL(err, SR_ERR_IO, "%s: cannot write %s (%s)", w->tmp, what, h5_reason(r));
    }
    return SR_OK;
}

static void writer_free(sr_dataset_writer *w)
{
    for (int s = 0; s < SR_SPLIT_COUNT; s++) {
        h5_close_id(&w->indptr[s]);
        h5_close_id(&w->items[s]);
        h5_close_id(&w->time[s]);
    }
    h5_close_id(&w->file);
    H5Eclear2(H5E_DEFAULT);
    if (w->fd >= 0) close(w->fd);
    free(w->pop);
    free(w);
}

sr_status sr_dataset_writer_create(sr_dataset_writer **out, const char *path, int64_t num_users, int64_t num_items,
                                   const sr_dataset_attrs *attrs, sr_error *err)
{
    *out = NULL;
    h5_quiet();
    if (num_users < 0 || num_items < 0)
        SR_FAIL(err, SR_ERR_INTERNAL, "%s: writer: negative size (%lld users, %lld items)", path,
                (long long)num_users, (long long)num_items);
    SR_TRY(sr_dataset_check_output(path, 1, err));
    sr_dataset_writer *w = calloc(1, sizeof *w);
    if (!w) SR_FAIL(err, SR_ERR_NOMEM, "%s: out of memory", path);
    w->file = H5I_INVALID_HID;
    w->fd = -1;
    for (int s = 0; s < SR_SPLIT_COUNT; s++) w->indptr[s] = w->items[s] = w->time[s] = H5I_INVALID_HID;
    snprintf(w->path, sizeof w->path, "%s", path);
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp.%ld", path, (long)getpid());
    w->num_users = num_users;
    w->num_items = num_items;
    w->has_time = attrs && attrs->has_time;
    if (attrs) {
        const char *t[] = {attrs->name, attrs->source, attrs->source_sha256, attrs->split_protocol,
                           attrs->source_files};
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) w->attr_bytes += (t[i] ? (int64_t)strlen(t[i]) : 0) + 256;
    }
    w->fixed_bytes = full_bytes(num_items) + 4096; /* /item_popularity, content_sha256 */
    content_begin(w);
    w->pop = calloc((size_t)(num_items ? num_items : 1), sizeof *w->pop);
    if (!w->pop) {
        free(w);
        SR_FAIL(err, SR_ERR_NOMEM, "%s: out of memory for popularity of %lld items", path, (long long)num_items);
    }
    /* O_EXCL: never write into a file someone else owns. */
    int fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        int e = errno;
        free(w->pop);
        free(w);
        char tmp[SR_PATH_MAX + 32];
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
        SR_FAIL(err, SR_ERR_IO, "%s: cannot create temporary file %s: %s", path, tmp, strerror(e));
    }
    w->fd = fd;
    /* Prove the room before H5Fcreate (whose truncation frees it), then
     * hold it again right after. */
    sr_status st = reserve(w, size_bound(w, 0, NULL), err);
    if (st != SR_OK) goto fail;
    w->reserved = 0;
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (w->file >= 0 && (st = reserve(w, size_bound(w, 0, NULL), err))) goto fail;
    if (w->file < 0) {
        char r[256];
        st = sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot create HDF5 file (%s)", w->tmp, h5_reason(r));
        goto fail;
    }
    const char *name = attrs && attrs->name ? attrs->name : "";
    if ((st = write_attr_str(w, "softrec_format", SR_DATASET_FORMAT, err)) ||
        (st = write_attr_int(w, "format_version", SR_DATASET_VERSION, err)) ||
        (st = write_attr_str(w, "name", name, err)) ||
        (st = write_attr_str(w, "source", attrs ? attrs->source : "", err)) ||
        (st = write_attr_str(w, "source_sha256", attrs ? attrs->source_sha256 : "", err)) ||
        (st = write_attr_str(w, "split_protocol", attrs ? attrs->split_protocol : "", err)) ||
        (st = write_attr_int(w, "split_seed", attrs ? attrs->split_seed : -1, err)) ||
        (st = write_attr_str(w, "created_by", "softrec " SOFTREC_VERSION, err)) ||
        (st = write_attr_int(w, "num_users", num_users, err)) ||
        (st = write_attr_int(w, "num_items", num_items, err)))
        goto fail;
    if (attrs && attrs->source_files && (st = write_attr_str(w, "source_files", attrs->source_files, err)))
        goto fail;
    hid_t item_type = num_items > INT32_MAX ? H5T_STD_I64LE : H5T_STD_I32LE;
    for (int s = 0; s < SR_SPLIT_COUNT; s++) {
        hid_t g = H5Gcreate2(w->file, sr_split_name((sr_split)s), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) {
            char r[256];
            st = sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot create group /%s (%s)", w->tmp,
                              sr_split_name((sr_split)s), h5_reason(r));
            goto fail;
        }
        st = create_1d(w, g, "indptr", H5T_STD_I64LE, 1, 1, &w->indptr[s], err);
        if (st == SR_OK) st = create_1d(w, g, "items", item_type, 0, 1, &w->items[s], err);
        if (st == SR_OK && w->has_time) st = create_1d(w, g, "time", H5T_STD_I64LE, 0, 1, &w->time[s], err);
        H5Gclose(g);
        if (st != SR_OK) goto fail;
        int64_t zero = 0;
        if ((st = write_at(w, w->indptr[s], "indptr", 0, 1, &zero, err))) goto fail;
    }
    *out = w;
    return SR_OK;
fail:
    unlink(w->tmp);
    writer_free(w);
    return st;
}

sr_status sr_dataset_writer_append(sr_dataset_writer *w, int64_t n_users, const int64_t *const indptr[SR_SPLIT_COUNT],
                                   const int64_t *const items[SR_SPLIT_COUNT],
                                   const int64_t *const time[SR_SPLIT_COUNT], sr_error *err)
{
    if (n_users < 0 || w->users_done + n_users > w->num_users)
        SR_FAIL(err, SR_ERR_INTERNAL, "%s: writer: appending %lld users after %lld exceeds num_users = %lld", w->path,
                (long long)n_users, (long long)w->users_done, (long long)w->num_users);
    if (n_users == 0) return SR_OK;
    /* Validate the whole block before writing any of it. */
    for (int s = 0; s < SR_SPLIT_COUNT; s++) {
        const int64_t *ip = indptr[s];
        if (ip[0] != 0)
            SR_FAIL(err, SR_ERR_INTERNAL, "%s: writer: /%s block indptr[0] = %lld, expected 0", w->path,
                    sr_split_name((sr_split)s), (long long)ip[0]);
        for (int64_t u = 0; u < n_users; u++)
            if (ip[u + 1] < ip[u])
                SR_FAIL(err, SR_ERR_INTERNAL, "%s: writer: /%s indptr not monotone at user %lld", w->path,
                        sr_split_name((sr_split)s), (long long)(w->users_done + u));
        for (int64_t k = 0; k < ip[n_users]; k++)
            if (items[s][k] < 0 || items[s][k] >= w->num_items)
                SR_FAIL(err, SR_ERR_INTERNAL, "%s: writer: /%s item id %lld out of range [0, %lld)", w->path,
                        sr_split_name((sr_split)s), (long long)items[s][k], (long long)w->num_items);
        if (w->has_time && (!time || !time[s]))
            SR_FAIL(err, SR_ERR_INTERNAL, "%s: writer: has_time is set but no time array for /%s", w->path,
                    sr_split_name((sr_split)s));
    }
    int64_t add[SR_SPLIT_COUNT];
    for (int s = 0; s < SR_SPLIT_COUNT; s++) add[s] = indptr[s][n_users];
    SR_TRY(reserve(w, size_bound(w, n_users, add), err));
    int64_t *buf = malloc((size_t)n_users * sizeof *buf);
    if (!buf) SR_FAIL(err, SR_ERR_NOMEM, "%s: writer: out of memory for a block of %lld users", w->path, (long long)n_users);
    sr_status st = SR_OK;
    for (int s = 0; s < SR_SPLIT_COUNT && st == SR_OK; s++) {
        int64_t nnz = indptr[s][n_users];
        /* Stored indptr is global: shift the block's by the rows so far. */
        for (int64_t u = 0; u < n_users; u++) buf[u] = indptr[s][u + 1] + w->nnz[s];
        st = write_at(w, w->indptr[s], "indptr", w->users_done + 1, n_users, buf, err);
        if (st == SR_OK) st = write_at(w, w->items[s], "items", w->nnz[s], nnz, items[s], err);
        if (st == SR_OK && w->has_time) st = write_at(w, w->time[s], "time", w->nnz[s], nnz, time[s], err);
        if (st == SR_OK) {
            content_add(w, s, buf, n_users, items[s], w->has_time ? time[s] : NULL, nnz);
            if (s == SR_SPLIT_TRAIN)
                for (int64_t k = 0; k < nnz; k++) w->pop[items[s][k]]++;
            w->nnz[s] += nnz;
        }
    }
    free(buf);
    if (st == SR_OK) w->users_done += n_users;
    return st;
}

static sr_status write_full(sr_dataset_writer *w, const char *name, int64_t n, const int64_t *vals, sr_error *err)
{
    hid_t d = H5I_INVALID_HID;
    SR_TRY(create_1d(w, w->file, name, H5T_STD_I64LE, n, 0, &d, err));
    sr_status st = write_at(w, d, name, 0, n, vals, err);
    H5Dclose(d);
    return st;
}

sr_status sr_dataset_writer_set_id_maps(sr_dataset_writer *w, const int64_t *user_ids, const int64_t *item_ids,
                                        sr_error *err)
{
    if (w->ids_written) SR_FAIL(err, SR_ERR_INTERNAL, "%s: writer: id maps set twice", w->path);
    w->ids_written = 1;
    w->fixed_bytes += (user_ids ? full_bytes(w->num_users) : 0) + (item_ids ? full_bytes(w->num_items) : 0);
    SR_TRY(reserve(w, size_bound(w, 0, NULL), err));
    if (user_ids) SR_TRY(write_full(w, "user_ids", w->num_users, user_ids, err));
    if (item_ids) SR_TRY(write_full(w, "item_ids", w->num_items, item_ids, err));
    return SR_OK;
}

sr_status sr_dataset_writer_set_id_names(sr_dataset_writer *w, const char *const *user_names,
                                         const char *const *item_names, sr_error *err)
{
    if (w->names_written) SR_FAIL(err, SR_ERR_INTERNAL, "%s: writer: id names set twice", w->path);
    w->names_written = 1;
    if (!user_names && !item_names) return SR_OK;
    /* Variable-length strings: a 16-byte reference each, the text and its
     * global heap entry. */
    int64_t text = 8192;
    for (int64_t u = 0; user_names && u < w->num_users; u++) text += (int64_t)strlen(user_names[u]) + 48;
    for (int64_t i = 0; item_names && i < w->num_items; i++) text += (int64_t)strlen(item_names[i]) + 48;
    w->fixed_bytes += text + text / 16;
    SR_TRY(reserve(w, size_bound(w, 0, NULL), err));
    hid_t g = H5Gcreate2(w->file, "map", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = g < 0 ? -1 : 0;
    const char *bad = "/map";
    if (rc == 0 && user_names && (rc = sr_h5_write_texts(g, "user_ids", user_names, w->num_users)) < 0)
        bad = "/map/user_ids";
    if (rc == 0 && item_names && (rc = sr_h5_write_texts(g, "item_ids", item_names, w->num_items)) < 0)
        bad = "/map/item_ids";
    h5_close_id(&g);
    if (rc < 0) {
        char r[256];
        SR_FAIL(err, SR_ERR_IO, "%s: cannot write %s (%s)", w->tmp, bad, h5_reason(r));
    }
    return SR_OK;
}

sr_status sr_dataset_writer_commit(sr_dataset_writer *w, sr_error *err)
{
    if (w->users_done != w->num_users)
        SR_FAIL(err, SR_ERR_INTERNAL, "%s: writer: commit after %lld of %lld users", w->path, (long long)w->users_done,
                (long long)w->num_users);
    SR_TRY(write_full(w, "item_popularity", w->num_items, w->pop, err));
    SR_TRY(content_write(w, err));
    for (int s = 0; s < SR_SPLIT_COUNT; s++) {
        h5_close_id(&w->indptr[s]);
        h5_close_id(&w->items[s]);
        h5_close_id(&w->time[s]);
    }
    /* The end of allocation before the close bounds the one after it (the
     * close only gives back aggregator space); the reopen reads the exact one. */
    haddr_t eoa = HADDR_UNDEF;
    herr_t rc = H5Fflush(w->file, H5F_SCOPE_LOCAL);
    if (rc >= 0) rc = H5Fget_eoa(w->file, &eoa);
    if (rc >= 0) {
        rc = H5Fclose(w->file);
        w->file = H5I_INVALID_HID; /* a failed close must not be retried */
    }
    if (rc < 0) {
        char r[256];
        SR_FAIL(err, SR_ERR_IO, "%s: cannot write %s (%s)", w->path, w->tmp, h5_reason(r));
    }
    int64_t exact = sr_h5_file_eoa(w->tmp);
    if (exact >= 0 && (haddr_t)exact < eoa) eoa = (haddr_t)exact;
    /* Give back the reservation HDF5 did not use, then data on disk before
     * the name points at it. */
    if (eoa == HADDR_UNDEF || (int64_t)eoa > w->reserved)
        SR_FAIL(err, SR_ERR_INTERNAL, "%s: end of allocation %lld is beyond the %lld bytes reserved", w->tmp,
                (long long)(eoa == HADDR_UNDEF ? -1 : (int64_t)eoa), (long long)w->reserved);
    if (ftruncate(w->fd, (off_t)eoa) != 0 || fsync(w->fd) != 0)
        SR_FAIL(err, SR_ERR_IO, "%s: cannot write %s: %s", w->path, w->tmp, strerror(errno));
    if (rename(w->tmp, w->path) != 0)
        SR_FAIL(err, SR_ERR_IO, "%s: cannot rename %s into place: %s", w->path, w->tmp, strerror(errno));
    w->tmp[0] = '\0'; /* committed: abort must not delete anything now */
    return SR_OK;
}

/* The content_sha256 attribute from the digests of what was appended. */
static sr_status content_write(sr_dataset_writer *w, sr_error *err)
{
    char part[SR_SPLIT_COUNT][3][65] = {{{0}}}, hex[65];
    for (int s = 0; s < SR_SPLIT_COUNT; s++)
        for (int a = 0; a < 3; a++) sr_sha256_hex(&w->content[s][a], part[s][a]);
    sr_dataset_content_hex(w->num_users, w->num_items, w->has_time, (const char(*)[3][65])part, hex);
    return write_attr_str(w, "content_sha256", hex, err);
}

void sr_dataset_writer_abort(sr_dataset_writer **pw)
{
    if (!pw || !*pw) return;
    sr_dataset_writer *w = *pw;
    char tmp[sizeof w->tmp];
    snprintf(tmp, sizeof tmp, "%s", w->tmp);
    writer_free(w);
    if (tmp[0]) unlink(tmp);
    *pw = NULL;
}
