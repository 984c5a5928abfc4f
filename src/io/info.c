/* info.c: dataset statistics: sizes, density, per-user extremes, popularity
 * skew (Gini, top-1% share, max/median), provenance. */
#include "io/info.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Popularity figures from the sorted (ascending) counts. */
static void popularity_stats(sr_data_info *in, int64_t *pop, int64_t n)
{
    qsort(pop, (size_t)n, sizeof *pop, cmp_i64);
    double sum = 0, wsum = 0;
    for (int64_t i = 0; i < n; i++) {
        sum += (double)pop[i];
        wsum += (double)(i + 1) * (double)pop[i];
        if (pop[i] == 0) in->cold_items++;
    }
    /* Gini of a sorted sample: 2 sum(i x_i) / (n sum x) - (n + 1) / n. */
    in->gini = (n > 0 && sum > 0) ? 2.0 * wsum / ((double)n * sum) - (double)(n + 1) / (double)n : 0.0;
    in->top1_items = n > 0 ? (n + 99) / 100 : 0;
    double top = 0;
    for (int64_t i = n - in->top1_items; i < n; i++) top += (double)pop[i];
    in->top1_share = sum > 0 ? top / sum : 0.0;
    in->pop_max = n > 0 ? pop[n - 1] : 0;
    in->pop_median = n == 0 ? 0.0 : (n % 2 ? (double)pop[n / 2] : 0.5 * ((double)pop[n / 2 - 1] + (double)pop[n / 2]));
}

sr_status sr_data_info_compute(const sr_comm *c, const char *path, sr_data_info *in, sr_error *err)
{
    memset(in, 0, sizeof *in);
    snprintf(in->path, sizeof in->path, "%s", path);
    sr_dataset *ds = NULL;
    SR_TRY(sr_dataset_open(&ds, c, path, err));
    const sr_dataset_meta *m = sr_dataset_meta_get(ds);
    in->meta = *m;
    for (int s = 0; s < SR_SPLIT_COUNT; s++) in->total += m->nnz[s];
    in->density = (m->num_users > 0 && m->num_items > 0)
                      ? (double)in->total / ((double)m->num_users * (double)m->num_items)
                      : 0.0;
    int64_t u0, u1;
    sr_dataset_user_range(m->num_users, c->size, c->rank, &u0, &u1);
    /* local: with, -min, max per split, reduced with one MAX and one SUM */
    int64_t with[SR_SPLIT_COUNT] = {0}, ext[2 * SR_SPLIT_COUNT];
    for (int s = 0; s < SR_SPLIT_COUNT; s++) {
        ext[2 * s] = -INT64_MAX; /* -min */
        ext[2 * s + 1] = 0;
        sr_csr csr;
        sr_status st = sr_dataset_read_split(ds, (sr_split)s, u0, u1, &csr, NULL, err);
        if (st != SR_OK) {
            sr_dataset_close(&ds);
            return st; /* agreed inside read_split */
        }
        for (int64_t u = 0; u < u1 - u0; u++) {
            int64_t len = csr.indptr[u + 1] - csr.indptr[u];
            if (len > 0) with[s]++;
            if (-len > ext[2 * s]) ext[2 * s] = -len;
            if (len > ext[2 * s + 1]) ext[2 * s + 1] = len;
        }
        sr_csr_free(&csr, NULL);
    }
    int64_t gwith[SR_SPLIT_COUNT] = {0}, gext[2 * SR_SPLIT_COUNT] = {0};
    /* A failure is agreed together with the allocation below. */
    if (SR_MPI_CHECK(err, MPI_Allreduce(with, gwith, SR_SPLIT_COUNT, MPI_INT64_T, MPI_SUM, c->comm)) == SR_OK)
        SR_MPI_CHECK(err, MPI_Allreduce(ext, gext, 2 * SR_SPLIT_COUNT, MPI_INT64_T, MPI_MAX, c->comm));
    for (int s = 0; s < SR_SPLIT_COUNT; s++) {
        in->users_with[s] = gwith[s];
        in->row_min[s] = m->num_users > 0 ? -gext[2 * s] : 0;
        in->row_max[s] = gext[2 * s + 1];
    }
    /* Popularity on rank 0 (everyone joins the collective read). */
    int64_t n = c->rank == 0 ? m->num_items : 0;
    int64_t *pop = malloc((size_t)(n ? n : 1) * sizeof *pop);
    if (!pop) sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "%s: out of memory for popularity", path);
    sr_status st = sr_comm_agree(c, err);
    if (st == SR_OK) st = sr_dataset_read_popularity(ds, 0, n, pop, err);
    if (st == SR_OK && c->rank == 0) {
        int64_t sum = 0;
        for (int64_t i = 0; i < n; i++) sum += pop[i];
        if (sum != m->nnz[SR_SPLIT_TRAIN])
            sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                         "%s: /item_popularity: sums to %lld, expected the length of /train/items (%lld)", path,
                         (long long)sum, (long long)m->nnz[SR_SPLIT_TRAIN]);
        else popularity_stats(in, pop, n);
    }
    if (st == SR_OK) st = sr_comm_agree(c, err);
    free(pop);
    sr_dataset_close(&ds);
    return st;
}

json_t *sr_data_info_json(const sr_data_info *in)
{
    const sr_dataset_meta *m = &in->meta;
    json_t *inter = json_object(), *users = json_object(), *pop = json_object(), *prov = json_object();
    json_t *o = json_object();
    for (int s = 0; s < SR_SPLIT_COUNT; s++) json_object_set_new(inter, sr_split_name((sr_split)s), json_integer(m->nnz[s]));
    json_object_set_new(inter, "total", json_integer(in->total));
    for (int s = 0; s < SR_SPLIT_COUNT; s++) {
        char k[48];
        snprintf(k, sizeof k, "with_%s", sr_split_name((sr_split)s));
        json_object_set_new(users, k, json_integer(in->users_with[s]));
        snprintf(k, sizeof k, "%s_min", sr_split_name((sr_split)s));
        json_object_set_new(users, k, json_integer(in->row_min[s]));
        snprintf(k, sizeof k, "%s_max", sr_split_name((sr_split)s));
        json_object_set_new(users, k, json_integer(in->row_max[s]));
    }
    json_object_set_new(users, "train_mean",
                        json_real(m->num_users ? (double)m->nnz[SR_SPLIT_TRAIN] / (double)m->num_users : 0.0));
    json_object_set_new(pop, "gini", json_real(in->gini));
    json_object_set_new(pop, "top1pct_items", json_integer(in->top1_items));
    json_object_set_new(pop, "top1pct_share", json_real(in->top1_share));
    json_object_set_new(pop, "max", json_integer(in->pop_max));
    json_object_set_new(pop, "median", json_real(in->pop_median));
    json_object_set_new(pop, "cold_items", json_integer(in->cold_items));
    json_object_set_new(prov, "source", json_string(m->source));
    json_object_set_new(prov, "source_sha256", json_string(m->source_sha256));
    json_object_set_new(prov, "source_files", json_string(m->source_files));
    json_object_set_new(prov, "split_protocol", json_string(m->split_protocol));
    json_object_set_new(prov, "split_seed", json_integer(m->split_seed));
    json_object_set_new(prov, "created_by", json_string(m->created_by));
    /* The digest the run fingerprint uses; _computed: the file has no
     * content_sha256 attribute, so it was computed at open. */
    json_object_set_new(prov, "content_sha256", json_string(m->content_sha256));
    json_object_set_new(prov, "content_sha256_computed", json_boolean(m->content_computed));
    json_object_set_new(o, "file", json_string(in->path));
    json_object_set_new(o, "name", json_string(m->name));
    json_object_set_new(o, "format_version", json_integer(m->format_version));
    json_object_set_new(o, "num_users", json_integer(m->num_users));
    json_object_set_new(o, "num_items", json_integer(m->num_items));
    json_object_set_new(o, "interactions", inter);
    json_object_set_new(o, "density", json_real(in->density));
    json_object_set_new(o, "has_time", json_boolean(m->has_time));
    json_object_set_new(o, "users", users);
    json_object_set_new(o, "popularity", pop);
    json_object_set_new(o, "provenance", prov);
    return o;
}

void sr_data_info_print(const sr_data_info *in, FILE *out)
{
    const sr_dataset_meta *m = &in->meta;
    fprintf(out, "%s: '%s', softrec dataset v%d\n", in->path, m->name, m->format_version);
    fprintf(out, "  users         %lld\n  items         %lld\n", (long long)m->num_users, (long long)m->num_items);
    fprintf(out, "  interactions  %lld (train %lld, valid %lld, test %lld)\n", (long long)in->total,
            (long long)m->nnz[0], (long long)m->nnz[1], (long long)m->nnz[2]);
    fprintf(out, "  density       %.4f%%\n  time          %s\n", 100.0 * in->density, m->has_time ? "yes" : "no");
    for (int s = 0; s < SR_SPLIT_COUNT; s++)
        fprintf(out, "  %-5s per user min %lld, max %lld, %lld users with rows\n", sr_split_name((sr_split)s),
                (long long)in->row_min[s], (long long)in->row_max[s], (long long)in->users_with[s]);
    fprintf(out, "  popularity    gini %.4f, top 1%% (%lld items) hold %.2f%% of train, max %lld, median %g, %lld cold items\n",
            in->gini, (long long)in->top1_items, 100.0 * in->top1_share, (long long)in->pop_max, in->pop_median,
            (long long)in->cold_items);
    fprintf(out, "  split         %s (seed %lld)\n", m->split_protocol, (long long)m->split_seed);
    fprintf(out, "  source        %s\n  sha256        %s\n  created by    %s\n", m->source, m->source_sha256,
            m->created_by);
    fprintf(out, "  content sha256 %s%s%s\n", m->content_computed ? "absent (computed: " : "", m->content_sha256,
            m->content_computed ? ")" : "");
}
