/* sasrec_backbone.c: SASRec as a backbone. An example is a user's train
 * sequence (two or more items); every position of its window is a query
 * whose target is the next item. The transformer is replicated (sasrec.h),
 * the input rows are looked up from the sharded item table (seqembed.h):
 * the output table itself, or an untied input table when
 * model.tie_embeddings is off. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/collectives.h"
#include "models/backbone.h"
#include "models/mf.h"
#include "models/sasrec.h"
#include "models/seqembed.h"

typedef struct sas_bb {
    sr_backbone base;
    sr_mf mf;                   /* the item table scores (and is the input when tied) */
    sr_optim opt;
    const sr_comm *c;
    const sr_csr *split;
    const sr_shard *items;
    int64_t num_users, num_items;
    sr_sasrec *sas;
    sr_seqembed *emb;
    int64_t L;
    int64_t *ex_user;
    int64_t *counts;            /* per rank: sequences in this step */
    int64_t *ids, *tgt, *qpos;  /* n_max x L: input ids (-1 pad), next items, query positions */
    uint8_t *valid;
    float *x, *h, *dh, *dx;     /* n_max x L x d */
    void *bufs;                 /* the one block behind counts .. dx */
    float *in_item;             /* untied input table (n_items x d), NULL when tied */
    sr_optim_state in_state;
    sr_mem *mem;
} sas_bb;

static int64_t sas_examples_of(int64_t n_train) { return n_train >= 2; }
static int64_t sas_queries_per_example(const sr_config *cfg) { return cfg->model_max_len; }

static void sas_destroy(sr_backbone **bp)
{
    sas_bb *b = (sas_bb *)*bp;
    if (!b) return;
    sr_sasrec_destroy(&b->sas);
    sr_seqembed_destroy(&b->emb);
    if (b->in_item) sr_optim_state_destroy(&b->in_state, b->mem);
    sr_mf_destroy(&b->mf, b->mem);
    sr_mem_free(b->mem, b->ex_user);
    sr_mem_free(b->mem, b->bufs);
    sr_mem_free(b->mem, b->in_item);
    free(b);
    *bp = NULL;
}

static sr_status sas_buffers(sas_bb *b, int64_t n_max, int64_t d, sr_error *err)
{
    const int64_t np = n_max * b->L;
    sr_mem_buf t[] = {SR_MEM_BUF(b->counts, b->c->size), SR_MEM_BUF(b->ids, np), SR_MEM_BUF(b->tgt, np),
                      SR_MEM_BUF(b->qpos, np),           SR_MEM_BUF(b->valid, np), SR_MEM_BUF(b->x, np * d),
                      SR_MEM_BUF(b->h, np * d),          SR_MEM_BUF(b->dh, np * d), SR_MEM_BUF(b->dx, np * d)};
    b->bufs = sr_mem_bufset_alloc(b->mem, t, sizeof t / sizeof t[0], "sasrec buffers", err);
    return b->bufs ? SR_OK : err->code;
}

static sr_status sas_create(sr_backbone **out, const sr_backbone_init *in, sr_error *err)
{
    const sr_config *cfg = in->cfg;
    sas_bb *b = calloc(1, sizeof *b);
    if (!b) SR_FAIL(err, SR_ERR_NOMEM, "out of memory for the SASRec backbone");
    b->base.ops = &sr_backbone_sasrec;
    *out = &b->base;
    b->opt = *in->opt;
    b->c = in->c;
    b->split = in->split;
    b->items = in->items;
    b->num_users = in->num_users;
    b->num_items = in->num_items;
    b->mem = in->mem;
    b->L = cfg->model_max_len;
    if (sr_mf_create(&b->mf, in, err) != SR_OK) goto fail;
    b->ex_user = sr_backbone_example_users(&in->split[SR_SPLIT_TRAIN], sas_examples_of, in->mem, err);
    if (!b->ex_user) goto fail;
    const int64_t d = b->mf.d, n_max = in->max_batch > in->eval_batch ? in->max_batch : in->eval_batch;
    sr_sasrec_opts o = {d, cfg->model_layers, cfg->model_heads, b->L, cfg->model_dropout, cfg->model_tie_embeddings,
                        in->num_items, (uint64_t)cfg->train_seed, cfg->model_init_std};
    if (sr_sasrec_create(&b->sas, &o, in->opt, n_max, in->mem, err) != SR_OK) goto fail;
    if (sr_seqembed_create(&b->emb, in->c, in->items, d, in->mem, err) != SR_OK) goto fail;
    if (sas_buffers(b, n_max, d, err) != SR_OK) goto fail;
    if (!cfg->model_tie_embeddings) {
        int64_t n = b->mf.n_items;
        b->in_item = sr_mem_calloc(in->mem, (size_t)(n * d + 1), sizeof(float), "input item table", err);
        if (!b->in_item || sr_optim_state_create(&b->in_state, in->opt, n, d, in->mem, err) != SR_OK) goto fail;
        /* table id 7: a stream of its own, layout-independent like the others */
        sr_table_init_normal(b->in_item, n, d, cfg->model_init_std, (uint64_t)cfg->train_seed, 7, in->items,
                             in->c->rank, 0);
    }
    return SR_OK;
fail:
    sas_destroy(out);
    return err->code;
}

/* The window of user u's sequence (its train items, then its valid items
 * when with_valid) ending at the most recent item. next: the L inputs
 * before each of the last L items and those items as targets (training);
 * otherwise the last L items as inputs (evaluation). Left-padded with -1. */
static void sas_window(const sas_bb *b, int64_t u, bool with_valid, bool next, int64_t *ids, int64_t *tgt)
{
    const sr_csr *tr = &b->split[SR_SPLIT_TRAIN], *va = &b->split[SR_SPLIT_VALID];
    const int64_t L = b->L;
    int64_t ntr = sr_csr_row_len(tr, u);
    int64_t nva = with_valid ? sr_csr_row_len(va, u) : 0;
    int64_t m = ntr + nva; /* sequence length; item j: */
#define SEQ_ITEM(j) ((j) < ntr ? tr->items[tr->indptr[u] + (j)] : va->items[va->indptr[u] + (j) - ntr])
    int64_t n_in = next ? m - 1 : m; /* inputs available */
    if (n_in > L) n_in = L;
    if (n_in < 0) n_in = 0;
    int64_t first = (next ? m - 1 : m) - n_in; /* index of the first input in the sequence */
    for (int64_t i = 0; i < L; i++) {
        int64_t k = i - (L - n_in); /* offset into the window, < 0: padding */
        ids[i] = k >= 0 ? SEQ_ITEM(first + k) : -1;
        if (tgt) tgt[i] = k >= 0 ? SEQ_ITEM(first + k + 1) : -1;
    }
#undef SEQ_ITEM
}

static const float *sas_input_table(const sas_bb *b) { return b->in_item ? b->in_item : b->mf.item; }

/* Forward over this rank's nb sequences; the queries are every valid
 * position, and qpos remembers where each came from. */
static sr_status sas_train_queries(sr_backbone *bb, const int64_t *ex, int64_t nb, int64_t step, float *q,
                                   int64_t *targets, int64_t *nq, sr_error *err)
{
    sas_bb *b = (sas_bb *)bb;
    const int64_t L = b->L, d = b->mf.d;
    for (int64_t k = 0; k < nb; k++) {
        sas_window(b, b->ex_user[ex[k]], false, true, b->ids + k * L, b->tgt + k * L);
        for (int64_t i = 0; i < L; i++) b->valid[k * L + i] = b->ids[k * L + i] >= 0;
    }
    /* The global index of this rank's first sequence keys the dropout flags,
     * so a step draws the same masks at any rank count. */
    SR_TRY(sr_comm_allgather_i64(b->c, nb, b->counts, err));
    int64_t first = 0;
    for (int r = 0; r < b->c->rank; r++) first += b->counts[r];
    SR_TRY(sr_seqembed_lookup(b->emb, b->ids, nb * L, sas_input_table(b), b->x, err));
    sr_sasrec_set_first_seq(b->sas, first);
    SR_TRY(sr_sasrec_forward(b->sas, b->x, b->valid, nb, true, step, b->h, err));
    int64_t n = 0;
    for (int64_t p = 0; p < nb * L; p++) {
        if (!b->valid[p]) continue;
        memcpy(q + n * d, b->h + p * d, (size_t)d * sizeof(float));
        targets[n] = b->tgt[p];
        b->qpos[n++] = p;
    }
    *nq = n;
    return SR_OK;
}

static const float *sas_item_rows(const sr_backbone *bb) { return ((const sas_bb *)bb)->mf.item; }

/* Query gradients into their positions, through the transformer to the
 * input rows, pushed to their owners and merged with the loss's item
 * gradient (tied tables) for one update; the replicated weights are
 * all-reduced and stepped. */
static sr_status sas_update(sr_backbone *bb, const sr_backbone_grads *g, sr_error *err)
{
    sas_bb *b = (sas_bb *)bb;
    const int64_t L = b->L, d = b->mf.d;
    const sr_item_grad *dv = g->dv;
    memset(b->dh, 0, (size_t)(g->nb * L * d) * sizeof(float));
    for (int64_t j = 0; j < g->nq; j++)
        memcpy(b->dh + b->qpos[j] * d, g->dq + j * d, (size_t)d * sizeof(float));
    SR_TRY(sr_sasrec_backward(b->sas, b->dh, b->dx, err));
    const bool dense = dv->rows == NULL && dv->n > 0;
    if (b->in_item) { /* untied: two tables, two updates */
        sr_item_grad in;
        SR_TRY(sr_seqembed_push(b->emb, b->dx, NULL, &in, err));
        sr_optim_update(&b->opt, &b->in_state, b->in_item, in.g, in.rows, in.n, d, g->step);
        sr_optim_update(&b->opt, &b->mf.item_state, b->mf.item, dv->g, dv->rows, dv->n, d, g->step);
    } else if (dense) { /* exact losses: add the input gradient into the dense dV */
        SR_TRY(sr_seqembed_push_dense(b->emb, b->dx, dv->g, err));
        sr_optim_update(&b->opt, &b->mf.item_state, b->mf.item, dv->g, NULL, dv->n, d, g->step);
    } else { /* row-sparse: the union of the loss's rows and the input rows */
        sr_item_grad merged;
        SR_TRY(sr_seqembed_push(b->emb, b->dx, dv->n > 0 ? dv : NULL, &merged, err));
        sr_optim_update(&b->opt, &b->mf.item_state, b->mf.item, merged.g, merged.rows, merged.n, d, g->step);
    }
    return sr_sasrec_update(b->sas, b->c, g->step, err);
}

static void sas_set_lr(sr_backbone *bb, double lr)
{
    sas_bb *b = (sas_bb *)bb;
    b->opt.lr = lr;
    sr_sasrec_set_lr(b->sas, lr);
}

/* A user's query encodes its history (train, plus valid when ranking the
 * test split) and is the last position's output. */
static sr_status sas_eval_queries(sr_backbone *bb, const int64_t *users, int64_t nb, sr_split split, float *q,
                                  sr_error *err)
{
    sas_bb *b = (sas_bb *)bb;
    const int64_t L = b->L, d = b->mf.d;
    for (int64_t i = 0; i < nb; i++) {
        sas_window(b, users[i], split == SR_SPLIT_TEST, false, b->ids + i * L, NULL);
        for (int64_t p = 0; p < L; p++) b->valid[i * L + p] = b->ids[i * L + p] >= 0;
    }
    SR_TRY(sr_seqembed_lookup(b->emb, b->ids, nb * L, sas_input_table(b), b->x, err));
    sr_sasrec_set_first_seq(b->sas, 0);
    SR_TRY(sr_sasrec_forward(b->sas, b->x, b->valid, nb, false, 0, b->h, err)); /* no dropout: step unused */
    for (int64_t i = 0; i < nb; i++) memcpy(q + i * d, b->h + (i * L + L - 1) * d, (size_t)d * sizeof(float));
    return SR_OK;
}

/* Whether a parameter view is optimiser state (".m", ".v": Adam; ".g2":
 * Adagrad) rather than a weight. */
static bool optim_view(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcmp(dot, ".m") || !strcmp(dot, ".v") || !strcmp(dot, ".g2"));
}

/* The MF tables, the untied input table, then the replicated transformer
 * weights (kind MODEL) or their optimiser state (OPTIM); only rank 0 writes
 * replicated rows, every rank reads them. */
static void sas_tables(sr_backbone *bb, sr_table_kind kind, bool for_write, sr_table_set *out)
{
    sas_bb *b = (sas_bb *)bb;
    const int64_t d = b->mf.d;
    sr_mf_tables(&b->mf, b->items, b->num_users, b->num_items, kind, out);
    if (b->in_item && kind == SR_TABLES_MODEL)
        sr_table_set_add(out, b->in_item, b->mf.n_items, b->num_items, d, b->items, 0, "/model/item_input_embedding");
    if (b->in_item && kind == SR_TABLES_OPTIM)
        sr_optim_state_tables(&b->in_state, b->mf.n_items, b->num_items, b->items, 0, "item_input_embedding", out);
    sr_param_view pv[SR_TABLES_MAX];
    int np = sr_sasrec_params(b->sas, pv, SR_TABLES_MAX);
    const bool mine = !for_write || b->c->rank == 0;
    for (int i = 0; i < np && i < SR_TABLES_MAX; i++) {
        if (optim_view(pv[i].name) != (kind == SR_TABLES_OPTIM)) continue;
        sr_table_set_add(out, pv[i].data, mine ? pv[i].rows : 0, pv[i].rows, pv[i].cols, NULL, 0, "/%s/%s",
                         kind == SR_TABLES_OPTIM ? "optim" : "model", pv[i].name);
    }
}

const sr_backbone_ops sr_backbone_sasrec = {
    .name = "sasrec",
    .help = "SASRec: causal self-attention over each user's item sequence; every position is a query",
    .examples_of = sas_examples_of,
    .queries_per_example = sas_queries_per_example,
    .create = sas_create,
    .destroy = sas_destroy,
    .train_queries = sas_train_queries,
    .item_rows = sas_item_rows,
    .update = sas_update,
    .set_lr = sas_set_lr,
    .eval_queries = sas_eval_queries,
    .tables = sas_tables,
};
