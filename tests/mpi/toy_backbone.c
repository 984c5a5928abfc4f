/* toy_backbone.c: a backbone in one file, the example of docs/design.md
 * ("Adding a backbone"). Popularity: every user's query is one shared,
 * replicated vector w, so scores w . v_i learn the items' popularity. It
 * counts its calls so the trainer test can check the order of the hooks. */
#include "toy_backbone.h"

#include <stdlib.h>
#include <string.h>

#include "comm/collectives.h"
#include "models/mf.h"

static int64_t toy_examples_of(int64_t n_train) { return n_train; }
static int64_t toy_queries_per_example(const sr_config *cfg) { return 1; }

static void toy_destroy(sr_backbone **bp)
{
    toy_bb *b = (toy_bb *)*bp;
    if (b) free(b->item), free(b->w), free(b);
    *bp = NULL;
}

static sr_status toy_create(sr_backbone **out, const sr_backbone_init *in, sr_error *err)
{
    toy_bb *b = calloc(1, sizeof *b);
    if (!b) SR_FAIL(err, SR_ERR_NOMEM, "out of memory for the toy backbone");
    *b = (toy_bb){.base = {&toy_backbone}, .c = in->c, .items = in->items, .train = &in->split[SR_SPLIT_TRAIN],
                  .d = in->cfg->model_dim, .n_local = sr_shard_count(in->items, in->c->rank),
                  .n_global = in->num_items, .lr = in->opt->lr};
    b->item = calloc((size_t)(b->n_local * b->d + 1), sizeof(float));
    b->w = calloc((size_t)b->d, sizeof(float));
    *out = &b->base;
    if (!b->item || !b->w) {
        toy_destroy(out);
        SR_FAIL(err, SR_ERR_NOMEM, "out of memory for the toy backbone");
    }
    sr_table_init_normal(b->item, b->n_local, b->d, 0.1, (uint64_t)in->cfg->train_seed, 0, in->items, in->c->rank, 0);
    for (int64_t j = 0; j < b->d; j++) b->w[j] = 0.1f;
    return SR_OK;
}

static sr_status toy_prepare(sr_backbone *bb, sr_error *err)
{
    ((toy_bb *)bb)->prepared = 1, ((toy_bb *)bb)->prepares++;
    return SR_OK;
}

static sr_status toy_train_queries(sr_backbone *bb, const int64_t *ex, int64_t nb, int64_t step, float *q,
                                   int64_t *targets, int64_t *nq, sr_error *err)
{
    toy_bb *b = (toy_bb *)bb;
    b->queries++, b->out_of_order += !b->prepared;
    for (int64_t k = 0; k < nb; k++) {
        memcpy(q + k * b->d, b->w, (size_t)b->d * sizeof(float));
        targets[k] = b->train->items[ex[k]];
    }
    *nq = nb;
    return SR_OK;
}

static const float *toy_item_rows(const sr_backbone *bb) { return ((const toy_bb *)bb)->item; }

/* SGD: the item rows the loss touched, and w by the sum of every rank's
 * query gradients (one all-reduce). */
static sr_status toy_update(sr_backbone *bb, const sr_backbone_grads *g, sr_error *err)
{
    toy_bb *b = (toy_bb *)bb;
    const int64_t d = b->d;
    b->updates++, b->prepared = 0;
    for (int64_t k = 0; k < g->dv->n; k++) {
        float *row = b->item + (g->dv->rows ? g->dv->rows[k] : k) * d;
        for (int64_t j = 0; j < d; j++) row[j] -= (float)b->lr * g->dv->g[k * d + j];
    }
    double dw[256] = {0};
    for (int64_t k = 0; k < g->nq; k++)
        for (int64_t j = 0; j < d; j++) dw[j] += g->dq[k * d + j];
    SR_TRY(sr_comm_allreduce_sum(b->c, dw, d, err));
    for (int64_t j = 0; j < d; j++) b->w[j] -= (float)(b->lr * dw[j]);
    return SR_OK;
}

static void toy_set_lr(sr_backbone *bb, double lr) { ((toy_bb *)bb)->lr = lr; }

static sr_status toy_eval_queries(sr_backbone *bb, const int64_t *users, int64_t nb, sr_split split, float *q,
                                  sr_error *err)
{
    toy_bb *b = (toy_bb *)bb;
    for (int64_t i = 0; i < nb; i++) memcpy(q + i * b->d, b->w, (size_t)b->d * sizeof(float));
    return SR_OK;
}

static void toy_tables(sr_backbone *bb, sr_table_kind kind, bool for_write, sr_table_set *out)
{
    toy_bb *b = (toy_bb *)bb;
    if (kind != SR_TABLES_MODEL) return; /* SGD keeps no state */
    sr_table_set_add(out, b->item, b->n_local, b->n_global, b->d, b->items, 0, "/model/item_embedding");
    sr_table_set_add(out, b->w, !for_write || b->c->rank == 0, 1, b->d, NULL, 0, "/model/toy_query");
}

const sr_backbone_ops toy_backbone = {
    .name = "toy",
    .help = "popularity: one shared query vector",
    .examples_of = toy_examples_of,
    .queries_per_example = toy_queries_per_example,
    .create = toy_create,
    .destroy = toy_destroy,
    .prepare = toy_prepare,
    .train_queries = toy_train_queries,
    .item_rows = toy_item_rows,
    .update = toy_update,
    .set_lr = toy_set_lr,
    .eval_queries = toy_eval_queries,
    .tables = toy_tables,
};
