/* h5check.c: structural and schema checks of untrusted HDF5 files (see
 * h5check.h). HDF5's automatic error printing is switched off by callers;
 * every failure here becomes one sr_error line. */
#include "io/h5check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sr_h5_dtype_name(hid_t t, char *buf, size_t n)
{
    size_t bits = H5Tget_size(t) * 8;
    switch (H5Tget_class(t)) {
    case H5T_INTEGER:
        snprintf(buf, n, "%s%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "uint" : "int", bits);
        break;
    case H5T_FLOAT: snprintf(buf, n, "float%zu", bits); break;
    case H5T_STRING: snprintf(buf, n, "string"); break;
    case H5T_COMPOUND: snprintf(buf, n, "compound"); break;
    case H5T_ENUM: snprintf(buf, n, "enum"); break;
    default: snprintf(buf, n, "non-numeric type"); break;
    }
}

static const char *class_want(sr_h5_class c)
{
    switch (c) {
    case SR_H5_INTEGER: return "an integer type";
    case SR_H5_FLOAT: return "a floating-point type";
    case SR_H5_STRING: return "a string";
    default: return "any type";
    }
}

/* ---- whole-file scan ------------------------------------------------------ */

typedef struct scan_ctx {
    const char *path;
    sr_error *err;
    int64_t links;
    sr_status st;
} scan_ctx;

static int filter_allowed(H5Z_filter_t id)
{
    return id == H5Z_FILTER_DEFLATE || id == H5Z_FILTER_SHUFFLE || id == H5Z_FILTER_FLETCHER32;
}

/* Storage properties of one dataset: raw data must live in this file and
 * need no plugin to decode. */
static sr_status check_storage(hid_t d, const char *path, const char *obj, sr_error *err)
{
    hid_t dcpl = H5Dget_create_plist(d);
    if (dcpl < 0) SR_FAIL(err, SR_ERR_DATA, "%s: %s: cannot read its creation properties", path, obj);
    sr_status st = SR_OK;
    if (H5Pget_external_count(dcpl) != 0) {
        st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                          "%s: %s: uses external storage (raw data in another file), not allowed", path, obj);
    } else if (H5Pget_layout(dcpl) == H5D_VIRTUAL) {
        st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                          "%s: %s: is a virtual dataset (data in other files), not allowed", path, obj);
    } else {
        int nf = H5Pget_nfilters(dcpl);
        if (nf < 0 || nf > 8)
            st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: unreadable filter pipeline", path, obj);
        for (int i = 0; i < nf && st == SR_OK; i++) {
            unsigned flags = 0, cd[8];
            size_t ncd = 8;
            char name[64] = "";
            H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof name, name, NULL);
            if (id < 0 || !filter_allowed(id))
                st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                                  "%s: %s: uses filter %d, not allowed (allowed: deflate, shuffle, fletcher32)", path,
                                  obj, (int)id);
        }
    }
    H5Pclose(dcpl);
    return st;
}

static herr_t scan_link(hid_t g, const char *name, const H5L_info_t *li, void *op)
{
    scan_ctx *s = op;
    char obj[512];
    snprintf(obj, sizeof obj, "/%s", name);
    if (++s->links > SR_H5CHECK_MAX_LINKS) {
        s->st = sr_error_set(s->err, SR_ERR_DATA, __FILE__, __LINE__, "%s: more than %d links, not a softrec file",
                             s->path, SR_H5CHECK_MAX_LINKS);
        return 1;
    }
    if (li->type == H5L_TYPE_EXTERNAL) {
        s->st = sr_error_set(s->err, SR_ERR_DATA, __FILE__, __LINE__,
                             "%s: %s: is an external link to another file, not allowed", s->path, obj);
        return 1;
    }
    if (li->type != H5L_TYPE_HARD) {
        s->st = sr_error_set(s->err, SR_ERR_DATA, __FILE__, __LINE__,
                             "%s: %s: is a soft or user-defined link, not allowed", s->path, obj);
        return 1;
    }
    H5O_info_t oi;
    if (H5Oget_info_by_name2(g, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
        s->st = sr_error_set(s->err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: cannot read object header", s->path,
                             obj);
        return 1;
    }
    if (oi.type == H5O_TYPE_DATASET) {
        hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
        if (d < 0) {
            s->st = sr_error_set(s->err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: cannot open dataset", s->path,
                                 obj);
            return 1;
        }
        s->st = check_storage(d, s->path, obj, s->err);
        H5Dclose(d);
        if (s->st != SR_OK) return 1;
    }
    return 0;
}

sr_status sr_h5check_scan(hid_t file, const char *path, sr_error *err)
{
    scan_ctx s = {path, err, 0, SR_OK};
    herr_t rc = H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, scan_link, &s);
    if (s.st != SR_OK) {
        H5Eclear2(H5E_DEFAULT);
        return s.st;
    }
    if (rc < 0) {
        H5Eclear2(H5E_DEFAULT);
        SR_FAIL(err, SR_ERR_DATA, "%s: cannot walk the group structure (damaged metadata)", path);
    }
    return SR_OK;
}

/* ---- one object ----------------------------------------------------------- */

static void shape_text(int nd, const hsize_t *dims, char *buf, size_t n)
{
    if (nd == 2) snprintf(buf, n, "%llux%llu", (unsigned long long)dims[0], (unsigned long long)dims[1]);
    else if (nd == 1) snprintf(buf, n, "[%llu]", (unsigned long long)dims[0]);
    else snprintf(buf, n, "rank-%d", nd);
}

static void want_text(const sr_h5check_obj *o, char *buf, size_t n)
{
    char a[32], b[32];
    if (o->dims[0] >= 0) snprintf(a, sizeof a, "%lld", (long long)o->dims[0]);
    else snprintf(a, sizeof a, "*");
    if (o->dims[1] >= 0) snprintf(b, sizeof b, "%lld", (long long)o->dims[1]);
    else snprintf(b, sizeof b, "*");
    if (o->ndims == 2) snprintf(buf, n, "%sx%s", a, b);
    else snprintf(buf, n, "[%s]", a);
}

sr_status sr_h5check_object(hid_t file, const char *path, const sr_h5check_obj *o, int *exists, sr_error *err)
{
    *exists = 0;
    /* H5Lexists fails when a parent group is missing: same as absent. */
    htri_t ex = H5Lexists(file, o->path, H5P_DEFAULT);
    if (ex > 0) {
        /* Intermediate groups exist too; the last link must be hard. */
        H5L_info_t li;
        if (H5Lget_info(file, o->path, &li, H5P_DEFAULT) < 0)
            ex = -1;
        else if (li.type == H5L_TYPE_EXTERNAL)
            SR_FAIL(err, SR_ERR_DATA, "%s: %s: is an external link to another file, not allowed", path, o->path);
        else if (li.type != H5L_TYPE_HARD)
            SR_FAIL(err, SR_ERR_DATA, "%s: %s: is a soft or user-defined link, not allowed", path, o->path);
    }
    if (ex <= 0) {
        H5Eclear2(H5E_DEFAULT);
        if (o->required) SR_FAIL(err, SR_ERR_DATA, "%s: missing dataset %s", path, o->path);
        return SR_OK;
    }
    H5O_info_t oi;
    if (H5Oget_info_by_name2(file, o->path, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET) {
        H5Eclear2(H5E_DEFAULT);
        SR_FAIL(err, SR_ERR_DATA, "%s: %s: is not a dataset", path, o->path);
    }
    hid_t d = H5Dopen2(file, o->path, H5P_DEFAULT);
    if (d < 0) {
        H5Eclear2(H5E_DEFAULT);
        SR_FAIL(err, SR_ERR_DATA, "%s: %s: cannot open dataset", path, o->path);
    }
    *exists = 1;
    sr_status st = check_storage(d, path, o->path, err);
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    char tn[32];
    if (st != SR_OK) {
        /* reported */
    } else if (t < 0 || sp < 0) {
        st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: cannot read its type or shape", path,
                          o->path);
    } else {
        H5T_class_t tc = H5Tget_class(t);
        size_t sz = H5Tget_size(t);
        int cls_ok = o->cls == SR_H5_ANY || (o->cls == SR_H5_INTEGER && tc == H5T_INTEGER) ||
                     (o->cls == SR_H5_FLOAT && tc == H5T_FLOAT) || (o->cls == SR_H5_STRING && tc == H5T_STRING);
        sr_h5_dtype_name(t, tn, sizeof tn);
        if (!cls_ok) {
            st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: dtype %s, expected %s", path, o->path,
                              tn, class_want(o->cls));
        } else if ((o->size_min && sz < o->size_min) || (o->size_max && sz > o->size_max)) {
            st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                              "%s: %s: dtype %s (%zu bytes), expected %zu to %zu bytes", path, o->path, tn, sz,
                              o->size_min, o->size_max);
        } else if (H5Sget_simple_extent_type(sp) != H5S_SIMPLE) {
            st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: is not a simple array", path, o->path);
        } else {
            int nd = H5Sget_simple_extent_ndims(sp);
            hsize_t dims[H5S_MAX_RANK] = {0};
            if (nd > 0) H5Sget_simple_extent_dims(sp, dims, NULL);
            if (o->ndims >= 0 && nd != o->ndims) {
                st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: has %d dimensions, expected %d-D",
                                  path, o->path, nd, o->ndims);
            } else if (o->ndims > 0) {
                int bad = 0;
                for (int i = 0; i < o->ndims && i < 2; i++)
                    if (o->dims[i] >= 0 && dims[i] != (hsize_t)o->dims[i]) bad = 1;
                if (bad) {
                    char got[64], want[64];
                    shape_text(nd, dims, got, sizeof got);
                    want_text(o, want, sizeof want);
                    st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: shape %s, expected %s", path,
                                      o->path, got, want);
                }
            }
            if (st == SR_OK && o->id_bound >= 0 && (nd != 1 || tc != H5T_INTEGER))
                st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                                  "%s: %s: holds indices, expected a 1-D integer dataset", path, o->path);
        }
    }
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(d);
    H5Eclear2(H5E_DEFAULT);
    return st;
}

/* ---- index ranges ----------------------------------------------------------- */

/* Elements [lo, hi) in range; with seen (a bitmap of id_bound bits), also
 * no value twice (a permutation check, in the same single read). */
static sr_status check_ids_(hid_t file, hid_t dxpl, const char *path, const sr_h5check_obj *o, int64_t lo, int64_t hi,
                            unsigned char *seen, sr_error *err)
{
    if (o->id_bound < 0 || hi <= lo) return SR_OK;
    hid_t d = H5Dopen2(file, o->path, H5P_DEFAULT);
    if (d < 0) {
        H5Eclear2(H5E_DEFAULT);
        SR_FAIL(err, SR_ERR_DATA, "%s: %s: cannot open dataset", path, o->path);
    }
    int64_t cap = hi - lo < SR_H5CHECK_CHUNK ? hi - lo : SR_H5CHECK_CHUNK;
    int64_t *buf = malloc((size_t)cap * sizeof *buf);
    sr_status st = SR_OK;
    if (!buf) st = sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "%s: %s: out of memory", path, o->path);
    hid_t fs = H5Dget_space(d);
    for (int64_t at = lo; st == SR_OK && at < hi; at += cap) {
        hsize_t start = (hsize_t)at, n = (hsize_t)(hi - at < cap ? hi - at : cap);
        hid_t ms = H5Screate_simple(1, &n, NULL);
        herr_t rc = H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &n, NULL);
        if (rc >= 0) rc = H5Dread(d, H5T_NATIVE_INT64, ms, fs, dxpl, buf);
        H5Sclose(ms);
        if (rc < 0) {
            st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: cannot read elements [%lld, %lld)",
                              path, o->path, (long long)at, (long long)(at + (int64_t)n));
            break;
        }
        for (hsize_t k = 0; k < n; k++) {
            if (buf[k] < 0 || buf[k] >= o->id_bound) {
                st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: %s: %s %lld out of range [0, %lld) at position %lld",
                                  path, o->path, o->id_what ? o->id_what : "index", (long long)buf[k],
                                  (long long)o->id_bound, (long long)(at + (int64_t)k));
                break;
            }
            if (!seen) continue;
            int64_t v = buf[k];
            if (seen[v / 8] & (1u << (v % 8))) {
                st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                                  "%s: %s: %s %lld repeated at position %lld (not a permutation)", path, o->path,
                                  o->id_what, (long long)v, (long long)(at + (int64_t)k));
                break;
            }
            seen[v / 8] |= (unsigned char)(1u << (v % 8));
        }
    }
    if (fs >= 0) H5Sclose(fs);
    H5Dclose(d);
    free(buf);
    H5Eclear2(H5E_DEFAULT);
    return st;
}

sr_status sr_h5check_ids(hid_t file, hid_t dxpl, const char *path, const sr_h5check_obj *o, int64_t lo, int64_t hi,
                         sr_error *err)
{
    return check_ids_(file, dxpl, path, o, lo, hi, NULL, err);
}

/* ---- everything, agreed ------------------------------------------------------ */

static sr_status agree(const sr_comm *c, sr_error *err)
{
    if (c) return sr_comm_agree(c, err);
    return err->code;
}

sr_status sr_h5check_run(const sr_comm *c, hid_t file, const char *path, const sr_h5check_obj *objs, int n,
                         sr_error *err)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    sr_h5check_scan(file, path, err);
    if (agree(c, err) != SR_OK) return err->code;
    int *present = calloc((size_t)(n > 0 ? n : 1), sizeof *present);
    if (!present) sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "%s: out of memory", path);
    for (int i = 0; present && i < n && err->code == SR_OK; i++)
        if (sr_h5check_object(file, path, &objs[i], &present[i], err) != SR_OK) break;
    if (agree(c, err) != SR_OK) {
        free(present);
        return err->code;
    }
    /* Index ranges, split in rank order: rank r checks its contiguous slice. */
    hid_t dxpl = H5P_DEFAULT;
    int p = c ? c->size : 1, r = c ? c->rank : 0;
    for (int i = 0; i < n && err->code == SR_OK; i++) {
        if (!present[i] || objs[i].id_bound < 0) continue;
        hid_t d = H5Dopen2(file, objs[i].path, H5P_DEFAULT);
        hid_t sp = d >= 0 ? H5Dget_space(d) : H5I_INVALID_HID;
        hsize_t len = 0;
        if (sp >= 0) H5Sget_simple_extent_dims(sp, &len, NULL);
        if (sp >= 0) H5Sclose(sp);
        if (d >= 0) H5Dclose(d);
        int64_t L = (int64_t)len;
        int64_t lo = L / p * r + (r < L % p ? r : L % p);
        int64_t hi = lo + L / p + (r < L % p ? 1 : 0);
        sr_h5check_ids(file, dxpl, path, &objs[i], lo, hi, err);
    }
    free(present);
    return agree(c, err);
}

sr_status sr_h5check_path(const char *path, const sr_h5check_obj *objs, int n, sr_error *err)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        H5Eclear2(H5E_DEFAULT);
        SR_FAIL(err, SR_ERR_DATA, "%s: cannot open as HDF5", path);
    }
    sr_status st = sr_h5check_run(NULL, f, path, objs, n, err);
    H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    return st;
}

/* ---- renumbering maps (data reorder) ----------------------------------------- */

/* Every value in [0, n) exactly once: range and repeats in one read. */
static sr_status check_permutation(hid_t file, const char *path, const sr_h5check_obj *o, sr_error *err)
{
    unsigned char *seen = calloc((size_t)(o->dims[0] / 8 + 1), 1);
    if (!seen) SR_FAIL(err, SR_ERR_NOMEM, "%s: %s: out of memory", path, o->path);
    sr_status st = check_ids_(file, H5P_DEFAULT, path, o, 0, o->dims[0], seen, err);
    free(seen);
    return st;
}

sr_status sr_h5check_id_maps(hid_t file, const char *path, int64_t num_users, int64_t num_items, sr_error *err)
{
    const sr_h5check_obj maps[2] = {
        {"/map/user_orig_id", 0, SR_H5_INTEGER, 4, 8, 1, {num_users, -1}, num_users, "user id"},
        {"/map/item_orig_id", 0, SR_H5_INTEGER, 4, 8, 1, {num_items, -1}, num_items, "item id"}};
    int have[2];
    for (int k = 0; k < 2; k++) SR_TRY(sr_h5check_object(file, path, &maps[k], &have[k], err));
    if (have[0] != have[1])
        SR_FAIL(err, SR_ERR_DATA, "%s: %s without %s (the renumbering maps come in pairs)", path,
                maps[have[1]].path, maps[have[0]].path);
    for (int k = 0; k < 2 && have[k]; k++) SR_TRY(check_permutation(file, path, &maps[k], err));
    return SR_OK;
}
