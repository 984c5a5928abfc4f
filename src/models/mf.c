/* mf.c: MF tables and their layout-independent initialisation. */
#include "models/mf.h"

#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

void sr_table_init_normal(float *table, int64_t n, int64_t d, double std, uint64_t seed,
                          uint32_t table_id, const sr_shard *map, int rank, int64_t first_global)
{
    sr_rng r;
    sr_rng_init(&r, seed, table_id, SR_STREAM_INIT);
    for (int64_t k = 0; k < n; k++) {
        int64_t g = map ? sr_shard_global(map, rank, k) : first_global + k;
        /* One normal consumes one Philox block (4 words): row g starts at block g*d. */
        sr_rng_seek(&r, (uint64_t)g * (uint64_t)d);
        for (int64_t j = 0; j < d; j++) table[k * d + j] = (float)(std * sr_rng_normal(&r));
    }
}

sr_status sr_mf_create(sr_mf *m, const sr_backbone_init *in, sr_error *err)
{
    const sr_config *cfg = in->cfg;
    const sr_shard *items = in->items;
    const int64_t u0 = in->u0, u1 = in->u1;
    const int rank = in->c->rank;
    sr_mem *mem = in->mem;
    memset(m, 0, sizeof *m);
    m->d = cfg->model_dim;
    m->u0 = u0;
    m->u1 = u1;
    m->n_items = sr_shard_count(items, rank);
    m->user = sr_mem_calloc(mem, (size_t)(u1 - u0), (size_t)m->d * sizeof(float), "user embeddings", err);
    m->item = sr_mem_calloc(mem, (size_t)m->n_items, (size_t)m->d * sizeof(float), "item embeddings", err);
    if (!m->user || !m->item) goto fail;
    uint64_t seed = (uint64_t)cfg->train_seed;
    sr_table_init_normal(m->item, m->n_items, m->d, cfg->model_init_std, seed, 0, items, rank, 0);
    sr_table_init_normal(m->user, u1 - u0, m->d, cfg->model_init_std, seed, 1, NULL, rank, u0);
    if (sr_optim_state_create(&m->user_state, in->opt, u1 - u0, m->d, mem, err) != SR_OK) goto fail;
    if (sr_optim_state_create(&m->item_state, in->opt, m->n_items, m->d, mem, err) != SR_OK) goto fail;
    return SR_OK;
fail:
    sr_mf_destroy(m, mem);
    return err->code;
}

void sr_mf_destroy(sr_mf *m, sr_mem *mem)
{
    sr_mem_free(mem, m->user);
    sr_mem_free(mem, m->item);
    sr_optim_state_destroy(&m->user_state, mem);
    sr_optim_state_destroy(&m->item_state, mem);
    m->user = m->item = NULL;
}

/* ---- the MF backbone -------------------------------------------------------
 * An example is one train entry (user, item); its query is the user's row;
 * items are scored by the item table itself. Exact losses touch every local
 * item row (dense update), sampled losses and sparse maps only the rows they
 * used (row-sparse, O(rows x d)); a batch's users get one row-sparse update
 * with the rows of repeated users summed. */
typedef struct mf_bb {
    sr_backbone base;
    sr_mf mf;
    sr_optim opt;
    const sr_csr *train;
    const sr_shard *items;
    int64_t num_users, num_items;
    int64_t *ex_user;           /* local user of each local example */
    int64_t *slot, *rows;       /* user -> row of ug (-1: none yet); ug's users */
    float *ug;                  /* max_batch x d: summed user gradients */
    sr_mem *mem;
} mf_bb;

static int64_t mf_examples_of(int64_t n_train) { return n_train; }
static int64_t mf_queries_per_example(const sr_config *cfg) { return 1; }

/* Local user of every example, examples enumerated user by user with
 * examples_of(row length) each (the trainer counts them the same way). */
int64_t *sr_backbone_example_users(const sr_csr *train, int64_t (*examples_of)(int64_t), sr_mem *mem,
                                   sr_error *err)
{
    int64_t n = 0, nu = train->u1 - train->u0;
    for (int64_t u = 0; u < nu; u++) n += examples_of(sr_csr_row_len(train, u));
    int64_t *eu = sr_mem_calloc(mem, (size_t)(n > 0 ? n : 1), sizeof *eu, "example users", err);
    if (!eu) return NULL;
    for (int64_t u = 0, e = 0; u < nu; u++)
        for (int64_t k = examples_of(sr_csr_row_len(train, u)); k > 0; k--) eu[e++] = u;
    return eu;
}

static void mf_destroy(sr_backbone **bp)
{
    mf_bb *b = (mf_bb *)*bp;
    if (!b) return;
    sr_mf_destroy(&b->mf, b->mem);
    void *bufs[] = {b->ex_user, b->slot, b->rows, b->ug};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sr_mem_free(b->mem, bufs[i]);
    free(b);
    *bp = NULL;
}

static sr_status mf_create(sr_backbone **out, const sr_backbone_init *in, sr_error *err)
{
    mf_bb *b = calloc(1, sizeof *b);
    if (!b) SR_FAIL(err, SR_ERR_NOMEM, "out of memory for the MF backbone");
    b->base.ops = &sr_backbone_mf;
    b->opt = *in->opt;
    b->train = &in->split[SR_SPLIT_TRAIN];
    b->items = in->items;
    b->num_users = in->num_users;
    b->num_items = in->num_items;
    b->mem = in->mem;
    *out = &b->base;
    const int64_t d = in->cfg->model_dim, nu = in->u1 - in->u0;
    if (sr_mf_create(&b->mf, in, err) != SR_OK) goto fail;
    b->ex_user = sr_backbone_example_users(b->train, mf_examples_of, in->mem, err);
    b->slot = sr_mem_calloc(in->mem, (size_t)(nu > 0 ? nu : 1), sizeof *b->slot, "user slots", err);
    b->rows = sr_mem_calloc(in->mem, (size_t)in->max_batch + 1, sizeof *b->rows, "step buffers", err);
    b->ug = sr_mem_calloc(in->mem, (size_t)(in->max_batch * d + 1), sizeof *b->ug, "step buffers", err);
    if (!b->ex_user || !b->slot || !b->rows || !b->ug) goto fail;
    for (int64_t u = 0; u < nu; u++) b->slot[u] = -1;
    return SR_OK;
fail:
    mf_destroy(out);
    return err->code;
}

static sr_status mf_train_queries(sr_backbone *bb, const int64_t *ex, int64_t nb, int64_t step, float *q,
                                  int64_t *targets, int64_t *nq, sr_error *err)
{
    mf_bb *b = (mf_bb *)bb;
    const int64_t d = b->mf.d;
    for (int64_t k = 0; k < nb; k++) { /* example e is train entry e */
        memcpy(q + k * d, b->mf.user + b->ex_user[ex[k]] * d, (size_t)d * sizeof(float));
        targets[k] = b->train->items[ex[k]];
    }
    *nq = nb;
    return SR_OK;
}

static const float *mf_item_rows(const sr_backbone *bb) { return ((const mf_bb *)bb)->mf.item; }

static sr_status mf_update(sr_backbone *bb, const sr_backbone_grads *g, sr_error *err)
{
    mf_bb *b = (mf_bb *)bb;
    const int64_t d = b->mf.d;
    sr_optim_update(&b->opt, &b->mf.item_state, b->mf.item, g->dv->g, g->dv->rows, g->dv->n, d, g->step);
    int64_t nu = 0;
    for (int64_t k = 0; k < g->nb; k++) {
        int64_t u = b->ex_user[g->ex[k]];
        if (b->slot[u] < 0) {
            b->slot[u] = nu;
            b->rows[nu] = u;
            memset(b->ug + nu * d, 0, (size_t)d * sizeof(float));
            nu++;
        }
        float *ug = b->ug + b->slot[u] * d;
        const float *src = g->dq + k * d;
        for (int64_t j = 0; j < d; j++) ug[j] += src[j];
    }
    sr_optim_update(&b->opt, &b->mf.user_state, b->mf.user, b->ug, b->rows, nu, d, g->step);
    for (int64_t k = 0; k < nu; k++) b->slot[b->rows[k]] = -1;
    return SR_OK;
}

static void mf_set_lr(sr_backbone *bb, double lr) { ((mf_bb *)bb)->opt.lr = lr; }

static sr_status mf_eval_queries(sr_backbone *bb, const int64_t *users, int64_t nb, sr_split split, float *q,
                                 sr_error *err)
{
    mf_bb *b = (mf_bb *)bb;
    sr_rows_gather(q, b->mf.user, users, nb, b->mf.d);
    return SR_OK;
}

void sr_mf_tables(sr_mf *m, const sr_shard *items, int64_t num_users, int64_t num_items, sr_table_kind kind,
                  sr_table_set *out)
{
    const int64_t nu = m->u1 - m->u0;
    if (kind == SR_TABLES_MODEL) {
        sr_table_set_add(out, m->item, m->n_items, num_items, m->d, items, 0, "/model/item_embedding");
        sr_table_set_add(out, m->user, nu, num_users, m->d, NULL, m->u0, "/model/user_embedding");
        return;
    }
    sr_optim_state_tables(&m->item_state, m->n_items, num_items, items, 0, "item_embedding", out);
    sr_optim_state_tables(&m->user_state, nu, num_users, NULL, m->u0, "user_embedding", out);
}

void sr_optim_state_tables(sr_optim_state *s, int64_t rows, int64_t global_rows, const sr_shard *map,
                           int64_t first, const char *table, sr_table_set *out)
{
    if (s->m) sr_table_set_add(out, s->m, rows, global_rows, s->d, map, first, "/optim/%s/m", table);
    if (s->v) sr_table_set_add(out, s->v, rows, global_rows, s->d, map, first, "/optim/%s/v", table);
}

static void mf_tables(sr_backbone *bb, sr_table_kind kind, bool for_write, sr_table_set *out)
{
    mf_bb *b = (mf_bb *)bb;
    sr_mf_tables(&b->mf, b->items, b->num_users, b->num_items, kind, out);
}

const sr_backbone_ops sr_backbone_mf = {
    .name = "mf",
    .help = "matrix factorisation: a user's query is its embedding row",
    .examples_of = mf_examples_of,
    .queries_per_example = mf_queries_per_example,
    .create = mf_create,
    .destroy = mf_destroy,
    .train_queries = mf_train_queries,
    .item_rows = mf_item_rows,
    .update = mf_update,
    .set_lr = mf_set_lr,
    .eval_queries = mf_eval_queries,
    .tables = mf_tables,
};
