/* checkpoint.c: collective HDF5 checkpoint write and read. */
#include "io/checkpoint.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef H5_HAVE_PARALLEL
#error "softrec needs parallel HDF5"
#endif

static hid_t open_fapl(const sr_comm *c)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, c->comm, MPI_INFO_NULL);
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
    herr_t rc = H5Aread(a, H5T_NATIVE_INT64, v);
    H5Aclose(a);
    return rc < 0 ? -1 : 0;
}

/* Returns a malloc'ed string or NULL. */
static char *read_attr_str(hid_t obj, const char *name)
{
    if (H5Aexists(obj, name) <= 0) return NULL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t ft = H5Aget_type(a);
    char *out = NULL;
    if (H5Tget_class(ft) == H5T_STRING && !H5Tis_variable_str(ft)) {
        size_t n = H5Tget_size(ft);
        out = calloc(n + 1, 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, n);
        if (out && H5Aread(a, mt, out) < 0) {
            free(out);
            out = NULL;
        }
        H5Tclose(mt);
    }
    H5Tclose(ft);
    H5Aclose(a);
    return out;
}

/* Select this rank's rows of a table in the file space: a block for
 * contiguous rows, a strided hyperslab for the interleaved layout. */
static void select_rows(hid_t fspace, const sr_ckpt_table *t, int rank)
{
    if (t->local_rows == 0) {
        H5Sselect_none(fspace);
        return;
    }
    hsize_t start[2], stride[2] = {1, 1}, count[2], block[2] = {1, 1};
    start[1] = 0;
    count[1] = (hsize_t)t->d;
    count[0] = (hsize_t)t->local_rows;
    if (t->map && t->map->layout == SR_SHARD_INTERLEAVE) {
        start[0] = (hsize_t)rank;
        stride[0] = (hsize_t)t->map->p;
    } else {
        start[0] = (hsize_t)(t->map ? sr_shard_global(t->map, rank, 0) : t->first_global);
    }
    H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, stride, count, block);
}

/* Create intermediate groups of an absolute path like /model/x. */
static void ensure_groups(hid_t f, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (H5Lexists(f, buf, H5P_DEFAULT) <= 0) {
            hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
            H5Pset_obj_track_times(gcpl, 0);
            hid_t g = H5Gcreate2(f, buf, H5P_DEFAULT, gcpl, H5P_DEFAULT);
            if (g >= 0) H5Gclose(g);
            H5Pclose(gcpl);
        }
        *p = '/';
    }
}

sr_status sr_ckpt_write(const sr_comm *c, const char *path, const sr_ckpt_info *info,
                        const sr_ckpt_table *tables, int ntables, sr_error *err)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    hid_t fapl = open_fapl(c);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot create checkpoint file", tmp);
    SR_TRY(sr_comm_agree(c, err));

    int bad = 0;
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
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    /* Independent transfers: each rank moves its own disjoint rows, and Open
     * MPI 4.1's default ompio returned wrong data for some collective reads. */
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_INDEPENDENT);
    for (int i = 0; i < ntables && !bad; i++) {
        const sr_ckpt_table *t = &tables[i];
        ensure_groups(f, t->name);
        hsize_t dims[2] = {(hsize_t)t->global_rows, (hsize_t)t->d};
        hid_t fs = H5Screate_simple(2, dims, NULL);
        /* No object timestamps: the same model gives the same file bytes. */
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_obj_track_times(dcpl, 0);
        hid_t ds = H5Dcreate2(f, t->name, H5T_IEEE_F32LE, fs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        H5Pclose(dcpl);
        if (ds < 0) {
            bad = 1;
            H5Sclose(fs);
            break;
        }
        select_rows(fs, t, c->rank);
        hsize_t mdims[2] = {(hsize_t)(t->local_rows ? t->local_rows : 1), (hsize_t)t->d};
        hid_t ms = H5Screate_simple(2, mdims, NULL);
        if (t->local_rows == 0) H5Sselect_none(ms);
        static const float dummy[1] = {0};
        bad |= H5Dwrite(ds, H5T_NATIVE_FLOAT, ms, fs, dxpl, t->local_rows ? t->data : dummy) < 0;
        H5Sclose(ms);
        H5Sclose(fs);
        H5Dclose(ds);
    }
    H5Pclose(dxpl);
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) bad = 1;
    if (H5Fclose(f) < 0) bad = 1;
    if (bad) sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: writing the checkpoint failed", tmp);
    if (sr_comm_agree(c, err) != SR_OK) {
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
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fapl = open_fapl(c);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0) sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot open checkpoint (missing or not HDF5)", path);
    SR_TRY(sr_comm_agree(c, err));
    char *fmt = read_attr_str(f, "softrec_format");
    int64_t ver = 0;
    if (!fmt || strcmp(fmt, SR_CKPT_FORMAT))
        sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: not a softrec checkpoint (attribute softrec_format)", path);
    else if (read_attr_i64(f, "format_version", &ver) < 0 || ver != SR_CKPT_VERSION)
        sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                     "%s: checkpoint format_version %lld is not supported (this softrec reads %d)", path,
                     (long long)ver, SR_CKPT_VERSION);
    free(fmt);
    for (int i = 0; i < ntables && err->code == SR_OK; i++) {
        const sr_ckpt_table *t = &tables[i];
        if (H5Lexists(f, t->name, H5P_DEFAULT) <= 0) {
            sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: missing dataset %s", path, t->name);
            break;
        }
        hid_t ds = H5Dopen2(f, t->name, H5P_DEFAULT);
        hid_t fs = H5Dget_space(ds);
        hid_t ty = H5Dget_type(ds);
        hsize_t dims[2] = {0, 0};
        int nd = H5Sget_simple_extent_ndims(fs);
        if (nd == 2) H5Sget_simple_extent_dims(fs, dims, NULL);
        if (H5Tget_class(ty) != H5T_FLOAT)
            sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: not a floating-point dataset", path, t->name);
        else if (nd != 2 || dims[0] != (hsize_t)t->global_rows || dims[1] != (hsize_t)t->d)
            sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                         "%s: %s: shape %llux%llu, expected %lldx%lld", path, t->name,
                         (unsigned long long)dims[0], (unsigned long long)dims[1],
                         (long long)t->global_rows, (long long)t->d);
        H5Tclose(ty);
        H5Sclose(fs);
        H5Dclose(ds);
    }
    if (sr_comm_agree(c, err) != SR_OK) {
        H5Fclose(f);
        return err->code;
    }
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    /* Independent transfers: each rank moves its own disjoint rows, and Open
     * MPI 4.1's default ompio returned wrong data for some collective reads. */
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_INDEPENDENT);
    int bad = 0;
    for (int i = 0; i < ntables; i++) {
        const sr_ckpt_table *t = &tables[i];
        hid_t ds = H5Dopen2(f, t->name, H5P_DEFAULT);
        hid_t fs = H5Dget_space(ds);
        select_rows(fs, t, c->rank);
        hsize_t mdims[2] = {(hsize_t)(t->local_rows ? t->local_rows : 1), (hsize_t)t->d};
        hid_t ms = H5Screate_simple(2, mdims, NULL);
        float dummy[1];
        if (t->local_rows == 0) H5Sselect_none(ms);
        bad |= H5Dread(ds, H5T_NATIVE_FLOAT, ms, fs, dxpl, t->local_rows ? t->data : dummy) < 0;
        H5Sclose(ms);
        H5Sclose(fs);
        H5Dclose(ds);
    }
    H5Pclose(dxpl);
    if (info) {
        memset(info, 0, sizeof *info);
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
    }
    H5Fclose(f);
    if (bad) sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: reading the checkpoint tables failed", path);
    return sr_comm_agree(c, err);
}
