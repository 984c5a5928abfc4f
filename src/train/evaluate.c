/* evaluate.c: full-ranking evaluation (train.h): every rank ranks its item
 * shard for the global batch of queries with the users' known items
 * masked, the local top-K lists merge into the global one (eval_mpi.h), and
 * each user's owner scores its metrics; one all-reduce sums them. */
#include <stdlib.h>
#include <string.h>

#include "comm/collectives.h"
#include "comm/gather.h"
#include "core/log.h"
#include "train/eval_kernels.h"
#include "train/eval_mpi.h"
#include "train/metrics.h"
#include "train/trainer.h"

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Row u of m appended to buf; returns the count. */
static int64_t append_row(const sr_csr *m, int64_t u, int64_t *buf)
{
    int64_t n = sr_csr_row_len(m, u);
    memcpy(buf, m->items + m->indptr[u], (size_t)n * sizeof *buf);
    return n;
}

/* Sort and drop duplicates in place; returns the new length. */
static int64_t sort_unique(int64_t *v, int64_t n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    int64_t w = 0;
    for (int64_t i = 0; i < n; i++)
        if (w == 0 || v[w - 1] != v[i]) v[w++] = v[i];
    return w;
}

/* One evaluation's buffers: this rank's users with something to predict,
 * one batch's queries and exclusion lists (local and gathered), top-K. */
typedef struct eval_ws {
    sr_split split;             /* the queries' split (eval_queries) and the test lists */
    int known_splits;           /* splits [0, known_splits) are each user's known items */
    bool all_users;             /* rank every local user, not only those with test items */
    sr_trainer_topk_sink sink;  /* NULL: score the metrics */
    void *sink_ctx;
    sr_status sink_st;          /* the sink's first error (agreed at the end) */
    int64_t *uid_loc, *uid_all; /* global user ids of a batch's rows (with a sink) */
    int64_t nev, steps, max_known, kmax;
    int64_t *users, *counts, *ecounts;
    float *q_loc, *q_all, *top_s;
    int64_t *top_i, *len_loc, *len_all, *indptr, *ex_loc, *ex_all, *test;
    void *bufs; /* the one block behind the batch buffers */
    sr_topk_ws *topk;
    sr_metrics m;
} eval_ws;

static void ws_free(sr_trainer *t, eval_ws *w)
{
    sr_mem_free(&t->mem, w->users);
    sr_mem_free(&t->mem, w->counts);
    sr_mem_free(&t->mem, w->uid_loc);
    sr_mem_free(&t->mem, w->bufs);
    sr_topk_ws_destroy(&w->topk);
}

/* The users to rank, the step count (the same on every rank: ranks with
 * fewer users send empty batches) and the longest known-item list of any
 * rank (sizes the exclusion buffers). */
static sr_status ws_plan(sr_trainer *t, eval_ws *w, sr_error *err)
{
    const sr_comm *c = t->c;
    const sr_csr *ev = &t->split[w->split];
    const int64_t nloc = t->u1 - t->u0, P = c->size;
    w->users = sr_mem_calloc(&t->mem, (size_t)(nloc ? nloc : 1), sizeof *w->users, "eval users", err);
    w->counts = sr_mem_calloc(&t->mem, (size_t)P, sizeof *w->counts, "eval counts", err);
    if (!w->users || !w->counts) sr_comm_abort(c, err);
    w->max_known = 1;
    for (int64_t u = 0; u < nloc; u++) {
        if (w->all_users || sr_csr_row_len(ev, u) > 0) w->users[w->nev++] = u;
        int64_t known = 0;
        for (int s = 0; s < w->known_splits; s++) known += sr_csr_row_len(&t->split[s], u);
        if (known > w->max_known) w->max_known = known;
    }
    SR_TRY(sr_comm_allgather_i64(c, w->nev, w->counts, err));
    for (int r = 0; r < P; r++) w->steps = w->counts[r] > w->steps ? w->counts[r] : w->steps;
    w->steps = sr_ceil_div(w->steps, SR_EVAL_BATCH);
    SR_TRY(sr_comm_allgather_i64(c, w->max_known, w->counts, err));
    for (int r = 0; r < P; r++) w->max_known = w->counts[r] > w->max_known ? w->counts[r] : w->max_known;
    return SR_OK;
}

static void ws_alloc(sr_trainer *t, eval_ws *w, sr_error *err)
{
    const int64_t P = t->c->size, d = t->cfg.model_dim, bmax = SR_EVAL_BATCH * P, kmax = w->kmax;
    const int64_t mk = w->max_known, nnz = t->split[w->split].nnz;
    sr_mem *mem = &t->mem;
    if (sr_topk_ws_create(&w->topk, bmax, t->cfg.loss_tile, kmax, mem, err) != SR_OK) sr_comm_abort(t->c, err);
    if (t->cfg.loss_kernel[0] && sr_topk_ws_set_kernel(w->topk, t->cfg.loss_kernel, err)) sr_comm_abort(t->c, err);
    sr_mem_buf b[] = {SR_MEM_BUF(w->q_loc, SR_EVAL_BATCH * d),   SR_MEM_BUF(w->q_all, bmax * d),
                      SR_MEM_BUF(w->top_s, bmax * kmax),         SR_MEM_BUF(w->top_i, bmax * kmax),
                      SR_MEM_BUF(w->len_loc, SR_EVAL_BATCH),     SR_MEM_BUF(w->len_all, bmax),
                      SR_MEM_BUF(w->indptr, bmax + 1),           SR_MEM_BUF(w->ex_loc, SR_EVAL_BATCH * mk),
                      SR_MEM_BUF(w->ex_all, bmax * mk),          SR_MEM_BUF(w->ecounts, P),
                      SR_MEM_BUF(w->test, mk + nnz + 1)};
    w->bufs = sr_mem_bufset_alloc(mem, b, sizeof b / sizeof b[0], "eval buffers", err);
    sr_mem_buf u[] = {SR_MEM_BUF(w->uid_loc, SR_EVAL_BATCH), SR_MEM_BUF(w->uid_all, bmax)};
    if (w->bufs && w->sink) w->uid_loc = sr_mem_bufset_alloc(mem, u, 2, "eval user ids", err);
    if (!w->bufs || (w->sink && !w->uid_loc)) sr_comm_abort(t->c, err);
}

/* The known items of the batch's users (train, and valid when ranking
 * test), sorted and unique per user; returns their total. */
static int64_t known_items(sr_trainer *t, eval_ws *w, int64_t lo, int64_t nb)
{
    int64_t ne = 0;
    for (int64_t i = 0; i < nb; i++) {
        int64_t u = w->users[lo + i], n = 0;
        for (int s = 0; s < w->known_splits; s++) n += append_row(&t->split[s], u, w->ex_loc + ne + n);
        w->len_loc[i] = sort_unique(w->ex_loc + ne, n);
        ne += w->len_loc[i];
    }
    return ne;
}

/* A batch's top-K lists (replicated) with the global ids of their users
 * handed to the sink on every rank; its first error is kept for the end,
 * the collectives go on. */
static sr_status sink_batch(sr_trainer *t, eval_ws *w, int64_t lo, int64_t nb, int64_t B, sr_error *err)
{
    for (int64_t i = 0; i < nb; i++) w->uid_loc[i] = t->u0 + w->users[lo + i];
    SR_TRY(sr_comm_allgather_ids(t->c, w->uid_loc, w->counts, w->uid_all, err));
    if (w->sink_st == SR_OK) {
        sr_error e;
        sr_error_clear(&e);
        w->sink_st = w->sink(w->sink_ctx, w->uid_all, B, w->top_i, w->top_s, w->kmax, &e);
        if (w->sink_st != SR_OK) *err = e;
    }
    return SR_OK;
}

/* Evaluation batch s (collective): gather the queries and exclusion lists
 * of every rank, rank the catalogue, score this rank's users. */
static sr_status eval_batch(sr_trainer *t, eval_ws *w, int64_t s, const float *items, sr_error *err)
{
    const sr_comm *c = t->c;
    const int64_t d = t->cfg.model_dim, P = c->size;
    int64_t lo = s * SR_EVAL_BATCH, hi = lo + SR_EVAL_BATCH < w->nev ? lo + SR_EVAL_BATCH : w->nev;
    int64_t nb = hi > lo ? hi - lo : 0;
    SR_TRY(t->ops->eval_queries(t->bb, w->users + lo, nb, w->split, w->q_loc, err));
    int64_t ne = known_items(t, w, lo, nb);
    SR_TRY(sr_comm_allgather_i64(c, nb, w->counts, err));
    SR_TRY(sr_comm_allgather_i64(c, ne, w->ecounts, err));
    int64_t B = 0, off = 0;
    for (int r = 0; r < P; r++) {
        if (r < c->rank) off += w->counts[r];
        B += w->counts[r];
    }
    SR_TRY(sr_comm_allgather_rows(c, w->q_loc, w->counts, d, w->q_all, err));
    SR_TRY(sr_comm_allgather_ids(c, w->len_loc, w->counts, w->len_all, err));
    SR_TRY(sr_comm_allgather_ids(c, w->ex_loc, w->ecounts, w->ex_all, err));
    w->indptr[0] = 0;
    for (int64_t i = 0; i < B; i++) w->indptr[i + 1] = w->indptr[i] + w->len_all[i];
    if (B == 0) return SR_OK;
    sr_scores_queries(&t->scores, w->q_all, B, false);
    const bool mask = t->cfg.eval_mask_history;
    SR_TRY(sr_eval_topk(c, w->q_all, B, d, items, sr_shard_count(&t->items, c->rank), &t->items,
                        mask ? w->indptr : NULL, mask ? w->ex_all : NULL, w->kmax, w->topk, w->top_s, w->top_i,
                        err));
    if (w->sink) return sink_batch(t, w, lo, nb, B, err);
    const sr_csr *ev = &t->split[w->split];
    for (int64_t i = 0; i < nb; i++) {
        int64_t n = sort_unique(w->test, append_row(ev, w->users[lo + i], w->test));
        sr_metrics_add(&w->m, w->top_i + (off + i) * w->kmax, w->kmax, w->test, n);
    }
    return SR_OK;
}

static sr_status eval_finish(sr_trainer *t, eval_ws *w, sr_eval_result *res, double t0, sr_error *err)
{
    SR_TRY(sr_metrics_allreduce(t->c, &w->m, err));
    sr_metrics fin;
    sr_metrics_finalise(&w->m, &fin);
    res->nk = fin.n_k;
    for (int i = 0; i < fin.n_k; i++) {
        res->k[i] = fin.k[i];
        res->ndcg[i] = fin.ndcg[i];
        res->precision[i] = fin.precision[i];
        res->recall[i] = fin.recall[i];
        res->hit[i] = fin.hit[i];
        res->mrr[i] = fin.mrr[i];
        res->map[i] = fin.map[i];
    }
    res->users = (int64_t)w->m.users;
    res->seconds = sr_time_now() - t0;
    return SR_OK;
}

/* Rank the catalogue for w's users, batch by batch (collective). */
static sr_status eval_run(sr_trainer *t, eval_ws *w, sr_error *err)
{
    sr_status st = ws_plan(t, w, err);
    if (st == SR_OK) {
        ws_alloc(t, w, err);
        if (t->ops->prepare) st = t->ops->prepare(t->bb, err);
    }
    const float *items = st == SR_OK ? sr_scores_items(&t->scores, t->ops->item_rows(t->bb)) : NULL;
    if (st == SR_OK && !sr_loss_scores_by_dot(t->loss)) {
        /* hsm ranks by tree log-probability, not by q . v */
        st = sr_loss_eval_prepare(t->loss, err);
        sr_topk_ws_set_scorer(w->topk, sr_loss_eval_scores, t->loss);
    }
    for (int64_t s = 0; s < w->steps && st == SR_OK; s++) st = eval_batch(t, w, s, items, err);
    return st;
}

sr_status sr_trainer_evaluate(sr_trainer *t, int split, sr_eval_result *res, sr_error *err)
{
    const double t0 = sr_time_now();
    memset(res, 0, sizeof *res);
    eval_ws w;
    memset(&w, 0, sizeof w);
    w.split = (sr_split)split;
    w.known_splits = split; /* valid: train known; test: train and valid */
    SR_TRY(sr_metrics_init(&w.m, t->cfg.eval_topk, t->cfg.eval_topk_count, err));
    w.kmax = sr_metrics_kmax(&w.m);
    sr_status st = eval_run(t, &w, err);
    if (st == SR_OK) st = eval_finish(t, &w, res, t0, err);
    ws_free(t, &w);
    return st;
}

sr_status sr_trainer_recommend(sr_trainer *t, int64_t k, sr_trainer_topk_sink sink, void *ctx, sr_error *err)
{
    if (k < 1 || k > t->meta.num_items)
        SR_FAIL(err, SR_ERR_USAGE, "recommend: top %lld of a catalogue of %lld items: want 1 to %lld", (long long)k,
                (long long)t->meta.num_items, (long long)t->meta.num_items);
    eval_ws w;
    memset(&w, 0, sizeof w);
    w.split = SR_SPLIT_TEST; /* the query sees train and valid history */
    w.known_splits = SR_SPLIT_COUNT;
    w.all_users = true;
    w.sink = sink;
    w.sink_ctx = ctx;
    w.kmax = k;
    sr_status st = eval_run(t, &w, err);
    if (st == SR_OK && w.sink_st == SR_OK) sr_error_clear(err); /* err holds the sink's error, if any */
    if (st == SR_OK) st = sr_comm_agree(t->c, err);               /* ... now on every rank */
    ws_free(t, &w);
    return st;
}

sr_status sr_trainer_local_queries(sr_trainer *t, const int64_t *loc, int64_t m, float *q, bool for_loss,
                                   sr_error *err)
{
    const int64_t d = t->cfg.model_dim;
    int64_t ids[SR_EVAL_BATCH];
    if (t->ops->prepare) SR_TRY(t->ops->prepare(t->bb, err)); /* collective: the backbone's scoring rows */
    double batches = (double)sr_ceil_div(m, SR_EVAL_BATCH);
    SR_TRY(sr_comm_allreduce_max(t->c, &batches, 1, err));
    for (int64_t b = 0; b < (int64_t)batches; b++) {
        int64_t lo = b * SR_EVAL_BATCH, nb = m - lo < SR_EVAL_BATCH ? (m > lo ? m - lo : 0) : SR_EVAL_BATCH;
        for (int64_t i = 0; !loc && i < nb; i++) ids[i] = lo + i;
        SR_TRY(t->ops->eval_queries(t->bb, loc ? loc + lo : ids, nb, SR_SPLIT_TEST, q + lo * d, err));
        if (for_loss) sr_scores_queries(&t->scores, q + lo * d, nb, true);
    }
    return SR_OK;
}

/* Queries of the global users listed (the same list on every rank), as the
 * loss sees them: each owner encodes its users in batches (the batch count
 * agreed, so collective backbones meet), one all-reduce replicates them. */
sr_status sr_trainer_user_queries(sr_trainer *t, const int64_t *users, int64_t n, float *q, sr_error *err)
{
    const int64_t d = t->cfg.model_dim;
    for (int64_t i = 0; i < n; i++)
        if (users[i] < 0 || users[i] >= t->meta.num_users)
            SR_FAIL(err, SR_ERR_USAGE, "user %lld is outside [0, %lld)", (long long)users[i],
                    (long long)t->meta.num_users);
    double *acc;
    int64_t *loc, *idx;
    sr_mem_buf bl[] = {SR_MEM_BUF(acc, n * d + 1), SR_MEM_BUF(loc, n + 1), SR_MEM_BUF(idx, n + 1)};
    void *bufs = sr_mem_bufset_alloc(&t->mem, bl, 3, "queries", err);
    if (!bufs) sr_comm_abort(t->c, err);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (users[i] >= t->u0 && users[i] < t->u1) idx[m] = i, loc[m++] = users[i] - t->u0;
    /* q (n rows, m <= n) holds the owned rows until they are replicated. */
    sr_status st = sr_trainer_local_queries(t, loc, m, q, false, err);
    for (int64_t i = 0; i < m && st == SR_OK; i++)
        for (int64_t j = 0; j < d; j++) acc[idx[i] * d + j] = q[i * d + j];
    if (st == SR_OK) st = sr_comm_allreduce_sum(t->c, acc, n * d, err); /* one owner each: exact */
    for (int64_t k = 0; k < n * d; k++) q[k] = (float)acc[k];
    sr_mem_free(&t->mem, bufs);
    if (st == SR_OK) sr_scores_queries(&t->scores, q, n, true);
    return st;
}
