/* reorder.c: METIS renumbering of a dataset for LightGCN's block sharding
 * (see reorder.h). */
#include "io/reorder.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <metis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "core/log.h"
#include "io/dataset.h"
#include "io/h5util.h"

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* ---- partition ----------------------------------------------------------- */

sr_status sr_reorder_partition(int64_t U, int64_t N, const int64_t *indptr, const int64_t *items, int64_t parts,
                               uint64_t seed, int64_t *upart, int64_t *ipart, int64_t *cut, sr_error *err)
{
    if (parts < 1) SR_FAIL(err, SR_ERR_USAGE, "--parts %lld: expected at least 1", (long long)parts);
    if (parts > U)
        SR_FAIL(err, SR_ERR_USAGE, "--parts %lld exceeds the number of users (%lld)", (long long)parts, (long long)U);
    *cut = 0;
    if (parts == 1) {
        memset(upart, 0, (size_t)U * sizeof *upart);
        memset(ipart, 0, (size_t)N * sizeof *ipart);
        return SR_OK;
    }
    int64_t nnz = indptr[U] - indptr[0];
    if (U + N > INT32_MAX || 2 * nnz > INT32_MAX)
        SR_FAIL(err, SR_ERR_DATA, "reorder: %lld vertices and %lld train pairs exceed METIS's 32-bit indices",
                (long long)(U + N), (long long)nnz);
    idx_t nv = (idx_t)(U + N);
    idx_t *xadj = calloc((size_t)nv + 1, sizeof *xadj);
    idx_t *adj = malloc((size_t)(2 * nnz + 1) * sizeof *adj);
    idx_t *wgt = malloc((size_t)(2 * nnz + 1) * sizeof *wgt);
    idx_t *vw = malloc((size_t)nv * 2 * sizeof *vw);
    idx_t *part = malloc((size_t)nv * sizeof *part);
    int64_t *row = malloc((size_t)(nnz + 1) * sizeof *row);
    idx_t *mult = malloc((size_t)(nnz + 1) * sizeof *mult);
    int64_t *ue = malloc((size_t)(U + 1) * sizeof *ue); /* distinct pairs before user u (in row[]) */
    sr_status st = SR_OK;
    if (!xadj || !adj || !wgt || !vw || !part || !row || !mult || !ue) {
        st = sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "reorder: out of memory for a graph of %lld edges",
                          (long long)nnz);
        goto done;
    }
    /* Distinct items per user, sorted (row[] holds them packed), and degrees. */
    ue[0] = 0;
    for (int64_t u = 0; u < U; u++) {
        int64_t a = indptr[u] - indptr[0], n = indptr[u + 1] - indptr[u], k = ue[u];
        memcpy(row + k, items + a, (size_t)n * sizeof *row);
        qsort(row + k, (size_t)n, sizeof *row, cmp_i64);
        int64_t m = 0;
        for (int64_t j = 0; j < n; j++) {
            if (m > 0 && row[k + j] == row[k + m - 1]) {
                mult[k + m - 1]++;
                continue;
            }
            row[k + m] = row[k + j];
            mult[k + m++] = 1;
        }
        ue[u + 1] = k + m;
        xadj[u + 1] = (idx_t)m;
        for (int64_t j = 0; j < m; j++) xadj[U + row[k + j] + 1]++;
    }
    for (idx_t v = 0; v < nv; v++) xadj[v + 1] += xadj[v];
    /* Fill: user side in row order, item side by a cursor per item. */
    idx_t *cur = part; /* scratch until METIS runs */
    memcpy(cur, xadj, (size_t)nv * sizeof *cur);
    for (int64_t u = 0; u < U; u++) {
        for (int64_t j = ue[u]; j < ue[u + 1]; j++) {
            idx_t iv = (idx_t)(U + row[j]);
            adj[cur[u]] = iv;
            wgt[cur[u]++] = mult[j];
            adj[cur[iv]] = (idx_t)u;
            wgt[cur[iv]++] = mult[j];
        }
    }
    /* One constraint counts users, the other items: both balanced per part. */
    for (idx_t v = 0; v < nv; v++) {
        vw[2 * v] = v < U;
        vw[2 * v + 1] = v >= U;
    }
    idx_t ncon = N > 0 ? 2 : 1, np = (idx_t)parts, objval = 0, opts[METIS_NOPTIONS];
    METIS_SetDefaultOptions(opts);
    opts[METIS_OPTION_SEED] = (idx_t)(seed & 0x7fffffff);
    opts[METIS_OPTION_NUMBERING] = 0;
    int rc = METIS_PartGraphRecursive(&nv, &ncon, xadj, adj, vw, NULL, wgt, &np, NULL, NULL, opts, &objval, part);
    if (rc != METIS_OK) {
        st = sr_error_set(err, SR_ERR_INTERNAL, __FILE__, __LINE__,
                          "reorder: METIS_PartGraphRecursive failed (code %d) on %lld vertices, %lld parts", rc,
                          (long long)nv, (long long)parts);
        goto done;
    }
    *cut = objval;
    for (int64_t u = 0; u < U; u++) upart[u] = part[u];
    for (int64_t i = 0; i < N; i++) ipart[i] = part[U + i];
done:
    free(xadj), free(adj), free(wgt), free(vw), free(part), free(row), free(mult), free(ue);
    return st;
}

/* ---- renumbering and halo --------------------------------------------------- */

int64_t sr_reorder_renumber(int64_t n, int64_t parts, const int64_t *part, int64_t *new_id)
{
    /* The trainer's own block map (shard.h), so the parts line up with it. */
    sr_shard blocks;
    sr_error e;
    sr_error_clear(&e);
    if (sr_shard_init_block(&blocks, n, (int)parts, NULL, &e) != SR_OK) return -1;
    int64_t *at = calloc((size_t)parts + 1, sizeof *at);
    if (!at) {
        sr_shard_destroy(&blocks);
        return -1;
    }
    for (int64_t x = 0; x < n; x++) at[part[x] + 1]++;
    for (int64_t q = 0; q < parts; q++) at[q + 1] += at[q];
    int64_t spilled = 0;
    for (int64_t x = 0; x < n; x++) {
        new_id[x] = at[part[x]]++;
        spilled += sr_shard_owner(&blocks, new_id[x]) != part[x];
    }
    free(at);
    sr_shard_destroy(&blocks);
    return spilled;
}

int64_t sr_reorder_halo(int64_t U, int64_t N, const int64_t *indptr, const int64_t *items, const int64_t *uid,
                        const int64_t *iid, int p, int64_t *rank_rows)
{
    if (rank_rows) memset(rank_rows, 0, (size_t)p * sizeof *rank_rows);
    if (p < 2) return 0;
    /* Users in new-id order, so each rank's users come together. */
    sr_shard ublk = {0}, iblk = {0};
    sr_error e;
    sr_error_clear(&e);
    int64_t *by_new = malloc((size_t)(U + 1) * sizeof *by_new);
    int *stamp = malloc((size_t)(N + 1) * sizeof *stamp);
    if (!by_new || !stamp || sr_shard_init_block(&ublk, U, p, NULL, &e) != SR_OK ||
        sr_shard_init_block(&iblk, N, p, NULL, &e) != SR_OK) {
        free(by_new), free(stamp);
        sr_shard_destroy(&ublk), sr_shard_destroy(&iblk);
        return -1;
    }
    for (int64_t u = 0; u < U; u++) by_new[uid ? uid[u] : u] = u;
    for (int64_t i = 0; i < N; i++) stamp[i] = -1;
    int64_t halo = 0;
    for (int64_t v = 0; v < U; v++) {
        int64_t u = by_new[v];
        int r = sr_shard_owner(&ublk, v);
        for (int64_t k = indptr[u]; k < indptr[u + 1]; k++) {
            int64_t i = items[k - indptr[0]];
            if (stamp[i] == r) continue;
            stamp[i] = r;
            int q = sr_shard_owner(&iblk, iid ? iid[i] : i);
            if (q == r) continue;
            halo++;
            if (rank_rows) rank_rows[r]++, rank_rows[q]++; /* r pushes it, q serves it */
        }
    }
    free(by_new), free(stamp);
    sr_shard_destroy(&ublk), sr_shard_destroy(&iblk);
    return halo;
}

/* ---- the command ------------------------------------------------------------- */

typedef struct graph_in {
    sr_dataset_meta meta;
    sr_csr split[SR_SPLIT_COUNT];
    int64_t *user_ids, *item_ids;   /* raw ids, or NULL */
    int64_t *user_orig, *item_orig; /* the input's /map, or NULL (identity) */
    sr_h5_texts names[2];           /* /map/user_ids, /map/item_ids (n = 0: absent) */
    int has_names[2];
} graph_in;

static void graph_free(graph_in *g)
{
    for (int s = 0; s < SR_SPLIT_COUNT; s++) sr_csr_free(&g->split[s], NULL);
    free(g->user_ids), free(g->item_ids), free(g->user_orig), free(g->item_orig);
    sr_h5_texts_free(&g->names[0]), sr_h5_texts_free(&g->names[1]);
    memset(g, 0, sizeof *g);
}

/* A 1-D int64 read of a whole dataset that the reader already validated. */
static sr_status read_map(hid_t f, const char *path, const char *obj, int64_t n, int64_t **out, sr_error *err)
{
    *out = NULL;
    if (H5Lexists(f, "/map", H5P_DEFAULT) <= 0 || H5Lexists(f, obj, H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return SR_OK;
    }
    int64_t *v = malloc((size_t)(n + 1) * sizeof *v);
    hid_t d = H5Dopen2(f, obj, H5P_DEFAULT);
    herr_t rc = v && d >= 0 ? H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) : -1;
    if (d >= 0) H5Dclose(d);
    if (rc < 0) {
        free(v);
        H5Eclear2(H5E_DEFAULT);
        SR_FAIL(err, SR_ERR_DATA, "%s: %s: cannot read", path, obj);
    }
    *out = v;
    return SR_OK;
}

/* The string id maps (convert stores them when ids are not all integers);
 * the reader already checked their type and length. */
static sr_status read_names(hid_t f, const char *path, graph_in *g, sr_error *err)
{
    static const char *const obj[2] = {"/map/user_ids", "/map/item_ids"};
    for (int k = 0; k < 2; k++) {
        if (H5Lexists(f, "/map", H5P_DEFAULT) <= 0 || H5Lexists(f, obj[k], H5P_DEFAULT) <= 0) {
            H5Eclear2(H5E_DEFAULT);
            continue;
        }
        int64_t n = k ? g->meta.num_items : g->meta.num_users;
        hid_t d = H5Dopen2(f, obj[k], H5P_DEFAULT);
        int rc = d >= 0 ? sr_h5_read_texts(d, H5P_DEFAULT, 0, n, &g->names[k]) : -1;
        if (d >= 0) H5Dclose(d);
        if (rc == SR_H5_NOMEM) SR_FAIL(err, SR_ERR_NOMEM, "%s: %s: allocating the ids: out of memory", path, obj[k]);
        if (rc < 0) {
            char r[256];
            SR_FAIL(err, SR_ERR_DATA, "%s: %s: cannot read (%s)", path, obj[k], sr_h5_reason(r, sizeof r));
        }
        g->has_names[k] = 1;
    }
    return SR_OK;
}

static sr_status load(const char *path, graph_in *g, sr_error *err)
{
    memset(g, 0, sizeof *g);
    sr_comm self;
    SR_TRY(sr_comm_init(&self, MPI_COMM_SELF, err));
    sr_dataset *ds = NULL;
    sr_status st = sr_dataset_open(&ds, &self, path, err);
    if (st == SR_OK) {
        g->meta = *sr_dataset_meta_get(ds);
        for (int s = 0; s < SR_SPLIT_COUNT && st == SR_OK; s++)
            st = sr_dataset_read_split(ds, (sr_split)s, 0, g->meta.num_users, &g->split[s], NULL, err);
        if (st == SR_OK && g->meta.has_id_maps) {
            g->user_ids = malloc((size_t)(g->meta.num_users + 1) * sizeof *g->user_ids);
            g->item_ids = malloc((size_t)(g->meta.num_items + 1) * sizeof *g->item_ids);
            if (!g->user_ids || !g->item_ids)
                st = sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "%s: out of memory for the id maps", path);
            if (st == SR_OK) st = sr_dataset_read_id_map(ds, 0, 0, g->meta.num_users, g->user_ids, err);
            if (st == SR_OK) st = sr_dataset_read_id_map(ds, 1, 0, g->meta.num_items, g->item_ids, err);
        }
    }
    sr_dataset_close(&ds);
    sr_comm_destroy(&self);
    /* The reader checked /map (both or none, permutations); reopen serially
     * to carry it over. */
    if (st == SR_OK) {
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f < 0) {
            H5Eclear2(H5E_DEFAULT);
            st = sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot reopen", path);
        } else {
            st = read_map(f, path, "/map/user_orig_id", g->meta.num_users, &g->user_orig, err);
            if (st == SR_OK) st = read_map(f, path, "/map/item_orig_id", g->meta.num_items, &g->item_orig, err);
            if (st == SR_OK) st = read_names(f, path, g, err);
            H5Fclose(f);
        }
    }
    if (st != SR_OK) graph_free(g);
    return st;
}

/* Users appended in new-id order, item ids renamed, rows kept in order. */
static sr_status write_splits(sr_dataset_writer *w, const graph_in *g, const int64_t *uinv, const int64_t *iid,
                              sr_error *err)
{
    enum { BLOCK = 4096 };
    const int64_t U = g->meta.num_users;
    int64_t *ip[SR_SPLIT_COUNT] = {0}, *it[SR_SPLIT_COUNT] = {0}, *tm[SR_SPLIT_COUNT] = {0};
    sr_status st = SR_OK;
    for (int s = 0; s < SR_SPLIT_COUNT; s++) {
        /* Worst case a block holds the whole split. */
        size_t cap = (size_t)g->split[s].nnz + 1;
        ip[s] = malloc((BLOCK + 1) * sizeof *ip[s]);
        it[s] = malloc(cap * sizeof *it[s]);
        tm[s] = g->meta.has_time ? malloc(cap * sizeof *tm[s]) : NULL;
        if (!ip[s] || !it[s] || (g->meta.has_time && !tm[s]))
            st = sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "reorder: out of memory for the output rows");
    }
    for (int64_t v0 = 0; v0 < U && st == SR_OK; v0 += BLOCK) {
        int64_t n = U - v0 < BLOCK ? U - v0 : BLOCK;
        for (int s = 0; s < SR_SPLIT_COUNT; s++) {
            const sr_csr *m = &g->split[s];
            ip[s][0] = 0;
            for (int64_t v = 0; v < n; v++) {
                int64_t u = uinv[v0 + v], a = m->indptr[u], b = m->indptr[u + 1], o = ip[s][v];
                for (int64_t k = a; k < b; k++) {
                    it[s][o + k - a] = iid[m->items[k]];
                    if (tm[s]) tm[s][o + k - a] = m->time[k];
                }
                ip[s][v + 1] = o + b - a;
            }
        }
        const int64_t *const cip[] = {ip[0], ip[1], ip[2]}, *const cit[] = {it[0], it[1], it[2]};
        const int64_t *const ctm[] = {tm[0], tm[1], tm[2]};
        st = sr_dataset_writer_append(w, n, cip, cit, g->meta.has_time ? ctm : NULL, err);
    }
    for (int s = 0; s < SR_SPLIT_COUNT; s++) free(ip[s]), free(it[s]), free(tm[s]);
    return st;
}

/* The string id maps in the new order: name of new id uid[u] = old name u. */
static sr_status write_names(sr_dataset_writer *w, const graph_in *g, const int64_t *uid, const int64_t *iid,
                             sr_error *err)
{
    if (!g->has_names[0] && !g->has_names[1]) return SR_OK;
    const int64_t U = g->meta.num_users, N = g->meta.num_items;
    const char **un = g->has_names[0] ? malloc((size_t)(U + 1) * sizeof *un) : NULL;
    const char **in = g->has_names[1] ? malloc((size_t)(N + 1) * sizeof *in) : NULL;
    if ((g->has_names[0] && !un) || (g->has_names[1] && !in)) {
        free(un), free(in);
        SR_FAIL(err, SR_ERR_NOMEM, "reorder: out of memory for %lld id names", (long long)(U + N));
    }
    for (int64_t u = 0; un && u < U; u++) un[uid[u]] = g->names[0].text[u];
    for (int64_t i = 0; in && i < N; i++) in[iid[i]] = g->names[1].text[i];
    sr_status st = sr_dataset_writer_set_id_names(w, un, in, err);
    free(un), free(in);
    return st;
}

static sr_status write_i64(hid_t loc, const char *path, const char *name, int64_t n, const int64_t *v, sr_error *err)
{
    hsize_t dim = (hsize_t)n;
    hid_t sp = H5Screate_simple(1, &dim, NULL);
    hid_t d = sp >= 0 ? H5Dcreate2(loc, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    herr_t rc = d >= 0 && n > 0 ? H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) : (d >= 0 ? 0 : -1);
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (rc < 0) {
        H5Eclear2(H5E_DEFAULT);
        SR_FAIL(err, SR_ERR_IO, "%s: cannot write /map/%s", path, name);
    }
    return SR_OK;
}

static sr_status write_attr(hid_t loc, const char *path, const char *name, const char *s, int64_t v, sr_error *err)
{
    hid_t sp = H5Screate(H5S_SCALAR), t = H5I_INVALID_HID;
    if (s) {
        t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, strlen(s) + 1);
    }
    hid_t a = H5Acreate2(loc, name, s ? t : H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a >= 0 ? H5Awrite(a, s ? t : H5T_NATIVE_INT64, s ? (const void *)s : (const void *)&v) : -1;
    if (a >= 0) H5Aclose(a);
    if (t >= 0) H5Tclose(t);
    H5Sclose(sp);
    if (rc < 0) {
        H5Eclear2(H5E_DEFAULT);
        SR_FAIL(err, SR_ERR_IO, "%s: cannot write attribute /map %s", path, name);
    }
    return SR_OK;
}

/* Room for the /map group before HDF5 writes it: as in the dataset writer,
 * a full disk met inside HDF5 (its flush at H5Fclose) leaves a broken file
 * id that crashes MPI_Finalize, so the bytes are allocated first. Returns 0
 * or the errno. */
static int reserve_maps(int fd, int64_t U, int64_t N, int64_t *bound)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return errno;
    *bound = (int64_t)st.st_size + (U + N) * 8 + ((int64_t)128 << 10);
    return posix_fallocate(fd, 0, (off_t)*bound);
}

static sr_status fill_maps(hid_t f, const char *stage, const sr_reorder_opts *o, int64_t U, int64_t N,
                           const int64_t *uorig, const int64_t *iorig, sr_error *err)
{
    /* The writer made /map already when it stored string id maps. */
    int have = H5Lexists(f, "map", H5P_DEFAULT) > 0;
    H5Eclear2(H5E_DEFAULT);
    hid_t g = have ? H5Gopen2(f, "map", H5P_DEFAULT) : H5Gcreate2(f, "map", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    sr_status st = g >= 0 ? SR_OK : sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot create /map", stage);
    if (st == SR_OK) st = write_i64(g, stage, "user_orig_id", U, uorig, err);
    if (st == SR_OK) st = write_i64(g, stage, "item_orig_id", N, iorig, err);
    if (st == SR_OK) st = write_attr(g, stage, "parts", NULL, o->parts, err);
    if (st == SR_OK) st = write_attr(g, stage, "seed", NULL, (int64_t)o->seed, err);
    if (st == SR_OK)
        st = write_attr(g, stage, "method",
                        "METIS_PartGraphRecursive on the train user-item graph, ncon = 2 (users, items)", 0, err);
    if (g >= 0) H5Gclose(g);
    return st;
}

/* The /map group on a committed (not yet renamed) file. */
static sr_status write_maps(const char *stage, const sr_reorder_opts *o, int64_t U, int64_t N, const int64_t *uorig,
                            const int64_t *iorig, sr_error *err)
{
    int fd = open(stage, O_WRONLY);
    int64_t bound = 0;
    int e = fd < 0 ? errno : reserve_maps(fd, U, N, &bound);
    if (e) {
        if (fd >= 0) close(fd);
        SR_FAIL(err, SR_ERR_IO, "%s: cannot write: no room for %lld bytes in %s (%s)", o->output, (long long)bound,
                stage, strerror(e));
    }
    hid_t f = H5Fopen(stage, H5F_ACC_RDWR, H5P_DEFAULT);
    sr_status st = SR_OK;
    if (f < 0) {
        char r[256];
        st = sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot reopen to add /map (%s)", stage,
                          sr_h5_reason(r, sizeof r));
    }
    if (st == SR_OK) st = fill_maps(f, stage, o, U, N, uorig, iorig, err);
    if (f >= 0 && H5Fclose(f) < 0 && st == SR_OK)
        st = sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot close", stage);
    H5Eclear2(H5E_DEFAULT);
    /* Give back the reservation HDF5 did not use, then sync. */
    int64_t eoa = st == SR_OK ? sr_h5_file_eoa(stage) : -1;
    if (st == SR_OK && (eoa < 0 || eoa > bound))
        st = sr_error_set(err, SR_ERR_INTERNAL, __FILE__, __LINE__, "%s: end of allocation %lld beyond %lld bytes",
                          stage, (long long)eoa, (long long)bound);
    if (st == SR_OK && (ftruncate(fd, (off_t)eoa) != 0 || fsync(fd) != 0))
        st = sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot write %s: %s", o->output, stage,
                          strerror(errno));
    close(fd);
    return st;
}

static void levels(const graph_in *g, const int64_t *uid, const int64_t *iid, int64_t parts, sr_reorder_report *rep)
{
    const sr_csr *tr = &g->split[SR_SPLIT_TRAIN];
    rep->levels = 0;
    for (int64_t p = parts; p >= 2 && rep->levels < SR_REORDER_LEVELS; p /= 2) {
        int l = rep->levels++;
        rep->ranks[l] = p;
        rep->halo_before[l] = sr_reorder_halo(g->meta.num_users, g->meta.num_items, tr->indptr, tr->items, NULL,
                                              NULL, (int)p, NULL);
        rep->halo_after[l] = sr_reorder_halo(g->meta.num_users, g->meta.num_items, tr->indptr, tr->items, uid, iid,
                                             (int)p, NULL);
        if (p % 2) break; /* odd: halves no longer line up with parts */
    }
}

sr_status sr_reorder_run(const sr_reorder_opts *o, sr_reorder_report *rep, sr_error *err)
{
    sr_reorder_report local;
    if (!rep) rep = &local;
    memset(rep, 0, sizeof *rep);
    if (!o->input) SR_FAIL(err, SR_ERR_USAGE, "reorder: --input is required");
    if (!o->output) SR_FAIL(err, SR_ERR_USAGE, "reorder: --output is required");
    if (o->parts < 1) SR_FAIL(err, SR_ERR_USAGE, "reorder: --parts %lld: expected at least 1", (long long)o->parts);
    SR_TRY(sr_dataset_check_output(o->output, o->overwrite, err));
    graph_in g;
    SR_TRY(load(o->input, &g, err));
    const int64_t U = g.meta.num_users, N = g.meta.num_items;
    rep->num_users = U, rep->num_items = N;
    for (int s = 0; s < SR_SPLIT_COUNT; s++) rep->nnz[s] = g.meta.nnz[s];
    int64_t *buf = malloc((size_t)(4 * (U + N) + 8) * sizeof *buf);
    int64_t *mapped = malloc((size_t)(2 * (U + N) + 4) * sizeof *mapped);
    sr_dataset_writer *w = NULL;
    char stage[4200];
    stage[0] = '\0';
    sr_status st = SR_OK;
    if (!buf || !mapped) {
        st = sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "reorder: out of memory for %lld ids",
                          (long long)(U + N));
        goto done;
    }
    if (o->parts > U) {
        st = sr_error_set(err, SR_ERR_USAGE, __FILE__, __LINE__, "reorder: --parts %lld exceeds the %lld users of %s",
                          (long long)o->parts, (long long)U, o->input);
        goto done;
    }
    int64_t *upart = buf, *ipart = buf + U + 1, *uid = buf + 2 * (U + N) + 2, *iid = uid + U + 1;
    int64_t *uorig = mapped, *iorig = mapped + U + 1, *uraw = iorig + N + 1, *iraw = uraw + U + 1;
    double t0 = sr_time_now();
    const sr_csr *tr = &g.split[SR_SPLIT_TRAIN];
    st = sr_reorder_partition(U, N, tr->indptr, tr->items, o->parts, o->seed, upart, ipart, &rep->cut, err);
    if (st != SR_OK) goto done;
    rep->seconds_partition = sr_time_now() - t0;
    rep->spilled_users = sr_reorder_renumber(U, o->parts, upart, uid);
    rep->spilled_items = sr_reorder_renumber(N, o->parts, ipart, iid);
    levels(&g, uid, iid, o->parts, rep);
    /* Inverses: uorig[new] = old (composed with the input's own /map). */
    for (int64_t u = 0; u < U; u++) uorig[uid[u]] = g.user_orig ? g.user_orig[u] : u;
    for (int64_t i = 0; i < N; i++) iorig[iid[i]] = g.item_orig ? g.item_orig[i] : i;
    int64_t *uinv = upart; /* partition no longer needed */
    for (int64_t u = 0; u < U; u++) uinv[uid[u]] = u;
    if (g.user_ids) {
        for (int64_t u = 0; u < U; u++) uraw[uid[u]] = g.user_ids[u];
        for (int64_t i = 0; i < N; i++) iraw[iid[i]] = g.item_ids[i];
    }

    snprintf(stage, sizeof stage, "%s.reorder.%ld", o->output, (long)getpid());
    sr_dataset_attrs at = {g.meta.name, g.meta.source, g.meta.source_sha256, g.meta.split_protocol,
                           g.meta.split_seed, g.meta.has_time, g.meta.source_files[0] ? g.meta.source_files : NULL};
    st = sr_dataset_writer_create(&w, stage, U, N, &at, err);
    if (st == SR_OK) st = write_splits(w, &g, uinv, iid, err);
    if (st == SR_OK && g.user_ids) st = sr_dataset_writer_set_id_maps(w, uraw, iraw, err);
    if (st == SR_OK) st = write_names(w, &g, uid, iid, err);
    if (st == SR_OK) st = sr_dataset_writer_commit(w, err);
    sr_dataset_writer_abort(&w);
    if (st == SR_OK) st = write_maps(stage, o, U, N, uorig, iorig, err);
    if (st == SR_OK && rename(stage, o->output) != 0)
        st = sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot rename %s into place: %s", o->output,
                          stage, strerror(errno));
    if (st == SR_OK) stage[0] = '\0';
done:
    if (stage[0]) unlink(stage);
    free(buf), free(mapped);
    graph_free(&g);
    return st;
}
