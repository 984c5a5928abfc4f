/* checkpoint.c: collective HDF5 checkpoint save, verify and load (format in
 * checkpoint.h). Every collective HDF5 call (create, attribute, dataset
 * create, flush, close) is made by every rank with the same arguments;
 * row transfers are independent. */
#include "io/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/h5check.h"
#include "io/h5util.h"
#include "io/sha256.h"

#ifndef H5_HAVE_PARALLEL
#error "softrec needs parallel HDF5"
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint digests hash native float bytes: little-endian hosts only"
#endif

#define NAME_MAX_LEN 200

static hid_t open_fapl(const sr_comm *c)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, c->comm, MPI_INFO_NULL);
    /* 1.8 format: object headers and attributes carry checksums, so damaged
     * metadata is an error instead of silently wrong values. */
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18);
    return fapl;
}

static herr_t write_attr_i64(hid_t obj, const char *name, int64_t v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_INT64, &v);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

static herr_t write_attr_str(hid_t obj, const char *name, const char *s)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(s) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, t, s);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return rc;
}

static int read_attr_i64(hid_t obj, const char *name, int64_t *v)
{
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t sp = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
    hid_t ft = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
    herr_t rc = -1;
    if (sp >= 0 && ft >= 0 && H5Sget_simple_extent_npoints(sp) == 1 && H5Tget_class(ft) == H5T_INTEGER)
        rc = H5Aread(a, H5T_NATIVE_INT64, v);
    if (ft >= 0) H5Tclose(ft);
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    return rc < 0 ? -1 : 0;
}

/* Returns a malloc'ed string or NULL (absent, not a string): fixed or
 * variable length, any padding or character set (h5util.h). */
static char *read_attr_str(hid_t obj, const char *name)
{
    if (H5Aexists(obj, name) <= 0) return NULL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return NULL;
    char *out = NULL;
    sr_h5_attr_read_text(a, &out);
    H5Aclose(a);
    return out;
}

/* Select local rows [k0, k1) of a table in the file space: a block for
 * contiguous rows, a strided hyperslab for the interleaved layout. */
static void select_rows(hid_t fspace, const sr_ckpt_table *t, int rank, int64_t k0, int64_t k1)
{
    if (k1 <= k0) {
        H5Sselect_none(fspace);
        return;
    }
    hsize_t start[2] = {0, 0}, stride[2] = {1, 1}, count[2], block[2] = {1, 1};
    count[1] = (hsize_t)t->d;
    count[0] = (hsize_t)(k1 - k0);
    if (t->map && t->map->layout == SR_SHARD_INTERLEAVE) {
        start[0] = (hsize_t)sr_shard_global(t->map, rank, k0);
        stride[0] = (hsize_t)t->map->p;
    } else {
        start[0] = (hsize_t)(t->map ? sr_shard_global(t->map, rank, k0) : t->first_global + k0);
    }
    H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, stride, count, block);
}

/* Memory space of a local table with rows [k0, k1) selected. */
static hid_t mem_rows(const sr_ckpt_table *t, int64_t k0, int64_t k1)
{
    hsize_t mdims[2] = {(hsize_t)(t->local_rows ? t->local_rows : 1), (hsize_t)(t->d ? t->d : 1)};
    hid_t ms = H5Screate_simple(2, mdims, NULL);
    if (k1 <= k0) {
        H5Sselect_none(ms);
    } else {
        hsize_t start[2] = {(hsize_t)k0, 0}, count[2] = {(hsize_t)(k1 - k0), (hsize_t)t->d};
        H5Sselect_hyperslab(ms, H5S_SELECT_SET, start, NULL, count, NULL);
    }
    return ms;
}

/* Create intermediate groups of an absolute path like /model/x. */
static int ensure_groups(hid_t f, const char *path)
{
    char buf[NAME_MAX_LEN + 32];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (H5Lexists(f, buf, H5P_DEFAULT) <= 0) {
            hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
            H5Pset_obj_track_times(gcpl, 0);
            hid_t g = H5Gcreate2(f, buf, H5P_DEFAULT, gcpl, H5P_DEFAULT);
            H5Pclose(gcpl);
            if (g < 0) return -1;
            H5Gclose(g);
        }
        *p = '/';
    }
    return 0;
}

static hid_t create_dataset(hid_t f, const char *name, hid_t ftype, int nd, const hsize_t *dims)
{
    if (ensure_groups(f, name) < 0) return H5I_INVALID_HID;
    hid_t fs = H5Screate_simple(nd, dims, NULL);
    /* No object timestamps: the same contents give the same file bytes. */
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);
    hid_t ds = H5Dcreate2(f, name, ftype, fs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(fs);
    return ds;
}

static int64_t nblocks_of(int64_t rows) { return (rows + SR_CKPT_BLOCK_ROWS - 1) / SR_CKPT_BLOCK_ROWS; }

static void checksum_name(const char *table, char *buf, size_t n) { snprintf(buf, n, "/checksums%s", table); }

static int valid_name(const char *s, int absolute)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > NAME_MAX_LEN || (absolute && s[0] != '/') || s[n - 1] == '/' || strstr(s, "//")) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
              ch == '-' || ch == '/' || ch == '.'))
            return 0;
    }
    return 1;
}

/* SHA-256 of global rows [r0, r1) of a float32 table dataset; buf holds
 * SR_CKPT_BLOCK_ROWS x d floats. Independent read. */
static int hash_rows(hid_t ds, hid_t dxpl, int64_t r0, int64_t r1, int64_t d, float *buf, uint8_t out[32])
{
    hsize_t start[2] = {(hsize_t)r0, 0}, count[2] = {(hsize_t)(r1 - r0), (hsize_t)d};
    hid_t fs = H5Dget_space(ds);
    hid_t ms = H5Screate_simple(2, count, NULL);
    herr_t rc = (fs < 0 || ms < 0) ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    if (rc >= 0 && d > 0) rc = H5Dread(ds, H5T_NATIVE_FLOAT, ms, fs, dxpl, buf);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    if (rc < 0) return -1;
    sr_sha256 s;
    sr_sha256_init(&s);
    sr_sha256_update(&s, buf, (size_t)((r1 - r0) * d) * sizeof(float));
    char hex[65];
    sr_sha256_hex(&s, hex);
    for (int i = 0; i < 32; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* Digest row b of a [nblocks, 32] uint8 dataset: read (write = 0) or write. */
static int digest_io(hid_t cs, hid_t dxpl, int64_t b, uint8_t dig[32], int write)
{
    hsize_t start[2] = {(hsize_t)b, 0}, count[2] = {1, 32};
    hid_t fs = H5Dget_space(cs);
    hid_t ms = H5Screate_simple(2, count, NULL);
    herr_t rc = (fs < 0 || ms < 0) ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    if (rc >= 0) rc = write ? H5Dwrite(cs, H5T_NATIVE_UINT8, ms, fs, dxpl, dig) : H5Dread(cs, H5T_NATIVE_UINT8, ms, fs, dxpl, dig);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return rc < 0 ? -1 : 0;
}

/* Verify blocks b = rank, rank + P, ... of one table against its digests.
 * Not collective; the caller agrees. */
static sr_status verify_table(const sr_comm *c, hid_t f, hid_t dxpl, const char *path, const char *name,
                              int64_t rows, int64_t d, sr_error *err)
{
    char csn[NAME_MAX_LEN + 32];
    checksum_name(name, csn, sizeof csn);
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT), cs = H5Dopen2(f, csn, H5P_DEFAULT);
    float *buf = malloc((size_t)SR_CKPT_BLOCK_ROWS * (size_t)(d > 0 ? d : 1) * sizeof(float));
    sr_status st = SR_OK;
    if (ds < 0 || cs < 0)
        st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: cannot open the table or its checksums",
                          path, name);
    else if (!buf)
        st = sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "%s: %s: out of memory for a checksum block", path,
                          name);
    for (int64_t b = c->rank; st == SR_OK && b < nblocks_of(rows); b += c->size) {
        int64_t r0 = b * SR_CKPT_BLOCK_ROWS, r1 = r0 + SR_CKPT_BLOCK_ROWS < rows ? r0 + SR_CKPT_BLOCK_ROWS : rows;
        uint8_t want[32], got[32];
        if (digest_io(cs, dxpl, b, want, 0) < 0 || hash_rows(ds, dxpl, r0, r1, d, buf, got) < 0)
            st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: block %lld (rows %lld-%lld) cannot be read",
                              path, name, (long long)b, (long long)r0, (long long)(r1 - 1));
        else if (memcmp(want, got, 32) != 0)
            st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                              "%s: %s: block %lld (rows %lld-%lld) fails its SHA-256 check (damaged file)", path, name,
                              (long long)b, (long long)r0, (long long)(r1 - 1));
    }
    free(buf);
    if (ds >= 0) H5Dclose(ds);
    if (cs >= 0) H5Dclose(cs);
    H5Eclear2(H5E_DEFAULT);
    return st;
}

/* State value types: file type, memory type, name in messages. */
static hid_t vtype_file(sr_ckpt_vtype t)
{
    return t == SR_CKPT_U64 ? H5T_STD_U64LE : t == SR_CKPT_F64 ? H5T_IEEE_F64LE : H5T_STD_I64LE;
}

static hid_t vtype_mem(sr_ckpt_vtype t)
{
    return t == SR_CKPT_U64 ? H5T_NATIVE_UINT64 : t == SR_CKPT_F64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64;
}

static const char *vtype_name(int t)
{
    return t == SR_CKPT_U64 ? "uint64" : t == SR_CKPT_F64 ? "float64" : t == SR_CKPT_I64 ? "int64" : "another type";
}

/* The value type of a stored state dataset, -1 for anything else. */
static int vtype_of(hid_t ft)
{
    H5T_class_t cls = H5Tget_class(ft);
    if (cls == H5T_FLOAT) return SR_CKPT_F64;
    if (cls != H5T_INTEGER) return -1;
    return H5Tget_sign(ft) == H5T_SGN_NONE ? SR_CKPT_U64 : SR_CKPT_I64;
}

/* Range check of one loaded value of a ranged entry (bits: its 8 bytes). */
static sr_status check_range(const char *path, const char *name, const sr_ckpt_state *s, const uint64_t *bits,
                             sr_error *err)
{
    if (s->type == SR_CKPT_F64) {
        double v;
        memcpy(&v, bits, sizeof v);
        if (!isfinite(v)) SR_FAIL(err, SR_ERR_DATA, "%s: %s: value %g is not finite", path, name, v);
        if (v < (double)s->lo || v > (double)s->hi)
            SR_FAIL(err, SR_ERR_DATA, "%s: %s: value %.17g is outside %lld to %lld", path, name, v, (long long)s->lo,
                    (long long)s->hi);
    } else if (s->type == SR_CKPT_I64) {
        int64_t v = (int64_t)*bits;
        if (v < s->lo || v > s->hi)
            SR_FAIL(err, SR_ERR_DATA, "%s: %s: value %lld is outside %lld to %lld", path, name, (long long)v,
                    (long long)s->lo, (long long)s->hi);
    }
    return SR_OK;
}

static void hex_of(const void *data, size_t n, char hex[65])
{
    sr_sha256 s;
    sr_sha256_init(&s);
    sr_sha256_update(&s, data, n);
    sr_sha256_hex(&s, hex);
}

/* ---- save ----------------------------------------------------------------- */

/* Write one state entry. Every rank ends up with the full array (bcast or
 * allgather), computes the same digest and makes the same attribute call;
 * rank 0 writes the values. */
static sr_status save_state(const sr_comm *c, hid_t f, hid_t dxpl, const char *path, const sr_ckpt_state *s,
                            sr_error *err)
{
    char name[NAME_MAX_LEN + 16];
    snprintf(name, sizeof name, "/state/%s", s->name);
    int64_t rows = s->per_rank ? c->size : 1, n = rows * s->count;
    uint64_t *all = malloc((size_t)(n ? n : 1) * sizeof *all);
    int cnt = 0, bad = 0;
    if (!all || sr_comm_int(s->count, &cnt, "state count", err) != SR_OK) bad = 1;
    int anybad = bad;
    sr_status mst = SR_MPI_CHECK(err, MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, c->comm));
    if (mst != SR_OK || anybad) {
        free(all);
        if (err->code == SR_OK) sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "%s: state %s: out of memory", path, s->name);
        return err->code;
    }
    /* Every value type is 8 bytes: moved as uint64 bit patterns. */
    if (s->per_rank) {
        mst = SR_MPI_CHECK(err, MPI_Allgather(s->data, cnt, MPI_UINT64_T, all, cnt, MPI_UINT64_T, c->comm));
    } else {
        memcpy(all, s->data, (size_t)n * sizeof *all);
        mst = SR_MPI_CHECK(err, MPI_Bcast(all, cnt, MPI_UINT64_T, 0, c->comm));
        /* Replicated means identical: a rank that differs is a caller bug. */
        int differs = memcmp(all, s->data, (size_t)n * sizeof *all) != 0, any = 0;
        if (mst == SR_OK) mst = SR_MPI_CHECK(err, MPI_Allreduce(&differs, &any, 1, MPI_INT, MPI_MAX, c->comm));
        if (mst == SR_OK && any) {
            free(all);
            SR_FAIL(err, SR_ERR_INTERNAL, "%s: state %s is replicated but differs across ranks", path, s->name);
        }
    }
    if (mst != SR_OK) {
        free(all);
        return mst;
    }
    char hex[65];
    hex_of(all, (size_t)n * sizeof *all, hex);
    hsize_t dims[2] = {(hsize_t)rows, (hsize_t)s->count};
    hid_t ft = vtype_file(s->type), mt = vtype_mem(s->type);
    hid_t ds = s->per_rank ? create_dataset(f, name, ft, 2, dims) : create_dataset(f, name, ft, 1, dims + 1);
    sr_status st = SR_OK;
    if (ds < 0) {
        st = sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot create %s", path, name);
    } else {
        hid_t fs = H5Dget_space(ds);
        if (c->rank != 0 || n == 0) H5Sselect_none(fs);
        hid_t ms = H5Screate_simple(1, (hsize_t[]){(hsize_t)(n ? n : 1)}, NULL);
        if (c->rank != 0 || n == 0) H5Sselect_none(ms);
        if (H5Dwrite(ds, mt, ms, fs, dxpl, all) < 0 || write_attr_str(ds, "sha256", hex) < 0)
            st = sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot write %s", path, name);
        H5Sclose(ms);
        H5Sclose(fs);
        H5Dclose(ds);
    }
    free(all);
    return st;
}

/* Table rows in two halves with the fault hook between them, so an injected
 * kill leaves a genuinely half-written table. */
static sr_status save_table(const sr_comm *c, hid_t f, hid_t dxpl, const char *path, const sr_ckpt_table *t,
                            sr_fault *fault, sr_error *err)
{
    hsize_t dims[2] = {(hsize_t)t->global_rows, (hsize_t)t->d};
    hid_t ds = create_dataset(f, t->name, H5T_IEEE_F32LE, 2, dims);
    if (ds < 0) SR_FAIL(err, SR_ERR_IO, "%s: cannot create dataset %s", path, t->name);
    static const float dummy[1] = {0};
    const float *src = t->local_rows ? t->data : dummy;
    int64_t half = t->local_rows / 2;
    int bad = 0;
    for (int part = 0; part < 2 && !bad; part++) {
        int64_t k0 = part ? half : 0, k1 = part ? t->local_rows : half;
        hid_t fs = H5Dget_space(ds);
        select_rows(fs, t, c->rank, k0, k1);
        hid_t ms = mem_rows(t, k0, k1);
        bad |= H5Dwrite(ds, H5T_NATIVE_FLOAT, ms, fs, dxpl, src) < 0;
        H5Sclose(ms);
        H5Sclose(fs);
        if (part == 0 && sr_fault_hit(fault, SR_FAULT_CKPT_WRITE, c->rank, path, err) != SR_OK) {
            H5Dclose(ds);
            return err->code;
        }
    }
    H5Dclose(ds);
    if (bad) SR_FAIL(err, SR_ERR_IO, "%s: writing the rows of %s failed", path, t->name);
    return SR_OK;
}

/* Checksums of one table: rank b mod P hashes block b from the file (after
 * the flush, so every rank's rows are there) and writes its digest. */
static sr_status save_checksums(const sr_comm *c, hid_t f, hid_t dxpl, const char *path, const sr_ckpt_table *t,
                                sr_error *err)
{
    char csn[NAME_MAX_LEN + 32];
    checksum_name(t->name, csn, sizeof csn);
    int64_t nb = nblocks_of(t->global_rows);
    hsize_t dims[2] = {(hsize_t)nb, 32};
    hid_t cs = create_dataset(f, csn, H5T_STD_U8LE, 2, dims);
    hid_t ds = H5Dopen2(f, t->name, H5P_DEFAULT);
    float *buf = malloc((size_t)SR_CKPT_BLOCK_ROWS * (size_t)(t->d > 0 ? t->d : 1) * sizeof(float));
    sr_status st = SR_OK;
    if (!buf) /* out of memory is no I/O error: exit 7, like every other allocation */
        st = sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "%s: out of memory for the checksums of %s", path,
                          t->name);
    else if (cs < 0 || ds < 0)
        st = sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot create checksums of %s", path, t->name);
    for (int64_t b = c->rank; st == SR_OK && b < nb; b += c->size) {
        int64_t r0 = b * SR_CKPT_BLOCK_ROWS;
        int64_t r1 = r0 + SR_CKPT_BLOCK_ROWS < t->global_rows ? r0 + SR_CKPT_BLOCK_ROWS : t->global_rows;
        uint8_t dig[32];
        if (hash_rows(ds, dxpl, r0, r1, t->d, buf, dig) < 0 || digest_io(cs, dxpl, b, dig, 1) < 0)
            st = sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: %s: cannot checksum block %lld", path, t->name,
                              (long long)b);
    }
    free(buf);
    if (ds >= 0) H5Dclose(ds);
    if (cs >= 0) H5Dclose(cs);
    return st;
}

/* Same arguments on every rank, or HDF5's collective metadata calls diverge. */
static sr_status check_args(const sr_comm *c, const char *path, const sr_ckpt_table *tables, int ntables,
                            const sr_ckpt_state *state, int nstate, sr_error *err)
{
    for (int i = 0; i < ntables; i++) {
        const sr_ckpt_table *t = &tables[i];
        if (!valid_name(t->name, 1))
            SR_FAIL(err, SR_ERR_INTERNAL, "%s: bad table name '%s'", path, t->name ? t->name : "(null)");
        if (t->global_rows < 0 || t->d < 0 || t->local_rows < 0 || t->local_rows > t->global_rows)
            SR_FAIL(err, SR_ERR_INTERNAL, "%s: %s: bad shape (%lld local of %lld rows, d %lld)", path, t->name,
                    (long long)t->local_rows, (long long)t->global_rows, (long long)t->d);
        if (t->local_rows && !t->data) SR_FAIL(err, SR_ERR_INTERNAL, "%s: %s: no data", path, t->name);
    }
    for (int i = 0; i < nstate; i++)
        if (!valid_name(state[i].name, 0) || state[i].count < 0 || (state[i].count && !state[i].data))
            SR_FAIL(err, SR_ERR_INTERNAL, "%s: bad state entry '%s'", path, state[i].name ? state[i].name : "(null)");
    return SR_OK;
}

/* An upper bound of the file's size: the data, the text attributes twice,
 * and generous room for HDF5's object headers, heaps and B-trees. */
static int64_t size_bound(const sr_comm *c, const sr_ckpt_info *info, const sr_ckpt_table *tables, int ntables,
                          const sr_ckpt_state *state, int nstate)
{
    int64_t b = (int64_t)64 << 10;
    b += 2 * (int64_t)(strlen(info->dataset) + (info->config_ini ? strlen(info->config_ini) : 0) +
                       (info->fingerprint ? strlen(info->fingerprint) : 0) + 1024);
    for (int i = 0; i < ntables; i++)
        b += tables[i].global_rows * tables[i].d * 4 + nblocks_of(tables[i].global_rows) * 32 + 2 * 4096 +
             2 * (int64_t)strlen(tables[i].name);
    for (int i = 0; i < nstate; i++) b += (state[i].per_rank ? c->size : 1) * state[i].count * 8 + 4096;
    return b;
}

/* Rank 0: allocate bytes for path (posix_fallocate), creating it when
 * create is set. Returns 0 or the errno. */
static int allocate_file(const char *path, int64_t bytes, int create)
{
    int fd = open(path, create ? O_WRONLY | O_CREAT | O_TRUNC : O_WRONLY, 0644);
    if (fd < 0) return errno;
    int rc = posix_fallocate(fd, 0, (off_t)bytes);
    if (close(fd) != 0 && rc == 0) rc = errno;
    return rc;
}

/* Rank 0, before HDF5 writes a byte: prove that the file system has room
 * for the whole file (a scratch file of that size, then deleted). A full
 * file system met inside parallel HDF5 makes one rank's collective metadata
 * calls fail while the others go on (a hang, measured with tmpfs); here it
 * is one plain error that every rank agrees on. */
static sr_status reserve_space(const char *path, int64_t bytes, sr_error *err)
{
    char rsv[1200];
    if ((size_t)snprintf(rsv, sizeof rsv, "%s.reserve", path) >= sizeof rsv)
        SR_FAIL(err, SR_ERR_INTERNAL, "%s: path too long", path);
    int e = allocate_file(rsv, bytes, 1);
    unlink(rsv);
    if (e) SR_FAIL(err, SR_ERR_IO, "%s: cannot reserve %lld bytes for the checkpoint: %s", path, (long long)bytes,
                   strerror(e));
    return SR_OK;
}

sr_status sr_ckpt_save(const sr_comm *c, const char *path, const sr_ckpt_info *info, const sr_ckpt_table *tables,
                       int ntables, const sr_ckpt_state *state, int nstate, sr_fault *fault, sr_error *err)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    check_args(c, path, tables, ntables, state, nstate, err);
    SR_TRY(sr_comm_agree(c, err));
    const int64_t bound = size_bound(c, info, tables, ntables, state, nstate);
    if (c->rank == 0) reserve_space(path, bound, err);
    SR_TRY(sr_comm_agree(c, err));
    hid_t fapl = open_fapl(c);
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_obj_track_times(fcpl, 0);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fcpl);
    H5Pclose(fapl);
    if (f < 0) {
        /* HDF5 does not say why; the same create through POSIX does. */
        int fd = open(path, O_WRONLY | O_CREAT, 0644), e = errno;
        if (fd >= 0) close(fd);
        sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot create checkpoint file: %s", path,
                     fd < 0 ? strerror(e) : "HDF5 refused it");
    }
    /* The space proven free above now belongs to the file itself, so no
     * HDF5 write below can meet a full file system. */
    int e = c->rank == 0 && f >= 0 ? allocate_file(path, bound, 0) : 0;
    if (e)
        sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot allocate %lld bytes for the checkpoint: %s", path,
                     (long long)bound, strerror(e));
    if (sr_comm_agree(c, err) != SR_OK) {
        if (f >= 0) H5Fclose(f);
        H5Eclear2(H5E_DEFAULT);
        return err->code;
    }

    /* Table list attribute: names joined by '\n'. */
    size_t need = 1;
    for (int i = 0; i < ntables; i++) need += strlen(tables[i].name) + 1;
    char *list = calloc(need, 1);
    for (int i = 0; list && i < ntables; i++) {
        strcat(list, tables[i].name);
        if (i + 1 < ntables) strcat(list, "\n");
    }
    int bad = !list;
    bad |= write_attr_str(f, "softrec_format", SR_CKPT_FORMAT) < 0;
    bad |= write_attr_i64(f, "format_version", SR_CKPT_VERSION) < 0;
    bad |= write_attr_i64(f, "step", info->step) < 0;
    bad |= write_attr_i64(f, "epoch", info->epoch) < 0;
    bad |= write_attr_i64(f, "num_users", info->num_users) < 0;
    bad |= write_attr_i64(f, "num_items", info->num_items) < 0;
    bad |= write_attr_i64(f, "dim", info->dim) < 0;
    bad |= write_attr_str(f, "dataset", info->dataset) < 0;
    bad |= write_attr_str(f, "dataset_sha256", info->dataset_sha256) < 0;
    bad |= write_attr_str(f, "config", info->config_ini ? info->config_ini : "") < 0;
    bad |= write_attr_i64(f, "checksum_block_rows", SR_CKPT_BLOCK_ROWS) < 0;
    bad |= write_attr_str(f, "tables", list ? list : "") < 0;
    bad |= write_attr_str(f, "fingerprint", info->fingerprint ? info->fingerprint : "") < 0;
    if (!list) /* the table list's malloc: out of memory, not I/O */
        sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "%s: out of memory for the table list", path);
    else if (bad)
        sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot write checkpoint attributes", path);
    free(list);

    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    /* Independent transfers: each rank moves its own disjoint rows, and Open
     * MPI 4.1's default ompio returned wrong data for some collective reads. */
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_INDEPENDENT);
    /* Dataset creation is collective: every rank creates every table even
     * after a local error, and the verdict is agreed once at the end. */
    for (int i = 0; i < ntables; i++) {
        if (err->code != SR_OK) {
            hsize_t dims[2] = {(hsize_t)tables[i].global_rows, (hsize_t)tables[i].d};
            hid_t ds = create_dataset(f, tables[i].name, H5T_IEEE_F32LE, 2, dims);
            if (ds >= 0) H5Dclose(ds);
            continue;
        }
        save_table(c, f, dxpl, path, &tables[i], fault, err);
    }
    /* sync, barrier, sync: every rank's rows are visible to every reader. */
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: flush failed", path);
    SR_MPI_CHECK(err, MPI_Barrier(c->comm)); /* agreed at the end, like the flushes */
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: flush failed", path);
    for (int i = 0; i < ntables; i++) {
        sr_error scratch;
        sr_error_clear(&scratch);
        save_checksums(c, f, dxpl, path, &tables[i], err->code == SR_OK ? err : &scratch);
    }
    for (int i = 0; i < nstate; i++) {
        sr_error scratch;
        sr_error_clear(&scratch);
        save_state(c, f, dxpl, path, &state[i], err->code == SR_OK ? err : &scratch);
    }
    H5Pclose(dxpl);
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: flush failed", path);
    if (H5Fclose(f) < 0) sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: close failed", path);
    H5Eclear2(H5E_DEFAULT);
    SR_TRY(sr_comm_agree(c, err));
    /* Give back the reserved bytes HDF5 did not use: the file ends at its
     * end of allocation, as without the reservation. */
    if (c->rank == 0) {
        int64_t eoa = sr_h5_file_eoa(path);
        if (eoa < 0 || eoa > bound)
            sr_error_set(err, SR_ERR_INTERNAL, __FILE__, __LINE__,
                         "%s: end of allocation %lld is beyond the size bound %lld", path, (long long)eoa,
                         (long long)bound);
        else if (truncate(path, (off_t)eoa) != 0)
            sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot truncate to %lld bytes: %s", path,
                         (long long)eoa, strerror(errno));
    }
    return sr_comm_agree(c, err);
}

/* ---- load ----------------------------------------------------------------- */

#define MAX_LISTED 4096 /* tables, or state entries, one file may hold */

/* Names of a file's objects (tables it lists, its /state entries). */
typedef struct name_list {
    char **v;
    int n;
} name_list;

static int names_find(const name_list *l, const char *s)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s)) return i;
    return -1;
}

static int names_add(name_list *l, const char *s, size_t len)
{
    if (l->n >= MAX_LISTED) return -1;
    char **v = realloc(l->v, (size_t)(l->n + 1) * sizeof *v);
    if (!v) return -1;
    l->v = v;
    if (!(v[l->n] = strndup(s, len))) return -1;
    l->n++;
    return 0;
}

/* Whether a caller requested the table / state entry of this name. */
static int requested_table(const sr_ckpt_table *t, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].name, name)) return 1;
    return 0;
}

static int requested_state(const sr_ckpt_state *s, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s[i].name, name)) return 1;
    return 0;
}

static void names_free(name_list *l)
{
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* The tables the file lists (attribute `tables`, version 2): a load
 * verifies all of them, requested or not. */
static sr_status listed_tables(hid_t f, const char *path, name_list *l, sr_error *err)
{
    char *list = read_attr_str(f, "tables");
    if (!list) SR_FAIL(err, SR_ERR_DATA, "%s: attribute tables missing", path);
    sr_status st = SR_OK;
    for (char *p = list; *p && st == SR_OK;) {
        size_t n = strcspn(p, "\n");
        char name[NAME_MAX_LEN + 2];
        snprintf(name, sizeof name, "%.*s", (int)(n <= NAME_MAX_LEN ? n : NAME_MAX_LEN + 1), p);
        if (n > NAME_MAX_LEN || !valid_name(name, 1))
            st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: attribute tables: bad table name '%.60s'",
                              path, name);
        else if (names_find(l, name) < 0 && names_add(l, name, n) < 0)
            st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: attribute tables: more than %d tables",
                              path, MAX_LISTED);
        p += n + (p[n] == '\n');
    }
    free(list);
    return st;
}

typedef struct state_visit {
    name_list *l;
    int full;
} state_visit;

static herr_t visit_state(hid_t g, const char *name, const H5L_info_t *li, void *op)
{
    state_visit *v = op;
    H5O_info_t oi;
    /* Only hard links are followed here; other kinds are h5check's to
     * reject. */
    if (li->type != H5L_TYPE_HARD || H5Oget_info_by_name2(g, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0 ||
        oi.type != H5O_TYPE_DATASET)
        return 0;
    if (strlen(name) > NAME_MAX_LEN || names_add(v->l, name, strlen(name)) < 0) v->full = 1;
    return v->full ? 1 : 0;
}

/* Every dataset under /state (names relative to it, name order): a load
 * checks the digest of each, requested or not. */
static sr_status state_entries(hid_t f, const char *path, name_list *l, sr_error *err)
{
    if (H5Lexists(f, "/state", H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return SR_OK;
    }
    state_visit v = {l, 0};
    herr_t rc = H5Lvisit_by_name(f, "/state", H5_INDEX_NAME, H5_ITER_INC, visit_state, &v, H5P_DEFAULT);
    H5Eclear2(H5E_DEFAULT);
    if (v.full) SR_FAIL(err, SR_ERR_DATA, "%s: /state: more than %d entries or a name too long", path, MAX_LISTED);
    if (rc < 0) SR_FAIL(err, SR_ERR_DATA, "%s: /state: cannot list its entries", path);
    return SR_OK;
}

/* Read a state dataset whole as 8-byte values (vt: its value type) and
 * check its sha256 attribute. *all is malloc'ed (caller frees). */
static sr_status read_state_checked(hid_t ds, hid_t dxpl, const char *path, const char *name, int vt, int64_t n,
                                    uint64_t **all, sr_error *err)
{
    *all = NULL;
    if (n < 0 || n > ((int64_t)1 << 37) || !(*all = malloc((size_t)(n + 1) * 8)))
        SR_FAIL(err, SR_ERR_NOMEM, "%s: %s: out of memory", path, name);
    if (n > 0 && H5Dread(ds, vtype_mem((sr_ckpt_vtype)vt), H5S_ALL, H5S_ALL, dxpl, *all) < 0)
        SR_FAIL(err, SR_ERR_DATA, "%s: %s: cannot read", path, name);
    char hex[65];
    char *want = read_attr_str(ds, "sha256");
    hex_of(*all, (size_t)n * 8, hex);
    int ok = want && strcmp(want, hex) == 0;
    free(want);
    if (!ok) SR_FAIL(err, SR_ERR_DATA, "%s: %s: fails its SHA-256 check (damaged file)", path, name);
    return SR_OK;
}

/* Shape of a state dataset: rank, rows ([ranks, count] or 1), count; and
 * its value type (-1: not an 8-byte integer or float). */
static int state_shape(hid_t ds, int64_t *rows, int64_t *cnt, int *vt)
{
    hid_t sp = H5Dget_space(ds), ft = H5Dget_type(ds);
    hsize_t dims[2] = {0, 0};
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (nd >= 1 && nd <= 2) H5Sget_simple_extent_dims(sp, dims, NULL);
    *vt = ft >= 0 && H5Tget_size(ft) == 8 ? vtype_of(ft) : -1;
    if (ft >= 0) H5Tclose(ft);
    if (sp >= 0) H5Sclose(sp);
    *rows = nd == 2 ? (int64_t)dims[0] : 1;
    *cnt = nd == 2 ? (int64_t)dims[1] : (int64_t)dims[0];
    return nd;
}

/* A state entry: requested (s != NULL): type, shape and count, then its
 * digest, then the ranges, and this rank's values go to s->data; not
 * requested (verify, or an entry this trainer does not use): its digest,
 * whatever its type. */
static sr_status load_state(const sr_comm *c, hid_t f, hid_t dxpl, const char *path, const char *rel,
                            sr_ckpt_state *s, sr_error *err)
{
    char name[NAME_MAX_LEN + 16];
    snprintf(name, sizeof name, "/state/%s", rel);
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) {
        H5Eclear2(H5E_DEFAULT);
        SR_FAIL(err, SR_ERR_DATA, "%s: missing dataset %s", path, name);
    }
    int64_t rows, cnt;
    int vt;
    int nd = state_shape(ds, &rows, &cnt, &vt);
    sr_status st = SR_OK;
    uint64_t *all = NULL;
    if (!s && (vt < 0 || nd < 1 || nd > 2))
        st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                          "%s: %s: expected 8-byte integers or floats of rank 1 or 2", path, name);
    else if (s && vt != (int)s->type)
        st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: is %s, expected %s", path, name,
                          vtype_name(vt), vtype_name(s->type));
    else if (s && nd != (s->per_rank ? 2 : 1))
        st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: is %s state, expected %s", path, name,
                          nd == 2 ? "per-rank" : "replicated", s->per_rank ? "per-rank" : "replicated");
    else if (s && cnt != s->count)
        st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: %lld values, expected %lld", path, name,
                          (long long)cnt, (long long)s->count);
    else if (s && s->per_rank && rows != c->size)
        st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                          "%s: %s: per-rank state saved at %lld ranks cannot be loaded at %d ranks", path, name,
                          (long long)rows, c->size);
    else
        st = read_state_checked(ds, dxpl, path, name, vt, rows > ((int64_t)1 << 40) / (cnt ? cnt : 1) ? -1 : rows * cnt,
                                &all, err);
    /* Every rank's row, so the verdict is the same on every rank. */
    for (int64_t k = 0; st == SR_OK && s && s->ranged && k < rows * cnt; k++)
        st = check_range(path, name, s, &all[k], err);
    if (st == SR_OK && s) memcpy(s->data, all + (s->per_rank ? c->rank * cnt : 0), (size_t)cnt * 8);
    free(all);
    H5Dclose(ds);
    H5Eclear2(H5E_DEFAULT);
    return st;
}

/* Open, check format and version (1 or 2). Agreed. */
static sr_status open_checked(const sr_comm *c, const char *path, hid_t *fout, int64_t *ver, sr_error *err)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    *fout = H5I_INVALID_HID;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, c->comm, MPI_INFO_NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    H5Eclear2(H5E_DEFAULT);
    if (f < 0) sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot open checkpoint (missing or not HDF5)", path);
    if (sr_comm_agree(c, err) != SR_OK) {
        if (f >= 0) H5Fclose(f);
        return err->code;
    }
    char *fmt = read_attr_str(f, "softrec_format");
    *ver = 0;
    if (!fmt || strcmp(fmt, SR_CKPT_FORMAT))
        sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: not a softrec checkpoint (attribute softrec_format)", path);
    else if (read_attr_i64(f, "format_version", ver) < 0 || *ver < 1 || *ver > SR_CKPT_VERSION)
        sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                     "%s: checkpoint format_version %lld is not supported (this softrec reads 1 to %d)", path,
                     (long long)*ver, SR_CKPT_VERSION);
    else if (*ver >= 2) {
        int64_t br = 0;
        if (read_attr_i64(f, "checksum_block_rows", &br) < 0 || br != SR_CKPT_BLOCK_ROWS)
            sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: checksum_block_rows %lld, expected %d", path,
                         (long long)br, SR_CKPT_BLOCK_ROWS);
    }
    free(fmt);
    H5Eclear2(H5E_DEFAULT);
    if (sr_comm_agree(c, err) != SR_OK) {
        H5Fclose(f);
        return err->code;
    }
    *fout = f;
    return SR_OK;
}

/* The root attributes into info (malloc'ed strings: sr_ckpt_info_free). */
static void read_info(hid_t f, int64_t ver, sr_ckpt_info *info)
{
    memset(info, 0, sizeof *info);
    info->format_version = (int)ver;
    read_attr_i64(f, "step", &info->step);
    read_attr_i64(f, "epoch", &info->epoch);
    read_attr_i64(f, "num_users", &info->num_users);
    read_attr_i64(f, "num_items", &info->num_items);
    read_attr_i64(f, "dim", &info->dim);
    char *s = read_attr_str(f, "dataset");
    if (s) snprintf(info->dataset, sizeof info->dataset, "%s", s);
    free(s);
    s = read_attr_str(f, "dataset_sha256");
    if (s) snprintf(info->dataset_sha256, sizeof info->dataset_sha256, "%s", s);
    free(s);
    info->config_ini = read_attr_str(f, "config");
    info->fingerprint = read_attr_str(f, "fingerprint");
    if (!info->fingerprint) info->fingerprint = calloc(1, 1);
    H5Eclear2(H5E_DEFAULT);
}

void sr_ckpt_info_free(sr_ckpt_info *info)
{
    if (!info) return;
    free(info->config_ini);
    free(info->fingerprint);
    info->config_ini = info->fingerprint = NULL;
}

sr_status sr_ckpt_read_info(const sr_comm *c, const char *path, sr_ckpt_info *info, sr_error *err)
{
    hid_t f;
    int64_t ver;
    memset(info, 0, sizeof *info);
    SR_TRY(open_checked(c, path, &f, &ver, err));
    read_info(f, ver, info);
    H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    return SR_OK;
}

/* Schema of the untrusted file before any bulk read: the requested tables
 * with their shapes, every listed one as a 2-D float32 table, their digest
 * tables, the requested state entries with their types, and every other
 * /state entry as 8-byte values. Collective (h5check agrees). */
static sr_status check_schema(const sr_comm *c, hid_t f, const char *path, int64_t ver, const sr_ckpt_table *tables,
                              int ntables, const name_list *listed, const sr_ckpt_state *state, int nstate,
                              const name_list *entries, sr_error *err)
{
    int nobj = 2 * (ntables + listed->n) + nstate + entries->n;
    sr_h5check_obj *objs = calloc((size_t)(nobj ? nobj : 1), sizeof *objs);
    char (*names)[NAME_MAX_LEN + 32] = calloc((size_t)(nobj ? nobj : 1), sizeof *names);
    if (!objs || !names) sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "%s: out of memory", path);
    int k = 0;
    for (int i = 0; objs && names && i < ntables + listed->n; i++) {
        const sr_ckpt_table *t = i < ntables ? &tables[i] : NULL;
        const char *name = t ? t->name : listed->v[i - ntables];
        int64_t rows = t ? t->global_rows : -1, nb = t ? nblocks_of(t->global_rows) : -1;
        if (!t && requested_table(tables, ntables, name)) continue; /* checked above */
        objs[k++] = (sr_h5check_obj){name, 1, SR_H5_FLOAT, ver >= 2 ? 4 : 0, ver >= 2 ? 4 : 0, 2,
                                     {rows, t ? t->d : -1}, -1, NULL};
        if (ver >= 2) {
            checksum_name(name, names[k], sizeof names[k]);
            objs[k] = (sr_h5check_obj){names[k], 1, SR_H5_INTEGER, 1, 1, 2, {nb, 32}, -1, NULL};
            k++;
        }
    }
    for (int i = 0; objs && names && ver >= 2 && i < nstate + entries->n; i++) {
        const char *rel = i < nstate ? state[i].name : entries->v[i - nstate];
        if (i >= nstate && requested_state(state, nstate, rel)) continue;
        sr_h5_class cls = i >= nstate ? SR_H5_ANY : state[i].type == SR_CKPT_F64 ? SR_H5_FLOAT : SR_H5_INTEGER;
        snprintf(names[k], sizeof names[k], "/state/%s", rel);
        objs[k] = (sr_h5check_obj){names[k], 1, cls, 8, 8, -1, {-1, -1}, -1, NULL};
        k++;
    }
    if (sr_comm_agree(c, err) == SR_OK) sr_h5check_run(c, f, path, objs, k, err);
    free(objs);
    free(names);
    return sr_comm_agree(c, err);
}

/* Every block of every listed or requested table, verified whole before
 * any row is trusted; each table once. Not collective (the caller agrees). */
static sr_status verify_tables(const sr_comm *c, hid_t f, hid_t dxpl, const char *path, const sr_ckpt_table *tables,
                               int ntables, const name_list *listed, sr_error *err)
{
    for (int i = 0; i < ntables && err->code == SR_OK; i++)
        verify_table(c, f, dxpl, path, tables[i].name, tables[i].global_rows, tables[i].d, err);
    for (int i = 0; i < listed->n && err->code == SR_OK; i++) {
        if (requested_table(tables, ntables, listed->v[i])) continue;
        hid_t ds = H5Dopen2(f, listed->v[i], H5P_DEFAULT);
        hid_t sp = ds >= 0 ? H5Dget_space(ds) : H5I_INVALID_HID;
        hsize_t dims[2] = {0, 0};
        if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 2 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0)
            sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: missing or not a 2-D table", path,
                         listed->v[i]);
        if (sp >= 0) H5Sclose(sp);
        if (ds >= 0) H5Dclose(ds);
        H5Eclear2(H5E_DEFAULT);
        if (err->code == SR_OK)
            verify_table(c, f, dxpl, path, listed->v[i], (int64_t)dims[0], (int64_t)dims[1], err);
    }
    return err->code;
}

/* Each rank's rows of the requested tables. */
static void read_rows(const sr_comm *c, hid_t f, hid_t dxpl, const char *path, sr_ckpt_table *tables, int ntables,
                      sr_error *err)
{
    int bad = 0;
    for (int i = 0; i < ntables; i++) {
        const sr_ckpt_table *t = &tables[i];
        hid_t ds = H5Dopen2(f, t->name, H5P_DEFAULT);
        hid_t fs = H5Dget_space(ds);
        select_rows(fs, t, c->rank, 0, t->local_rows);
        hid_t ms = mem_rows(t, 0, t->local_rows);
        float dummy[1];
        bad |= H5Dread(ds, H5T_NATIVE_FLOAT, ms, fs, dxpl, t->local_rows ? t->data : dummy) < 0;
        H5Sclose(ms);
        H5Sclose(fs);
        H5Dclose(ds);
    }
    if (bad) sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: reading the checkpoint tables failed", path);
}

/* The state: requested entries (typed, ranged), then the digest of every
 * other entry in the file. */
static void load_all_state(const sr_comm *c, hid_t f, hid_t dxpl, const char *path, sr_ckpt_state *state,
                           int nstate, const name_list *entries, sr_error *err)
{
    for (int i = 0; i < nstate && err->code == SR_OK; i++) load_state(c, f, dxpl, path, state[i].name, &state[i], err);
    for (int i = 0; i < entries->n && err->code == SR_OK; i++)
        if (!requested_state(state, nstate, entries->v[i])) load_state(c, f, dxpl, path, entries->v[i], NULL, err);
}

sr_status sr_ckpt_load(const sr_comm *c, const char *path, sr_ckpt_table *tables, int ntables, sr_ckpt_state *state,
                       int nstate, sr_ckpt_info *info, sr_fault *fault, sr_error *err)
{
    hid_t f;
    int64_t ver;
    if (info) memset(info, 0, sizeof *info);
    SR_TRY(open_checked(c, path, &f, &ver, err));
    if (ver < 2 && nstate > 0)
        sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                     "%s: format_version 1 checkpoint holds no training state (needed: /state/%s); it can only "
                     "initialise a model (train.init)", path, state[0].name);
    name_list listed = {NULL, 0}, entries = {NULL, 0};
    if (err->code == SR_OK && ver >= 2 && listed_tables(f, path, &listed, err) == SR_OK)
        state_entries(f, path, &entries, err);
    if (sr_comm_agree(c, err) == SR_OK)
        check_schema(c, f, path, ver, tables, ntables, &listed, state, nstate, &entries, err);
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_INDEPENDENT);
    if (err->code == SR_OK && ver >= 2) verify_tables(c, f, dxpl, path, tables, ntables, &listed, err);
    if (err->code == SR_OK) sr_fault_hit(fault, SR_FAULT_CKPT_READ, c->rank, path, err);
    if (sr_comm_agree(c, err) == SR_OK) {
        read_rows(c, f, dxpl, path, tables, ntables, err);
        if (err->code == SR_OK) load_all_state(c, f, dxpl, path, state, nstate, &entries, err);
        if (info) read_info(f, ver, info);
    }
    names_free(&listed);
    names_free(&entries);
    H5Pclose(dxpl);
    H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    sr_status st = sr_comm_agree(c, err);
    if (st != SR_OK) sr_ckpt_info_free(info);
    return st;
}

sr_status sr_ckpt_verify(const sr_comm *c, const char *path, sr_ckpt_info *info, sr_error *err)
{
    sr_ckpt_info own;
    sr_ckpt_info *in = info ? info : &own;
    SR_TRY(sr_ckpt_load(c, path, NULL, 0, NULL, 0, in, NULL, err));
    if (in->format_version < 2)
        sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: format_version 1 has no checksums", path);
    if (!info || err->code != SR_OK) sr_ckpt_info_free(in);
    return sr_comm_agree(c, err);
}

/* ---- compatibility ---------------------------------------------------------- */

sr_status sr_ckpt_write(const sr_comm *c, const char *path, const sr_ckpt_info *info,
                        const sr_ckpt_table *tables, int ntables, sr_error *err)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (sr_ckpt_save(c, tmp, info, tables, ntables, NULL, 0, NULL, err) != SR_OK) {
        if (c->rank == 0) remove(tmp);
        return err->code;
    }
    /* Every rank's rows are on disk: commit by rename (atomic on POSIX). */
    if (c->rank == 0 && rename(tmp, path) != 0)
        sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot rename the checkpoint into place", path);
    return sr_comm_agree(c, err);
}

sr_status sr_ckpt_read(const sr_comm *c, const char *path, sr_ckpt_table *tables, int ntables,
                       sr_ckpt_info *info, sr_error *err)
{
    return sr_ckpt_load(c, path, tables, ntables, NULL, 0, info, NULL, err);
}
