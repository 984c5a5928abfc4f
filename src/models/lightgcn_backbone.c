/* lightgcn_backbone.c: LightGCN as a backbone. The MF tables are layer 0;
 * prepare propagates them K rounds over the user-item graph (lightgcn.h);
 * queries and scoring rows are the propagated tables. The update goes back
 * through the K rounds, adds LightGCN's L2 on the batch's layer-0 rows
 * (optim.weight_decay x e / B per occurrence of a user or positive item in
 * the batch, not on the whole table) and takes dense steps on both tables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/backbone.h"
#include "models/lightgcn.h"
#include "models/mf.h"

typedef struct lgcn_bb {
    sr_backbone base;
    sr_mf mf;                   /* layer 0 */
    sr_optim opt;               /* weight_decay 0: L2 goes on the batch rows */
    double weight_decay;
    sr_lgcn *g;
    const sr_csr *train;
    const sr_shard *items;
    int rank;
    int64_t num_users, num_items;
    int64_t *ex_user;
    float *u_out, *i_out, *du_out, *di_out, *deu, *dei; /* propagated tables, their gradients, layer-0 gradients */
    sr_mem *mem;
} lgcn_bb;

static int64_t lgcn_examples_of(int64_t n_train) { return n_train; }
static int64_t lgcn_queries_per_example(const sr_config *cfg) { return 1; }

static void lgcn_destroy(sr_backbone **bp)
{
    lgcn_bb *b = (lgcn_bb *)*bp;
    if (!b) return;
    sr_lgcn_destroy(&b->g);
    sr_mf_destroy(&b->mf, b->mem);
    void *bufs[] = {b->ex_user, b->u_out, b->i_out, b->du_out, b->di_out, b->deu, b->dei};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sr_mem_free(b->mem, bufs[i]);
    free(b);
    *bp = NULL;
}

/* model.layer_weights: K + 1 comma-separated numbers, or empty (the mean). */
static sr_status parse_layer_weights(const sr_config *cfg, double *alpha, const double **ap, sr_error *err)
{
    const int64_t K = cfg->model_layers;
    *ap = NULL;
    if (!cfg->model_layer_weights[0]) return SR_OK;
    int n = 0;
    const char *p = cfg->model_layer_weights;
    while (*p && n <= K) {
        char *end;
        alpha[n] = strtod(p, &end);
        if (end == p) break;
        n++;
        p = *end == ',' ? end + 1 : end;
    }
    if (n != K + 1 || *p)
        SR_FAIL(err, SR_ERR_CONFIG, "model.layer_weights: want %lld comma-separated numbers (model.layers + 1), "
                "got '%s'", (long long)(K + 1), cfg->model_layer_weights);
    *ap = alpha;
    return SR_OK;
}

static sr_status lgcn_create(sr_backbone **out, const sr_backbone_init *in, sr_error *err)
{
    const sr_config *cfg = in->cfg;
    double alpha[65];
    const double *ap;
    SR_TRY(parse_layer_weights(cfg, alpha, &ap, err));
    lgcn_bb *b = calloc(1, sizeof *b);
    if (!b) SR_FAIL(err, SR_ERR_NOMEM, "out of memory for the LightGCN backbone");
    b->base.ops = &sr_backbone_lightgcn;
    *out = &b->base;
    b->opt = *in->opt;
    b->weight_decay = in->opt->weight_decay;
    b->opt.weight_decay = 0;
    b->train = &in->split[SR_SPLIT_TRAIN];
    b->items = in->items;
    b->rank = in->c->rank;
    b->num_users = in->num_users;
    b->num_items = in->num_items;
    b->mem = in->mem;
    if (sr_mf_create(&b->mf, in, err) != SR_OK) goto fail;
    b->ex_user = sr_backbone_example_users(b->train, lgcn_examples_of, in->mem, err);
    if (!b->ex_user) goto fail;
    const int64_t K = cfg->model_layers, d = b->mf.d, nu = in->u1 - in->u0, ni = b->mf.n_items;
    if (sr_lgcn_create(&b->g, in->c, in->items, in->u0, in->u1, in->num_users, b->train->indptr, b->train->items,
                       in->popularity, K, ap, d, in->mem, err) != SR_OK)
        goto fail;
    float **tabs[] = {&b->u_out, &b->du_out, &b->deu, &b->i_out, &b->di_out, &b->dei};
    for (int k = 0; k < 6; k++) {
        *tabs[k] = sr_mem_calloc(in->mem, (size_t)((k < 3 ? nu : ni) * d + 1), sizeof(float), "lightgcn tables", err);
        if (!*tabs[k]) goto fail;
    }
    sr_log_root(in->log, SR_LOG_INFO,
                "lightgcn: %lld layers, %lld local edges, halo %lld rows; %lld bytes per round per rank "
                "(the full table would be %lld)",
                (long long)K, (long long)sr_lgcn_local_edges(b->g), (long long)sr_lgcn_halo_rows(b->g),
                (long long)sr_lgcn_round_bytes(b->g), (long long)sr_lgcn_full_table_bytes(b->g));
    return SR_OK;
fail:
    lgcn_destroy(out);
    return err->code;
}

static sr_status lgcn_prepare(sr_backbone *bb, sr_error *err)
{
    lgcn_bb *b = (lgcn_bb *)bb;
    return sr_lgcn_forward(b->g, b->mf.user, b->mf.item, b->u_out, b->i_out, err);
}

static sr_status lgcn_train_queries(sr_backbone *bb, const int64_t *ex, int64_t nb, int64_t step, float *q,
                                    int64_t *targets, int64_t *nq, sr_error *err)
{
    lgcn_bb *b = (lgcn_bb *)bb;
    const int64_t d = b->mf.d;
    for (int64_t k = 0; k < nb; k++) {
        memcpy(q + k * d, b->u_out + b->ex_user[ex[k]] * d, (size_t)d * sizeof(float));
        targets[k] = b->train->items[ex[k]];
    }
    *nq = nb;
    return SR_OK;
}

static const float *lgcn_item_rows(const sr_backbone *bb) { return ((const lgcn_bb *)bb)->i_out; }

/* L2 on the batch's layer-0 rows: its users, and the local rows of the
 * global batch's positive items. */
static void batch_l2(lgcn_bb *b, const sr_backbone_grads *g)
{
    const int64_t d = b->mf.d;
    const float wd = g->B > 0 ? (float)(b->weight_decay / (double)g->B) : 0.0f;
    if (wd <= 0) return;
    for (int64_t k = 0; k < g->nb; k++) {
        int64_t u = b->ex_user[g->ex[k]];
        for (int64_t j = 0; j < d; j++) b->deu[u * d + j] += wd * b->mf.user[u * d + j];
    }
    for (int64_t k = 0; k < g->B; k++) {
        if (sr_shard_owner(b->items, g->targets[k]) != b->rank) continue;
        int64_t r = sr_shard_local(b->items, g->targets[k]);
        for (int64_t j = 0; j < d; j++) b->dei[r * d + j] += wd * b->mf.item[r * d + j];
    }
}

static sr_status lgcn_update(sr_backbone *bb, const sr_backbone_grads *g, sr_error *err)
{
    lgcn_bb *b = (lgcn_bb *)bb;
    const int64_t d = b->mf.d, nu = b->mf.u1 - b->mf.u0, ni = b->mf.n_items;
    const sr_item_grad *dv = g->dv;
    memset(b->di_out, 0, (size_t)(ni * d) * sizeof(float));
    if (dv->rows)
        for (int64_t k = 0; k < dv->n; k++)
            memcpy(b->di_out + dv->rows[k] * d, dv->g + k * d, (size_t)d * sizeof(float));
    else if (dv->n > 0)
        memcpy(b->di_out, dv->g, (size_t)(ni * d) * sizeof(float));
    memset(b->du_out, 0, (size_t)(nu * d) * sizeof(float));
    for (int64_t k = 0; k < g->nb; k++) {
        float *du = b->du_out + b->ex_user[g->ex[k]] * d;
        const float *src = g->dq + k * d;
        for (int64_t j = 0; j < d; j++) du[j] += src[j];
    }
    SR_TRY(sr_lgcn_backward(b->g, b->du_out, b->di_out, b->deu, b->dei, err));
    batch_l2(b, g);
    sr_optim_update(&b->opt, &b->mf.user_state, b->mf.user, b->deu, NULL, nu, d, g->step);
    sr_optim_update(&b->opt, &b->mf.item_state, b->mf.item, b->dei, NULL, ni, d, g->step);
    return SR_OK;
}

static void lgcn_set_lr(sr_backbone *bb, double lr) { ((lgcn_bb *)bb)->opt.lr = lr; }

static sr_status lgcn_eval_queries(sr_backbone *bb, const int64_t *users, int64_t nb, sr_split split, float *q,
                                   sr_error *err)
{
    lgcn_bb *b = (lgcn_bb *)bb;
    sr_rows_gather(q, b->u_out, users, nb, b->mf.d);
    return SR_OK;
}

static void lgcn_tables(sr_backbone *bb, sr_table_kind kind, bool for_write, sr_table_set *out)
{
    lgcn_bb *b = (lgcn_bb *)bb;
    sr_mf_tables(&b->mf, b->items, b->num_users, b->num_items, kind, out);
}

static void lgcn_round_bytes(const sr_backbone *bb, int64_t *round, int64_t *full_table)
{
    const lgcn_bb *b = (const lgcn_bb *)bb;
    *round = sr_lgcn_round_bytes(b->g);
    *full_table = sr_lgcn_full_table_bytes(b->g);
}

const sr_backbone_ops sr_backbone_lightgcn = {
    .name = "lightgcn",
    .help = "LightGCN: queries and item rows propagated over the user-item graph (model.layers rounds)",
    .examples_of = lgcn_examples_of,
    .queries_per_example = lgcn_queries_per_example,
    .create = lgcn_create,
    .destroy = lgcn_destroy,
    .prepare = lgcn_prepare,
    .train_queries = lgcn_train_queries,
    .item_rows = lgcn_item_rows,
    .update = lgcn_update,
    .set_lr = lgcn_set_lr,
    .eval_queries = lgcn_eval_queries,
    .tables = lgcn_tables,
    .round_bytes = lgcn_round_bytes,
};
