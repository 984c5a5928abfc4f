/* train.c: MF + exact sharded softmax training and full-ranking evaluation.
 *
 * One step (DESIGN.md section 2): local queries -> all-gather (Q, targets) ->
 * every rank scores its item shard (tiled, never B x N_r) and the per-query
 * log-sum-exp triples meet in one all-reduce -> item gradients stay local,
 * query gradients are reduce-scattered back to the users' owners -> dense
 * update of the local item rows, row-sparse update of the batch's users.
 */
#include "train/train.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "comm/collectives.h"
#include "comm/gather.h"
#include "comm/shard.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rng.h"
#include "io/checkpoint.h"
#include "io/ckpt_dir.h"
#include "io/fault.h"
#include "io/dataset.h"
#include "loss/loss.h"
#include "models/lightgcn.h"
#include "models/mf.h"
#include "models/sasrec.h"
#include "models/seqembed.h"
#include "models/normalize.h"
#include "nn/optim.h"
#include "train/eval_kernels.h"
#include "train/eval_mpi.h"
#include "train/guard.h"
#include "train/metrics.h"

struct sr_trainer {
    const sr_comm *c;
    sr_config cfg;
    sr_log log;
    sr_mem mem;
    sr_dataset_meta meta;
    sr_shard items;
    int64_t u0, u1;
    sr_csr split[SR_SPLIT_COUNT];
    int64_t ex_offset;  /* global index of this rank's first training example */
    int64_t ex_total;   /* training examples over all ranks */
    int64_t n_ex;       /* this rank's training examples */
    int64_t *ex_order;  /* local example permutation (indices into train items) */
    int64_t *ex_user;   /* local user index of each local training example */
    sr_optim opt;
    sr_mf mf;
    int64_t step;       /* global optimiser steps taken */
    int64_t max_local_batch;
    /* step buffers */
    float *q_local, *q_all, *dq_all, *dq_local, *ug;
    int64_t *t_local, *t_all, *slot, *rows;
    int64_t *counts;    /* per-rank batch rows */
    float *vn, *vinv, *qinv; /* cosine scoring: normalised item rows, 1/norms */
    sr_loss *loss;
    int64_t *pop;       /* train count of every item (global order) */
    /* backbone */
    enum { BB_MF, BB_LIGHTGCN, BB_SASREC } bb;
    sr_lgcn *lgcn;      /* LightGCN: the graph; the mf tables are layer 0 */
    float *u_out, *i_out, *du_out, *di_out, *deu, *dei;
    sr_optim opt_nowd;  /* LightGCN: L2 goes on the batch rows, not the dense update */
    sr_lr_schedule lrs; /* train.lr_milestones: the lr of every step */
    int64_t steps_per_epoch; /* ceil(global examples / global batch), set once at creation */
    /* SASRec: an example is a user's train sequence; every position is a query */
    sr_sasrec *sas;
    sr_seqembed *emb;
    int64_t L, n_seq_max; /* positions per sequence; sequences per forward */
    int64_t *ids, *tgt, *qpos;   /* n_seq_max x L: input ids (-1 pad), next items, query positions */
    uint8_t *valid;
    float *x, *h, *dh, *dx;      /* n_seq_max x L x d */
    float *in_item;              /* untied input table (n_items x d), NULL when tied */
    sr_optim_state in_state;
};

#define EVAL_BATCH 256 /* users per rank per evaluation step */

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

static sr_status make_dirs(const char *path, sr_error *err)
{
    char buf[SR_CONFIG_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                SR_FAIL(err, SR_ERR_IO, "%s: cannot create run directory: %s", buf, strerror(errno));
            *p = saved;
            if (!saved) break;
        }
    }
    return SR_OK;
}

/* Out of memory on one rank: abort the job (peers are in collectives). */
#define ALLOC(ptr, n, what)                                                              \
    do {                                                                                 \
        size_t n_ = (size_t)(n);                                                         \
        (ptr) = sr_mem_calloc(&t->mem, n_ > 0 ? n_ : 1, sizeof *(ptr), what, err);      \
        if (!(ptr)) sr_comm_abort(c, err);                                               \
    } while (0)

/* LightGCN: the graph of this rank's train rows (planned once, collective)
 * and the propagated tables. Errors are agreed on every rank. */
static sr_status setup_lightgcn(sr_trainer *t, sr_error *err)
{
    const sr_comm *c = t->c;
    const sr_config *cfg = &t->cfg;
    const int64_t K = cfg->model_layers, d = t->mf.d;
    double alpha[65];
    const double *ap = NULL;
    if (cfg->model_layer_weights[0]) {
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
        ap = alpha;
    }
    t->bb = BB_LIGHTGCN;
    t->opt_nowd = t->opt;
    t->opt_nowd.weight_decay = 0;
    const sr_csr *tr = &t->split[SR_SPLIT_TRAIN];
    SR_TRY(sr_lgcn_create(&t->lgcn, c, &t->items, t->u0, t->u1, t->meta.num_users, tr->indptr, tr->items,
                          t->pop, K, ap, d, &t->mem, err));
    const int64_t nu = t->u1 - t->u0, ni = t->mf.n_items;
    t->u_out = sr_mem_calloc(&t->mem, (size_t)(nu * d + 1), sizeof(float), "lightgcn tables", err);
    t->du_out = sr_mem_calloc(&t->mem, (size_t)(nu * d + 1), sizeof(float), "lightgcn tables", err);
    t->deu = sr_mem_calloc(&t->mem, (size_t)(nu * d + 1), sizeof(float), "lightgcn tables", err);
    t->i_out = sr_mem_calloc(&t->mem, (size_t)(ni * d + 1), sizeof(float), "lightgcn tables", err);
    t->di_out = sr_mem_calloc(&t->mem, (size_t)(ni * d + 1), sizeof(float), "lightgcn tables", err);
    t->dei = sr_mem_calloc(&t->mem, (size_t)(ni * d + 1), sizeof(float), "lightgcn tables", err);
    if (!t->u_out || !t->du_out || !t->deu || !t->i_out || !t->di_out || !t->dei) sr_comm_abort(c, err);
    sr_log_root(&t->log, SR_LOG_INFO,
                "lightgcn: %lld layers, %lld local edges, halo %lld rows; %lld bytes per round per rank "
                "(the full table would be %lld)",
                (long long)K, (long long)sr_lgcn_local_edges(t->lgcn), (long long)sr_lgcn_halo_rows(t->lgcn),
                (long long)sr_lgcn_round_bytes(t->lgcn), (long long)sr_lgcn_full_table_bytes(t->lgcn));
    return SR_OK;
}

/* SASRec: the replicated transformer, the input lookup over the sharded
 * item table, buffers for max(train, eval) sequences, and the untied input
 * table when model.tie_embeddings is off. */
static sr_status setup_sasrec(sr_trainer *t, sr_error *err)
{
    const sr_comm *c = t->c;
    const sr_config *cfg = &t->cfg;
    const int64_t d = t->mf.d, L = cfg->model_max_len;
    t->bb = BB_SASREC;
    t->L = L;
    t->n_seq_max = t->max_local_batch > EVAL_BATCH ? t->max_local_batch : EVAL_BATCH;
    sr_sasrec_opts o = {d, cfg->model_layers, cfg->model_heads, L, cfg->model_dropout, cfg->model_tie_embeddings,
                        t->meta.num_items, (uint64_t)cfg->train_seed, cfg->model_init_std};
    SR_TRY(sr_sasrec_create(&t->sas, &o, &t->opt, t->n_seq_max, &t->mem, err));
    SR_TRY(sr_seqembed_create(&t->emb, c, &t->items, d, &t->mem, err));
    const int64_t np = t->n_seq_max * L;
    t->ids = sr_mem_calloc(&t->mem, (size_t)np, sizeof *t->ids, "sasrec buffers", err);
    t->tgt = sr_mem_calloc(&t->mem, (size_t)np, sizeof *t->tgt, "sasrec buffers", err);
    t->qpos = sr_mem_calloc(&t->mem, (size_t)np, sizeof *t->qpos, "sasrec buffers", err);
    t->valid = sr_mem_calloc(&t->mem, (size_t)np, 1, "sasrec buffers", err);
    t->x = sr_mem_calloc(&t->mem, (size_t)(np * d), sizeof(float), "sasrec buffers", err);
    t->h = sr_mem_calloc(&t->mem, (size_t)(np * d), sizeof(float), "sasrec buffers", err);
    t->dh = sr_mem_calloc(&t->mem, (size_t)(np * d), sizeof(float), "sasrec buffers", err);
    t->dx = sr_mem_calloc(&t->mem, (size_t)(np * d), sizeof(float), "sasrec buffers", err);
    if (!t->ids || !t->tgt || !t->qpos || !t->valid || !t->x || !t->h || !t->dh || !t->dx) sr_comm_abort(c, err);
    if (!cfg->model_tie_embeddings) {
        int64_t n = t->mf.n_items;
        t->in_item = sr_mem_calloc(&t->mem, (size_t)(n * d + 1), sizeof(float), "input item table", err);
        if (!t->in_item || sr_optim_state_create(&t->in_state, &t->opt, n, d, &t->mem, err) != SR_OK)
            sr_comm_abort(c, err);
        /* table id 7: a stream of its own, layout-independent like the others */
        sr_table_init_normal(t->in_item, n, d, cfg->model_init_std, (uint64_t)cfg->train_seed, 7, &t->items, c->rank, 0);
    }
    return SR_OK;
}

sr_status sr_trainer_create(sr_trainer **out, const sr_comm *c, const sr_config *cfg, sr_error *err)
{
    *out = NULL;
    int64_t *pop = NULL;
    sr_trainer *t = calloc(1, sizeof *t);
    if (!t) SR_FAIL(err, SR_ERR_NOMEM, "out of memory for the trainer");
    t->c = c;
    t->cfg = *cfg;
    sr_log_init(&t->log, c->rank, c->size);
    sr_mem_init(&t->mem, 0);

    if (!cfg->data_path[0])
        sr_error_set(err, SR_ERR_CONFIG, __FILE__, __LINE__, "data.path is not set (give a dataset from softrec data convert/synth)");

    if (sr_comm_agree(c, err) != SR_OK) goto fail_early;
    sr_dataset *ds = NULL;
    if (sr_dataset_open(&ds, c, cfg->data_path, err) != SR_OK) goto fail_early;
    t->meta = *sr_dataset_meta_get(ds);
    sr_dataset_user_range(t->meta.num_users, c->size, c->rank, &t->u0, &t->u1);
    for (int s = 0; s < SR_SPLIT_COUNT; s++) {
        if (sr_dataset_read_split(ds, (sr_split)s, t->u0, t->u1, &t->split[s], &t->mem, err) != SR_OK) {
            sr_dataset_close(&ds);
            goto fail;
        }
    }
    /* Train popularity of every item: proposals and the hsm tree need it. */
    pop = sr_mem_calloc(&t->mem, (size_t)(t->meta.num_items > 0 ? t->meta.num_items : 1),
                                 sizeof *pop, "item popularity", err);
    if (!pop) sr_comm_abort(c, err);
    if (sr_dataset_read_popularity(ds, 0, t->meta.num_items, pop, err) != SR_OK) {
        sr_mem_free(&t->mem, pop);
        sr_dataset_close(&ds);
        goto fail;
    }
    sr_dataset_close(&ds);
    /* Same inputs on every rank: these fail alike everywhere. */
    if (sr_shard_init_named(&t->items, cfg->shard_layout, t->meta.num_items, c->size, err) != SR_OK)
        goto fail;
    if (sr_optim_from_config(&t->opt, cfg, err) != SR_OK) goto fail;
    if (sr_lr_schedule_from_config(&t->lrs, cfg, err) != SR_OK) goto fail;

    /* Local examples and their global offset (for the unshuffled global order). */
    const sr_csr *tr = &t->split[SR_SPLIT_TRAIN];
    const bool seq = !strcmp(cfg->model_name, "sasrec");
    /* Examples: train entries (user, item), or for SASRec the users whose
     * train sequence has a next item to predict (two or more items). */
    t->n_ex = 0;
    for (int64_t u = 0; u < t->u1 - t->u0; u++)
        t->n_ex += seq ? (tr->indptr[u + 1] - tr->indptr[u] >= 2) : tr->indptr[u + 1] - tr->indptr[u];
    int64_t *all = malloc((size_t)c->size * sizeof *all);
    if (!all) SR_FAIL(err, SR_ERR_NOMEM, "out of memory");
    if (sr_comm_allgather_i64(c, t->n_ex, all, err) != SR_OK) {
        free(all);
        goto fail;
    }
    t->ex_total = 0;
    t->ex_offset = 0;
    for (int r = 0; r < c->size; r++) {
        if (r < c->rank) t->ex_offset += all[r];
        t->ex_total += all[r];
    }
    free(all);
    if (t->ex_total == 0)
        sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: the train split is empty", cfg->data_path);
    if (sr_comm_agree(c, err) != SR_OK) goto fail;
    ALLOC(t->ex_order, t->n_ex, "example order");
    ALLOC(t->ex_user, t->n_ex, "example users");
    for (int64_t u = 0, e = 0; u < t->u1 - t->u0; u++) {
        int64_t n = tr->indptr[u + 1] - tr->indptr[u];
        if (seq && n >= 2) t->ex_user[e++] = u;
        else if (!seq)
            for (int64_t k = 0; k < n; k++) t->ex_user[e++] = u;
    }

    if (sr_mf_create(&t->mf, cfg, &t->opt, t->u0, t->u1, &t->items, c->rank, &t->mem, err) != SR_OK)
        sr_comm_abort(c, err);

    /* Buffers for the largest step: a rank holds at most ceil(E_r / steps)
     * (shuffled) or the global batch (unshuffled) examples. */
    int64_t B = cfg->train_batch_size, d = cfg->model_dim;
    int64_t steps = ceil_div(t->ex_total, B);
    t->steps_per_epoch = steps;
    t->max_local_batch = cfg->train_shuffle ? ceil_div(t->n_ex, steps) : B;
    if (t->max_local_batch > B) t->max_local_batch = B;
    /* Queries per example: one, or every position of a SASRec sequence. */
    const int64_t qpe = seq ? cfg->model_max_len : 1;
    const int64_t mq = t->max_local_batch * qpe;
    int64_t Bmax = B * qpe + c->size; /* rounding of per-rank shares */
    ALLOC(t->q_local, mq * d, "step buffers");
    ALLOC(t->dq_local, mq * d, "step buffers");
    ALLOC(t->ug, t->max_local_batch * d, "step buffers");
    ALLOC(t->t_local, mq, "step buffers");
    ALLOC(t->rows, t->max_local_batch, "step buffers");
    ALLOC(t->q_all, Bmax * d, "step buffers");
    ALLOC(t->dq_all, Bmax * d, "step buffers");
    ALLOC(t->t_all, Bmax, "step buffers");
    ALLOC(t->slot, t->u1 - t->u0, "user slots");
    ALLOC(t->counts, c->size, "step buffers");
    if (cfg->model_temperature > 0) {
        ALLOC(t->vn, t->mf.n_items * d, "normalised item rows");
        ALLOC(t->vinv, t->mf.n_items, "item norms");
        ALLOC(t->qinv, Bmax > EVAL_BATCH * c->size ? Bmax : EVAL_BATCH * c->size, "query norms");
    }
    for (int64_t u = 0; u < t->u1 - t->u0; u++) t->slot[u] = -1;
    sr_loss_init li = {c, &t->cfg, &t->items, pop, &t->opt, Bmax, d, &t->mem};
    (void)sr_loss_create(&t->loss, &li, err);
    t->pop = pop; /* kept for analysis (proposals of analyze lse-bias) */
    pop = NULL;
    if (sr_comm_agree(c, err) != SR_OK) goto fail; /* config errors alike, OOM on one rank */
    if (!strcmp(cfg->model_name, "lightgcn") && setup_lightgcn(t, err) != SR_OK) goto fail;
    if (seq && setup_sasrec(t, err) != SR_OK) goto fail;
    if (cfg->train_init[0] && sr_trainer_load(t, cfg->train_init, err) != SR_OK) goto fail;
    *out = t;
    return SR_OK;
fail: /* every path here carries an error all ranks agreed on */
    sr_mem_free(&t->mem, pop);
    sr_trainer_destroy(&t);
    return err->code;
fail_early:
    free(t);
    return err->code;
}

void sr_trainer_destroy(sr_trainer **tp)
{
    sr_trainer *t = *tp;
    if (!t) return;
    sr_loss_destroy(&t->loss);
    sr_lgcn_destroy(&t->lgcn);
    sr_sasrec_destroy(&t->sas);
    sr_seqembed_destroy(&t->emb);
    void *sq[] = {t->ids, t->tgt, t->qpos, t->valid, t->x, t->h, t->dh, t->dx, t->in_item};
    for (size_t i = 0; i < sizeof sq / sizeof sq[0]; i++) sr_mem_free(&t->mem, sq[i]);
    if (t->in_item) sr_optim_state_destroy(&t->in_state, &t->mem);
    void *lg[] = {t->u_out, t->i_out, t->du_out, t->di_out, t->deu, t->dei};
    for (size_t i = 0; i < sizeof lg / sizeof lg[0]; i++) sr_mem_free(&t->mem, lg[i]);
    sr_mem_free(&t->mem, t->pop);
    sr_mf_destroy(&t->mf, &t->mem);
    for (int s = 0; s < SR_SPLIT_COUNT; s++) sr_csr_free(&t->split[s], &t->mem);
    void *bufs[] = {t->ex_order, t->ex_user, t->q_local, t->dq_local, t->ug, t->t_local, t->rows,
                    t->q_all, t->dq_all, t->t_all, t->slot, t->counts,
                    t->vn, t->vinv, t->qinv};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sr_mem_free(&t->mem, bufs[i]);
    sr_shard_destroy(&t->items);
    free(t);
    *tp = NULL;
}

/* Whether a SASRec parameter view is optimiser state (".m", ".v": Adam;
 * ".g2": Adagrad) rather than a weight. */
static bool optim_view(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcmp(dot, ".m") || !strcmp(dot, ".v") || !strcmp(dot, ".g2"));
}

/* The model tables of a checkpoint: item and user embeddings, and the
 * loss's own sharded table when it has one (hsm inner nodes). */
#define MAX_TABLES 96
/* Names of replicated tables ("/model/" + parameter name), kept with the
 * tables that point at them. */
typedef struct table_names {
    char name[MAX_TABLES][96];
} table_names;

/* The model tables of a checkpoint: item and user embeddings, the loss's
 * own sharded table (hsm inner nodes), SASRec's untied input table and its
 * replicated weights (for_write: only rank 0 writes replicated rows; every
 * rank reads them all). Returns the count. */
static int model_tables(sr_trainer *t, sr_ckpt_table *tabs, table_names *names, bool for_write)
{
    int n = 0;
    tabs[n++] = (sr_ckpt_table){"/model/item_embedding", t->mf.item, t->mf.n_items, t->meta.num_items,
                                t->mf.d, &t->items, 0};
    tabs[n++] = (sr_ckpt_table){"/model/user_embedding", t->mf.user, t->u1 - t->u0, t->meta.num_users,
                                t->mf.d, NULL, t->u0};
    const sr_shard *map = NULL;
    int64_t n_local = 0;
    float *w = sr_loss_params(t->loss, &map, &n_local);
    if (w) tabs[n++] = (sr_ckpt_table){"/model/loss_nodes", w, n_local, map->n, t->mf.d, map, 0};
    if (t->in_item)
        tabs[n++] = (sr_ckpt_table){"/model/item_input_embedding", t->in_item, t->mf.n_items, t->meta.num_items,
                                    t->mf.d, &t->items, 0};
    if (t->sas) {
        sr_param_view pv[MAX_TABLES];
        int np = sr_sasrec_params(t->sas, pv, MAX_TABLES);
        for (int i = 0; i < np && n < MAX_TABLES; i++) {
            if (optim_view(pv[i].name)) continue; /* optimiser state: not part of the model */
            snprintf(names->name[n], sizeof names->name[n], "/model/%s", pv[i].name);
            bool mine = !for_write || t->c->rank == 0;
            tabs[n++] = (sr_ckpt_table){names->name[n - 1], pv[i].data, mine ? pv[i].rows : 0, pv[i].rows,
                                        pv[i].cols, NULL, 0};
        }
    }
    return n;
}

/* Optimiser state tables beside the model's ("/optim/<table>/m|v"). */
static int optim_tables(sr_trainer *t, sr_ckpt_table *tabs, int n, table_names *names, bool for_write)
{
    typedef struct opt_src {
        const char *name;
        sr_optim_state *st;
        int64_t local, global;
        const sr_shard *map;
        int64_t first;
    } opt_src;
    opt_src src[4];
    int ns = 0;
    const int64_t d = t->mf.d;
    src[ns++] = (opt_src){"item_embedding", &t->mf.item_state, t->mf.n_items, t->meta.num_items, &t->items, 0};
    src[ns++] = (opt_src){"user_embedding", &t->mf.user_state, t->u1 - t->u0, t->meta.num_users, NULL, t->u0};
    const sr_shard *map = NULL;
    int64_t nl = 0;
    if (sr_loss_params(t->loss, &map, &nl) && sr_loss_param_state(t->loss))
        src[ns++] = (opt_src){"loss_nodes", sr_loss_param_state(t->loss), nl, map->n, map, 0};
    if (t->in_item)
        src[ns++] = (opt_src){"item_input_embedding", &t->in_state, t->mf.n_items, t->meta.num_items, &t->items, 0};
    for (int i = 0; i < ns; i++) {
        float *mv[2] = {src[i].st->m, src[i].st->v};
        for (int j = 0; j < 2 && n < MAX_TABLES; j++) {
            if (!mv[j]) continue;
            snprintf(names->name[n], sizeof names->name[n], "/optim/%s/%s", src[i].name, j ? "v" : "m");
            tabs[n] = (sr_ckpt_table){names->name[n], mv[j], src[i].local, src[i].global, d, src[i].map, src[i].first};
            n++;
        }
    }
    if (t->sas) { /* replicated: the optimiser views model_tables left out */
        sr_param_view pv[MAX_TABLES];
        int np = sr_sasrec_params(t->sas, pv, MAX_TABLES);
        for (int i = 0; i < np && n < MAX_TABLES; i++) {
            if (!optim_view(pv[i].name)) continue;
            snprintf(names->name[n], sizeof names->name[n], "/optim/%s", pv[i].name);
            bool mine = !for_write || t->c->rank == 0;
            tabs[n] = (sr_ckpt_table){names->name[n], pv[i].data, mine ? pv[i].rows : 0, pv[i].rows, pv[i].cols, NULL, 0};
            n++;
        }
    }
    return n;
}

/* Training position and history, replicated (the same on every rank). */
typedef struct train_pos {
    int64_t step, epoch, cursor; /* optimiser steps; epoch in progress; its steps done */
    int64_t best_epoch, skipped;
    uint64_t best_bits, train_bits, loss_bits; /* doubles: best valid NDCG, seconds trained, epoch loss sum */
} train_pos;

/* steps: steps per epoch, for the load-time ranges (0 on save). Bounds
 * keep (epoch - 1) * steps + cursor far from overflow. */
#define POS_MAX_EPOCH ((int64_t)1 << 24)
#define POS_MAX_STEP ((int64_t)1 << 53)
static int pos_state(train_pos *p, sr_ckpt_state *st, int64_t steps)
{
    const int r = steps > 0;
    st[0] = (sr_ckpt_state){"step", SR_CKPT_I64, &p->step, 1, 0, r, 0, POS_MAX_STEP};
    st[1] = (sr_ckpt_state){"epoch", SR_CKPT_I64, &p->epoch, 1, 0, r, 1, POS_MAX_EPOCH};
    st[2] = (sr_ckpt_state){"cursor", SR_CKPT_I64, &p->cursor, 1, 0, r, 0, steps};
    st[3] = (sr_ckpt_state){"best_epoch", SR_CKPT_I64, &p->best_epoch, 1, 0, r, 0, POS_MAX_EPOCH};
    st[4] = (sr_ckpt_state){"skipped_steps", SR_CKPT_I64, &p->skipped, 1, 0, r, 0, POS_MAX_STEP};
    st[5] = (sr_ckpt_state){"best_valid_bits", SR_CKPT_U64, &p->best_bits, 1, 0, 0, 0, 0};
    st[6] = (sr_ckpt_state){"train_seconds_bits", SR_CKPT_U64, &p->train_bits, 1, 0, 0, 0, 0};
    st[7] = (sr_ckpt_state){"epoch_loss_bits", SR_CKPT_U64, &p->loss_bits, 1, 0, 0, 0, 0};
    return 8;
}

/* The loaded position must be one this run could have reached: every step
 * of the epochs before, and cursor steps of this one, was taken or skipped
 * (step is also the learning-rate / optimiser schedule's position); the
 * best epoch is a finished one; the stored doubles are finite. Replicated
 * values: the same verdict on every rank. */
static sr_status check_pos(const train_pos *p, int64_t steps, const char *path, sr_error *err)
{
    double best, secs, loss;
    memcpy(&best, &p->best_bits, sizeof best);
    memcpy(&secs, &p->train_bits, sizeof secs);
    memcpy(&loss, &p->loss_bits, sizeof loss);
    if (p->step + p->skipped != (p->epoch - 1) * steps + p->cursor)
        SR_FAIL(err, SR_ERR_DATA,
                "%s: /state/step: %lld steps taken + %lld skipped do not reach epoch %lld, cursor %lld at %lld steps "
                "per epoch (train.batch_size or the data changed since it was saved?)",
                path, (long long)p->step, (long long)p->skipped, (long long)p->epoch, (long long)p->cursor,
                (long long)steps);
    if (p->best_epoch >= p->epoch)
        SR_FAIL(err, SR_ERR_DATA, "%s: /state/best_epoch: %lld is not a finished epoch (epoch %lld in progress)", path,
                (long long)p->best_epoch, (long long)p->epoch);
    if (!isfinite(best) || !isfinite(secs) || secs < 0 || !isfinite(loss))
        SR_FAIL(err, SR_ERR_DATA, "%s: /state: best_valid %g, train_seconds %g, epoch_loss %g: not finite or negative",
                path, best, secs, loss);
    return SR_OK;
}

/* The attributes of a checkpoint, the resolved config as INI text included
 * (info->config_ini is malloc'ed: free it; out of memory aborts the job). */
static void fill_info(sr_trainer *t, sr_ckpt_info *info, int64_t epoch)
{
    memset(info, 0, sizeof *info);
    info->step = t->step;
    info->epoch = epoch;
    info->num_users = t->meta.num_users;
    info->num_items = t->meta.num_items;
    info->dim = t->mf.d;
    snprintf(info->dataset, sizeof info->dataset, "%s", t->cfg.data_path);
    snprintf(info->dataset_sha256, sizeof info->dataset_sha256, "%s", t->meta.source_sha256);
    size_t need = sr_config_write_ini(&t->cfg, NULL, 0) + 1;
    info->config_ini = malloc(need);
    if (!info->config_ini) sr_comm_abort(t->c, &(sr_error){SR_ERR_NOMEM, __FILE__, __LINE__, "out of memory"});
    sr_config_write_ini(&t->cfg, info->config_ini, need);
}

/* Commit a training checkpoint (collective; the save itself is watched). */
static sr_status save_checkpoint(sr_trainer *t, train_pos *p, sr_guard *g, sr_fault *fault, sr_error *err)
{
    sr_ckpt_table tabs[MAX_TABLES];
    table_names names;
    int n = model_tables(t, tabs, &names, true);
    n = optim_tables(t, tabs, n, &names, true);
    /* Wall time differs per rank: store the slowest rank's (replicated). */
    double tt;
    memcpy(&tt, &p->train_bits, sizeof tt);
    SR_TRY(sr_comm_allreduce_max(t->c, &tt, 1, err));
    memcpy(&p->train_bits, &tt, sizeof tt);
    sr_ckpt_state st[8];
    int ns = pos_state(p, st, 0);
    sr_ckpt_info info;
    fill_info(t, &info, p->epoch);
    if (g) sr_guard_watch(g, "checkpoint save", 600);
    sr_status st_ = sr_ckpt_dir_save(t->c, t->cfg.run_dir, t->step, &info, tabs, n, st, ns,
                                     t->cfg.train_keep_checkpoints, fault, err);
    if (g) sr_guard_unwatch(g);
    free(info.config_ini);
    return st_;
}

/* Continue from run_dir's latest committed checkpoint when there is one
 * (collective); from gets its path, "" when there is none. */
static sr_status resume_checkpoint(sr_trainer *t, train_pos *p, int64_t steps, sr_fault *fault, char *from,
                                   size_t len, sr_error *err)
{
    sr_ckpt_table tabs[MAX_TABLES];
    table_names names;
    int n = model_tables(t, tabs, &names, false);
    n = optim_tables(t, tabs, n, &names, false);
    sr_ckpt_state st[8];
    int ns = pos_state(p, st, steps);
    sr_ckpt_info info;
    memset(&info, 0, sizeof info);
    SR_TRY(sr_ckpt_dir_load(t->c, t->cfg.run_dir, tabs, n, st, ns, &info, fault, from, len, err));
    free(info.config_ini);
    if (from[0]) SR_TRY(check_pos(p, steps, from, err));
    if (from[0]) t->step = p->step;
    return SR_OK;
}

sr_status sr_trainer_load(sr_trainer *t, const char *path, sr_error *err)
{
    sr_ckpt_table tabs[MAX_TABLES];
    table_names names;
    int n = model_tables(t, tabs, &names, false);
    sr_ckpt_info info;
    SR_TRY(sr_ckpt_read(t->c, path, tabs, n, &info, err));
    free(info.config_ini);
    sr_log_root(&t->log, SR_LOG_INFO, "loaded model from %s (step %lld)", path, (long long)info.step);
    return SR_OK;
}

static sr_status save_model(sr_trainer *t, const char *path, int64_t epoch, sr_error *err)
{
    sr_ckpt_table tabs[MAX_TABLES];
    table_names names;
    int n = model_tables(t, tabs, &names, true);
    sr_ckpt_info info;
    fill_info(t, &info, epoch);
    sr_status st = sr_ckpt_write(t->c, path, &info, tabs, n, err);
    free(info.config_ini);
    return st;
}

/* This rank's examples of step s: [*lo, *hi) positions of ex_order. */
static void step_range(const sr_trainer *t, int64_t s, int64_t steps, int64_t *lo, int64_t *hi)
{
    int64_t n = t->n_ex;
    if (t->cfg.train_shuffle) {
        *lo = s * n / steps;
        *hi = (s + 1) * n / steps;
        return;
    }
    /* Unshuffled: global batch s is the same whatever the rank count. */
    int64_t gs = s * t->ex_total / steps, ge = (s + 1) * t->ex_total / steps;
    int64_t a = gs > t->ex_offset ? gs : t->ex_offset;
    int64_t b = ge < t->ex_offset + n ? ge : t->ex_offset + n;
    if (b < a) b = a;
    *lo = a - t->ex_offset;
    *hi = b - t->ex_offset;
}

static void shuffle_examples(sr_trainer *t, int64_t epoch)
{
    int64_t n = t->n_ex;
    for (int64_t i = 0; i < n; i++) t->ex_order[i] = i;
    if (!t->cfg.train_shuffle) return;
    sr_rng r;
    sr_rng_init(&r, (uint64_t)t->cfg.train_seed, (uint32_t)t->c->rank, SR_STREAM_SHUFFLE);
    sr_rng_seek(&r, (uint64_t)epoch << 40); /* one disjoint block range per epoch */
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)sr_rng_below(&r, (uint64_t)i + 1);
        int64_t tmp = t->ex_order[i];
        t->ex_order[i] = t->ex_order[j];
        t->ex_order[j] = tmp;
    }
}

/* ---- backbone hooks -------------------------------------------------------
 * The loop below is the same for every backbone; these say where a query
 * and an item's scoring row come from and where their gradients go.
 *   MF: user rows and item rows are the parameters themselves. */

/* Collective work before queries can be read (LightGCN: K propagation
 * rounds from the layer-0 tables; nothing for MF). */
static sr_status bb_forward(sr_trainer *t, sr_error *err)
{
    if (t->bb == BB_LIGHTGCN) return sr_lgcn_forward(t->lgcn, t->mf.user, t->mf.item, t->u_out, t->i_out, err);
    return SR_OK;
}

/* Query of local user u (row of the local user table the loss sees). */
static const float *bb_user_row(const sr_trainer *t, int64_t u)
{
    return (t->bb == BB_LIGHTGCN ? t->u_out : t->mf.user) + u * t->mf.d;
}

/* This rank's item scoring rows (n_items x d). */
static const float *bb_item_rows(const sr_trainer *t) { return t->bb == BB_LIGHTGCN ? t->i_out : t->mf.item; }

/* LightGCN: gradients of the propagated tables back through the K rounds
 * (collective), L2 on the batch's layer-0 rows (LightGCN's regulariser:
 * weight_decay x e / B per occurrence of a user or positive item in the
 * batch), then dense updates of both layer-0 tables. */
static sr_status lightgcn_update(sr_trainer *t, const sr_item_grad *dv, int64_t lo, int64_t nb, int64_t B,
                                 sr_error *err)
{
    const int64_t d = t->mf.d, nu = t->u1 - t->u0, ni = t->mf.n_items;
    memset(t->di_out, 0, (size_t)(ni * d) * sizeof(float));
    if (dv->rows)
        for (int64_t k = 0; k < dv->n; k++)
            memcpy(t->di_out + dv->rows[k] * d, dv->g + k * d, (size_t)d * sizeof(float));
    else if (dv->n > 0)
        memcpy(t->di_out, dv->g, (size_t)(ni * d) * sizeof(float));
    memset(t->du_out, 0, (size_t)(nu * d) * sizeof(float));
    for (int64_t k = 0; k < nb; k++) {
        float *g = t->du_out + t->ex_user[t->ex_order[lo + k]] * d;
        const float *src = t->dq_local + k * d;
        for (int64_t j = 0; j < d; j++) g[j] += src[j];
    }
    SR_TRY(sr_lgcn_backward(t->lgcn, t->du_out, t->di_out, t->deu, t->dei, err));
    const float wd = B > 0 ? (float)(t->opt.weight_decay / (double)B) : 0.0f;
    if (wd > 0) {
        for (int64_t k = 0; k < nb; k++) {
            int64_t u = t->ex_user[t->ex_order[lo + k]];
            for (int64_t j = 0; j < d; j++) t->deu[u * d + j] += wd * t->mf.user[u * d + j];
        }
        for (int64_t k = 0; k < B; k++) {
            if (sr_shard_owner(&t->items, t->t_all[k]) != t->c->rank) continue;
            int64_t r = sr_shard_local(&t->items, t->t_all[k]);
            for (int64_t j = 0; j < d; j++) t->dei[r * d + j] += wd * t->mf.item[r * d + j];
        }
    }
    sr_optim_update(&t->opt_nowd, &t->mf.user_state, t->mf.user, t->deu, NULL, nu, d, t->step);
    sr_optim_update(&t->opt_nowd, &t->mf.item_state, t->mf.item, t->dei, NULL, ni, d, t->step);
    return SR_OK;
}

/* Gradients of one step: dv for the scoring rows (after the temperature
 * chain rule), dq_local for the queries of local examples [lo, lo + nb). */
static sr_status bb_update(sr_trainer *t, const sr_item_grad *dv, int64_t lo, int64_t nb, int64_t B,
                           sr_error *err)
{
    if (t->bb == BB_LIGHTGCN) return lightgcn_update(t, dv, lo, nb, B, err);
    const int64_t d = t->mf.d;
    /* Exact losses touch every local item row (dense update); sampled losses
     * and sparse maps only the rows they used (row-sparse, O(rows x d)). */
    sr_optim_update(&t->opt, &t->mf.item_state, t->mf.item, dv->g, dv->rows, dv->n, d, t->step);
    /* Users: sum the rows of repeated users, then one row-sparse update. */
    int64_t nu = 0;
    for (int64_t k = 0; k < nb; k++) {
        int64_t u = t->ex_user[t->ex_order[lo + k]];
        if (t->slot[u] < 0) {
            t->slot[u] = nu;
            t->rows[nu] = u;
            memset(t->ug + nu * d, 0, (size_t)d * sizeof(float));
            nu++;
        }
        float *g = t->ug + t->slot[u] * d;
        const float *src = t->dq_local + k * d;
        for (int64_t j = 0; j < d; j++) g[j] += src[j];
    }
    sr_optim_update(&t->opt, &t->mf.user_state, t->mf.user, t->ug, t->rows, nu, d, t->step);
    for (int64_t k = 0; k < nu; k++) t->slot[t->rows[k]] = -1;
    return SR_OK;
}

/* SASRec: the window of user u's sequence (its train items, then its valid
 * items when `with_valid`) ending at the most recent item. next == true: the
 * L inputs before each of the last L items and those items as targets
 * (training); false: the last L items as inputs (evaluation). Left-padded
 * with -1. */
static void sasrec_window(const sr_trainer *t, int64_t u, bool with_valid, bool next, int64_t *ids, int64_t *tgt)
{
    const sr_csr *tr = &t->split[SR_SPLIT_TRAIN], *va = &t->split[SR_SPLIT_VALID];
    const int64_t L = t->L;
    int64_t ntr = tr->indptr[u + 1] - tr->indptr[u];
    int64_t nva = with_valid ? va->indptr[u + 1] - va->indptr[u] : 0;
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

static const float *sasrec_input_table(const sr_trainer *t) { return t->in_item ? t->in_item : t->mf.item; }

/* SASRec forward over this rank's nb sequences (collective: the lookup).
 * Training: queries are every valid position, in q_local/t_local, and
 * qpos remembers where each came from. Returns the query count. */
static sr_status sasrec_train_queries(sr_trainer *t, int64_t lo, int64_t nb, int64_t *nq, sr_error *err)
{
    const sr_comm *c = t->c;
    const int64_t L = t->L, d = t->mf.d;
    for (int64_t k = 0; k < nb; k++) {
        int64_t u = t->ex_user[t->ex_order[lo + k]];
        sasrec_window(t, u, false, true, t->ids + k * L, t->tgt + k * L);
        for (int64_t i = 0; i < L; i++) t->valid[k * L + i] = t->ids[k * L + i] >= 0;
    }
    /* The global index of this rank's first sequence keys the dropout flags,
     * so a step draws the same masks at any rank count. */
    SR_TRY(sr_comm_allgather_i64(c, nb, t->counts, err));
    int64_t first = 0;
    for (int r = 0; r < c->rank; r++) first += t->counts[r];
    SR_TRY(sr_seqembed_lookup(t->emb, t->ids, nb * L, sasrec_input_table(t), t->x, err));
    sr_sasrec_set_first_seq(t->sas, first);
    SR_TRY(sr_sasrec_forward(t->sas, t->x, t->valid, nb, true, t->step + 1, t->h, err));
    int64_t n = 0;
    for (int64_t p = 0; p < nb * L; p++) {
        if (!t->valid[p]) continue;
        memcpy(t->q_local + n * d, t->h + p * d, (size_t)d * sizeof(float));
        t->t_local[n] = t->tgt[p];
        t->qpos[n++] = p;
    }
    *nq = n;
    return SR_OK;
}

/* SASRec backward: query gradients into the positions, through the
 * transformer to the input rows, pushed to their owners and merged with the
 * loss's item gradient (tied tables) for one update; the replicated weights
 * are all-reduced and stepped. */
static sr_status sasrec_update(sr_trainer *t, const sr_item_grad *dv, int64_t nb, int64_t nq, sr_error *err)
{
    const int64_t L = t->L, d = t->mf.d;
    memset(t->dh, 0, (size_t)(nb * L * d) * sizeof(float));
    for (int64_t j = 0; j < nq; j++)
        memcpy(t->dh + t->qpos[j] * d, t->dq_local + j * d, (size_t)d * sizeof(float));
    SR_TRY(sr_sasrec_backward(t->sas, t->dh, t->dx, err));
    const bool dense = dv->rows == NULL && dv->n > 0;
    if (t->in_item) { /* untied: two tables, two updates */
        sr_item_grad in;
        SR_TRY(sr_seqembed_push(t->emb, t->dx, NULL, &in, err));
        sr_optim_update(&t->opt, &t->in_state, t->in_item, in.g, in.rows, in.n, d, t->step);
        sr_optim_update(&t->opt, &t->mf.item_state, t->mf.item, dv->g, dv->rows, dv->n, d, t->step);
    } else if (dense) { /* exact losses: add the input gradient into the dense dV */
        SR_TRY(sr_seqembed_push_dense(t->emb, t->dx, dv->g, err));
        sr_optim_update(&t->opt, &t->mf.item_state, t->mf.item, dv->g, NULL, dv->n, d, t->step);
    } else { /* row-sparse: the union of the loss's rows and the input rows */
        sr_item_grad merged;
        SR_TRY(sr_seqembed_push(t->emb, t->dx, dv->n > 0 ? dv : NULL, &merged, err));
        sr_optim_update(&t->opt, &t->mf.item_state, t->mf.item, merged.g, merged.rows, merged.n, d, t->step);
    }
    return sr_sasrec_update(t->sas, t->c, t->step, err);
}

/* Evaluation queries of nb local users (collective for SASRec: the lookup):
 * MF and LightGCN read the user rows; SASRec encodes the user's history
 * (train, plus valid when ranking the test split) and takes the last
 * position. */
static sr_status bb_eval_queries(sr_trainer *t, const int64_t *users, int64_t nb, int split, float *q,
                                 sr_error *err)
{
    const int64_t d = t->mf.d;
    if (t->bb != BB_SASREC) {
        for (int64_t i = 0; i < nb; i++) memcpy(q + i * d, bb_user_row(t, users[i]), (size_t)d * sizeof(float));
        return SR_OK;
    }
    const int64_t L = t->L;
    for (int64_t i = 0; i < nb; i++) {
        sasrec_window(t, users[i], split == SR_SPLIT_TEST, false, t->ids + i * L, NULL);
        for (int64_t p = 0; p < L; p++) t->valid[i * L + p] = t->ids[i * L + p] >= 0;
    }
    SR_TRY(sr_seqembed_lookup(t->emb, t->ids, nb * L, sasrec_input_table(t), t->x, err));
    sr_sasrec_set_first_seq(t->sas, 0);
    SR_TRY(sr_sasrec_forward(t->sas, t->x, t->valid, nb, false, t->step, t->h, err));
    for (int64_t i = 0; i < nb; i++) memcpy(q + i * d, t->h + (i * L + L - 1) * d, (size_t)d * sizeof(float));
    return SR_OK;
}

/* One optimiser step on local examples [lo, hi). Returns the global mean loss. */
static sr_status train_step(sr_trainer *t, int64_t lo, int64_t hi, double *loss, sr_error *err)
{
    const sr_comm *c = t->c;
    const int64_t d = t->mf.d, nb = hi - lo;
    const sr_csr *tr = &t->split[SR_SPLIT_TRAIN];
    SR_TRY(bb_forward(t, err));
    int64_t nq = nb;
    if (t->bb == BB_SASREC) {
        SR_TRY(sasrec_train_queries(t, lo, nb, &nq, err));
    } else {
        /* example e is train entry e: its user and its item */
        for (int64_t k = 0; k < nb; k++) {
            int64_t e = t->ex_order[lo + k];
            memcpy(t->q_local + k * d, bb_user_row(t, t->ex_user[e]), (size_t)d * sizeof(float));
            t->t_local[k] = tr->items[e];
        }
    }
    SR_TRY(sr_comm_allgather_i64(c, nq, t->counts, err));
    int64_t B = 0;
    for (int r = 0; r < c->size; r++) B += t->counts[r];
    SR_TRY(sr_comm_allgather_rows(c, t->q_local, t->counts, d, t->q_all, err));
    SR_TRY(sr_comm_allgather_ids(c, t->t_local, t->counts, t->t_all, err));

    const float *items = bb_item_rows(t);
    const float tau = (float)t->cfg.model_temperature;
    if (tau > 0) {
        /* Cosine / tau: the loss sees normalised rows; chain rule after. */
        sr_rows_normalize(items, t->mf.n_items, d, 1.0f, t->vn, t->vinv);
        sr_rows_normalize(t->q_all, B, d, 1.0f / tau, t->q_all, t->qinv);
        items = t->vn;
    }
    sr_item_grad dv;
    SR_TRY(sr_loss_step(t->loss, t->q_all, B, items, t->t_all, t->step + 1, loss, t->dq_all, &dv, err));
    if (tau > 0) {
        if (dv.rows)
            for (int64_t k = 0; k < dv.n; k++)
                sr_rows_normalize_backward(t->vn + dv.rows[k] * d, t->vinv + dv.rows[k], 1, d, 1.0f,
                                           dv.g + k * d);
        else
            sr_rows_normalize_backward(t->vn, t->vinv, dv.n, d, 1.0f, dv.g);
        sr_rows_normalize_backward(t->q_all, t->qinv, B, d, 1.0f / tau, t->dq_all);
    }

    SR_TRY(sr_comm_reduce_scatter_rows(c, t->dq_all, t->counts, d, t->dq_local, err));
    /* A non-finite gradient on any rank: every rank skips the step before
     * touching a parameter (one all-reduce of a flag). */
    double bad = 0;
    for (int64_t k = 0; k < nq * d && bad == 0; k++) bad = !isfinite(t->dq_local[k]);
    for (int64_t k = 0; k < dv.n * d && bad == 0; k++) bad = !isfinite(dv.g[k]);
    SR_TRY(sr_comm_allreduce_max(c, &bad, 1, err));
    if (bad != 0) SR_FAIL(err, SR_ERR_NUMERIC, "a gradient is not finite");
    t->step++;
    /* Every optimiser copy follows the schedule (a function of the step). */
    const double lr = sr_lr_at(&t->lrs, t->step, t->steps_per_epoch);
    t->opt.lr = t->opt_nowd.lr = lr;
    if (t->sas) sr_sasrec_set_lr(t->sas, lr);
    sr_loss_set_lr(t->loss, lr);
    if (t->bb == BB_SASREC) SR_TRY(sasrec_update(t, &dv, nb, nq, err));
    else SR_TRY(bb_update(t, &dv, lo, nb, B, err));
    sr_loss_update_params(t->loss, t->step);
    return SR_OK;
}

static void format_eta(double s, char *buf, size_t len)
{
    if (!isfinite(s) || s < 0) s = 0;
    long v = (long)(s + 0.5);
    if (v >= 3600) snprintf(buf, len, "%ld:%02ld:%02ld", v / 3600, (v / 60) % 60, v % 60);
    else snprintf(buf, len, "%02ld:%02ld", v / 60, v % 60);
}

void sr_eval_result_json(const sr_eval_result *r, char *buf, size_t len)
{
    size_t off = 0;
    off += (size_t)snprintf(buf + off, len - off, "{");
    for (int i = 0; i < r->nk && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off,
                                "%s\"ndcg@%lld\": %.6f, \"precision@%lld\": %.6f, \"recall@%lld\": %.6f",
                                i ? ", " : "", (long long)r->k[i], r->ndcg[i], (long long)r->k[i],
                                r->precision[i], (long long)r->k[i], r->recall[i]);
    if (off < len)
        snprintf(buf + off, len - off, "%s\"users\": %lld}", r->nk ? ", " : "", (long long)r->users);
}

static void append_jsonl(const sr_trainer *t, const char *line)
{
    if (t->c->rank != 0) return;
    char path[SR_CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/metrics.jsonl", t->cfg.run_dir);
    FILE *f = fopen(path, "a");
    if (!f) {
        sr_log_root(&t->log, SR_LOG_WARN, "%s: cannot append metrics: %s", path, strerror(errno));
        return;
    }
    fprintf(f, "%s\n", line);
    fclose(f);
}

sr_status sr_trainer_fit(sr_trainer *t, sr_fit_result *res, sr_error *err)
{
    memset(res, 0, sizeof *res);
    sr_eval_result *test = &res->test;
    const sr_comm *c = t->c;
    const sr_config *cfg = &t->cfg;
    if (c->rank == 0) make_dirs(cfg->run_dir, err);
    SR_TRY(sr_comm_agree(c, err));
    if (c->rank == 0) {
        char path[SR_CONFIG_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/metrics.jsonl", cfg->run_dir);
        remove(path); /* one run, one metrics file */
        snprintf(path, sizeof path, "%s/config.ini", cfg->run_dir);
        FILE *f = fopen(path, "w");
        if (f) {
            size_t need = sr_config_write_ini(cfg, NULL, 0) + 1;
            char *txt = malloc(need);
            if (txt) {
                sr_config_write_ini(cfg, txt, need);
                fputs(txt, f);
                free(txt);
            }
            fclose(f);
        }
    }
    const int64_t steps = t->steps_per_epoch;
    sr_log_root(&t->log, SR_LOG_INFO,
                "training %s (d=%lld) with %s: %lld users, %lld items over %d ranks "
                "(%s shards), %lld examples, %lld steps/epoch of %lld",
                cfg->model_name, (long long)t->mf.d, cfg->loss_name, (long long)t->meta.num_users, (long long)t->meta.num_items, c->size,
                cfg->shard_layout, (long long)t->ex_total, (long long)steps,
                (long long)cfg->train_batch_size);
    /* Reliability: fault hooks, signals and the watchdog, checkpoints. */
    sr_fault fault;
    SR_TRY(sr_fault_from_env(&fault, err));
    sr_guard *guard = NULL;
    if (sr_guard_create(&guard, c, cfg->train_watchdog_factor, cfg->train_watchdog_min_seconds, err) != SR_OK)
        sr_comm_abort(c, err);
    if (sr_guard_set_heartbeat_dir(guard, cfg->run_dir, err) != SR_OK) {
        sr_log_root(&t->log, SR_LOG_WARN, "%s (the watchdog will not name stopped ranks)", err->msg);
        sr_error_clear(err);
    }
    sr_status st = sr_ckpt_dir_cleanup(c, cfg->run_dir, err);
    train_pos pos = {0, 1, 0, 0, 0, 0, 0, 0};
    double best = -1, t_train = 0, loss_sum = 0;
    if (st == SR_OK && !strcmp(cfg->train_resume, "auto")) {
        st = resume_checkpoint(t, &pos, steps, &fault, res->resumed_from, sizeof res->resumed_from, err);
        if (st == SR_OK && res->resumed_from[0]) {
            memcpy(&best, &pos.best_bits, sizeof best);
            memcpy(&t_train, &pos.train_bits, sizeof t_train);
            memcpy(&loss_sum, &pos.loss_bits, sizeof loss_sum);
            sr_log_root(&t->log, SR_LOG_INFO, "resumed from %s: epoch %lld, step %lld of the epoch, %lld steps taken",
                        res->resumed_from, (long long)pos.epoch, (long long)pos.cursor, (long long)pos.step);
        }
    }
    if (st != SR_OK) {
        sr_guard_destroy(&guard);
        return st;
    }
    if (c->rank == 0 && !res->resumed_from[0]) {
        char path[SR_CONFIG_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/metrics.jsonl", cfg->run_dir);
        remove(path); /* one run, one metrics file (a resumed run appends) */
    }
    double t_start = sr_time_now();
    int64_t comm_train = 0, steps_run = 0, bad_run = 0;
    const int64_t first_epoch = pos.epoch;
    for (int64_t epoch = pos.epoch; epoch <= cfg->train_epochs && st == SR_OK && !res->stopped; epoch++) {
        double t0 = sr_time_now(), last = t0;
        shuffle_examples(t, epoch);
        const int64_t s0 = epoch == first_epoch ? pos.cursor : 0;
        if (s0 == 0) loss_sum = 0;
        for (int64_t s = s0; s < steps; s++) {
            int64_t lo, hi;
            step_range(t, s, steps, &lo, &hi);
            double loss = 0;
            int64_t b0 = c->stats ? c->stats->bytes : 0;
            sr_guard_step_begin(guard, t->step + 1);
            st = train_step(t, lo, hi, &loss, err);
            sr_guard_step_end(guard, t->step + 1);
            if (c->stats) comm_train += c->stats->bytes - b0;
            if (st == SR_ERR_NUMERIC) {
                /* Seen by every rank in the same step (the loss's all-reduce
                 * or the gradient flag): skip it, parameters unchanged. */
                pos.skipped++;
                if (++bad_run > cfg->train_max_bad_steps) {
                    char msg[SR_ERROR_MSG_MAX + 400];
                    snprintf(msg, sizeof msg,
                             "epoch %lld step %lld: %s in %lld steps in a row (train.max_bad_steps = %lld); "
                             "stopped (try a lower train.lr, resume from the last checkpoint)",
                             (long long)epoch, (long long)s + 1, err->msg, (long long)bad_run,
                             (long long)cfg->train_max_bad_steps);
                    snprintf(err->msg, sizeof err->msg, "%.*s", (int)sizeof err->msg - 1, msg);
                    break;
                }
                sr_log_root(&t->log, SR_LOG_WARN, "epoch %lld step %lld skipped: %s (parameters unchanged)",
                            (long long)epoch, (long long)s + 1, err->msg);
                sr_error_clear(err);
                st = SR_OK;
                continue;
            }
            if (st == SR_ERR_DATA) {
                char msg[SR_ERROR_MSG_MAX + 96];
                snprintf(msg, sizeof msg, "epoch %lld step %lld: %s", (long long)epoch, (long long)s + 1, err->msg);
                snprintf(err->msg, sizeof err->msg, "%.*s", (int)sizeof err->msg - 1, msg);
                break;
            }
            if (st != SR_OK) sr_comm_abort(c, err); /* one rank's failure mid-step */
            bad_run = 0;
            steps_run++;
            loss_sum += loss;
            pos.epoch = epoch;
            pos.cursor = s + 1;
            int sig = 0;
            st = sr_guard_should_stop(guard, &sig, err);
            const bool every = cfg->train_checkpoint_every > 0 && t->step % cfg->train_checkpoint_every == 0;
            if (st == SR_OK && (sig || every)) {
                pos.step = t->step;
                memcpy(&pos.best_bits, &best, sizeof best);
                double tt = t_train + (sr_time_now() - t0);
                memcpy(&pos.train_bits, &tt, sizeof tt);
                memcpy(&pos.loss_bits, &loss_sum, sizeof loss_sum);
                st = save_checkpoint(t, &pos, guard, &fault, err);
                if (st == SR_OK && sig) {
                    res->stopped = sig;
                    sr_log_root(&t->log, SR_LOG_INFO, "signal %d: stopped after step %lld, checkpoint committed in %s/checkpoints",
                                sig, (long long)t->step, cfg->run_dir);
                }
            }
            if (st != SR_OK || res->stopped) break;
            double now = sr_time_now();
            if (c->rank == 0 && (now - last >= cfg->run_progress_every || s + 1 == steps)) {
                double done = (double)(epoch - 1) * steps + s + 1;
                double rate = (double)(s + 1 - s0) * cfg->train_batch_size / (now - t0);
                double left = (now - t_start) / (double)steps_run * ((double)cfg->train_epochs * steps - done);
                char eta[32];
                format_eta(left, eta, sizeof eta);
                fprintf(stderr, "%sepoch %lld/%lld step %lld/%lld loss %.4f %.0f ex/s ETA %s%s",
                        t->log.tty ? "\r\033[K" : "", (long long)epoch, (long long)cfg->train_epochs,
                        (long long)s + 1, (long long)steps, loss_sum / (double)(s + 1), rate, eta,
                        t->log.tty && s + 1 < steps ? "" : "\n");
                fflush(stderr);
                last = now;
            }
        }
        if (st != SR_OK || res->stopped) break;
        double secs = sr_time_now() - t0;
        t_train += secs;
        char line[2048];
        int n = snprintf(line, sizeof line,
                         "{\"epoch\": %lld, \"step\": %lld, \"loss\": %.6f, \"epoch_seconds\": %.3f, "
                         "\"examples_per_second\": %.1f",
                         (long long)epoch, (long long)t->step, loss_sum / (double)steps, secs,
                         (double)t->ex_total / secs);
        if (cfg->eval_every > 0 && epoch % cfg->eval_every == 0 && t->meta.nnz[SR_SPLIT_VALID] > 0) {
            sr_eval_result v;
            if ((st = sr_trainer_evaluate(t, SR_SPLIT_VALID, &v, err)) != SR_OK) break;
            char js[1024];
            sr_eval_result_json(&v, js, sizeof js);
            n += snprintf(line + n, sizeof line - (size_t)n, ", \"valid\": %s", js);
            if (v.ndcg[0] > best) {
                best = v.ndcg[0];
                pos.best_epoch = epoch;
                res->best_valid = v;
            }
            sr_log_root(&t->log, SR_LOG_INFO, "epoch %lld valid ndcg@%lld %.4f recall@%lld %.4f (%.1f s)",
                        (long long)epoch, (long long)v.k[0], v.ndcg[0], (long long)v.k[0], v.recall[0],
                        v.seconds);
        }
        snprintf(line + n, sizeof line - (size_t)n, "}");
        append_jsonl(t, line);
        pos.epoch = epoch + 1; /* the next one starts at its first step */
        pos.cursor = 0;
        loss_sum = 0;
    }
    /* The end is a checkpoint too (unless a signal just wrote one). */
    if (st == SR_OK && !res->stopped) {
        pos.step = t->step;
        memcpy(&pos.best_bits, &best, sizeof best);
        memcpy(&pos.train_bits, &t_train, sizeof t_train);
        memcpy(&pos.loss_bits, &loss_sum, sizeof loss_sum);
        st = save_checkpoint(t, &pos, guard, &fault, err);
    }
    sr_guard_destroy(&guard);
    if (st != SR_OK) return st;
    res->skipped_steps = pos.skipped;
    if (res->stopped) return SR_OK;
    const int64_t best_epoch = pos.best_epoch;
    res->train_seconds = t_train;
    res->epochs = cfg->train_epochs;
    res->steps = steps_run;
    res->epoch_seconds = cfg->train_epochs > 0 ? t_train / (double)cfg->train_epochs : 0;
    res->best_epoch = best_epoch;
    res->num_users = t->meta.num_users;
    res->num_items = t->meta.num_items;
    char path[SR_CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/model.h5", cfg->run_dir);
    SR_TRY(save_model(t, path, cfg->train_epochs, err));
    SR_TRY(sr_trainer_evaluate(t, SR_SPLIT_TEST, test, err));
    char js[1024], line[1400];
    sr_eval_result_json(test, js, sizeof js);
    snprintf(line, sizeof line, "{\"final\": true, \"step\": %lld, \"best_valid_epoch\": %lld, \"test\": %s}",
             (long long)t->step, (long long)best_epoch, js);
    append_jsonl(t, line);
    /* Peak over the whole run (the final evaluation included). */
    double agg[4] = {(double)sr_mem_process_peak(),
                     res->steps > 0 ? (double)comm_train / (double)res->steps : 0,
                     t->lgcn ? (double)sr_lgcn_round_bytes(t->lgcn) : 0,
                     t->lgcn ? (double)sr_lgcn_full_table_bytes(t->lgcn) : 0};
    SR_TRY(sr_comm_allreduce_max(c, agg, 4, err));
    res->peak_mem_bytes = (int64_t)agg[0];
    res->comm_bytes_per_step = (int64_t)(agg[1] + 0.5);
    res->round_bytes = (int64_t)agg[2];
    res->full_table_bytes = (int64_t)agg[3];
    return SR_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Row u of m appended to buf; returns the count. */
static int64_t append_row(const sr_csr *m, int64_t u, int64_t *buf)
{
    int64_t n = m->indptr[u + 1] - m->indptr[u];
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


sr_status sr_trainer_evaluate(sr_trainer *t, int split, sr_eval_result *res, sr_error *err)
{
    const sr_comm *c = t->c;
    const int64_t d = t->mf.d, P = c->size;
    const double t0 = sr_time_now();
    const sr_csr *ev = &t->split[split];
    memset(res, 0, sizeof *res);
    sr_metrics m;
    SR_TRY(sr_metrics_init(&m, t->cfg.eval_topk, t->cfg.eval_topk_count, err));
    const int64_t kmax = sr_metrics_kmax(&m);

    /* This rank's users with something to predict, and the step count: the
     * same on every rank (ranks with fewer users send empty batches). */
    int64_t nloc = t->u1 - t->u0, nev = 0;
    int64_t *users = sr_mem_calloc(&t->mem, (size_t)(nloc ? nloc : 1), sizeof *users, "eval users", err);
    int64_t *counts = sr_mem_calloc(&t->mem, (size_t)P, sizeof *counts, "eval counts", err);
    if (!users || !counts) sr_comm_abort(c, err);
    int64_t max_known = 1;
    for (int64_t u = 0; u < nloc; u++) {
        if (ev->indptr[u + 1] > ev->indptr[u]) users[nev++] = u;
        int64_t known = t->split[SR_SPLIT_TRAIN].indptr[u + 1] - t->split[SR_SPLIT_TRAIN].indptr[u];
        if (split == SR_SPLIT_TEST)
            known += t->split[SR_SPLIT_VALID].indptr[u + 1] - t->split[SR_SPLIT_VALID].indptr[u];
        if (known > max_known) max_known = known;
    }
    SR_TRY(sr_comm_allgather_i64(c, nev, counts, err));
    int64_t steps = 0;
    for (int r = 0; r < P; r++) steps = counts[r] > steps ? counts[r] : steps;
    steps = ceil_div(steps, EVAL_BATCH);
    /* Exclusion buffer: sized by the largest known-item list of any rank. */
    SR_TRY(sr_comm_allgather_i64(c, max_known, counts, err));
    for (int r = 0; r < P; r++) max_known = counts[r] > max_known ? counts[r] : max_known;

    const int64_t bmax = EVAL_BATCH * P;
    sr_topk_ws *ws = NULL;
    if (sr_topk_ws_create(&ws, bmax, t->cfg.loss_tile, kmax, &t->mem, err) != SR_OK) sr_comm_abort(c, err);
    float *q_loc = sr_mem_calloc(&t->mem, EVAL_BATCH * d, sizeof(float), "eval buffers", err);
    float *q_all = sr_mem_calloc(&t->mem, (size_t)(bmax * d), sizeof(float), "eval buffers", err);
    float *top_s = sr_mem_calloc(&t->mem, (size_t)(bmax * kmax), sizeof(float), "eval buffers", err);
    int64_t *top_i = sr_mem_calloc(&t->mem, (size_t)(bmax * kmax), sizeof(int64_t), "eval buffers", err);
    int64_t *len_loc = sr_mem_calloc(&t->mem, EVAL_BATCH, sizeof(int64_t), "eval buffers", err);
    int64_t *len_all = sr_mem_calloc(&t->mem, (size_t)bmax, sizeof(int64_t), "eval buffers", err);
    int64_t *indptr = sr_mem_calloc(&t->mem, (size_t)bmax + 1, sizeof(int64_t), "eval buffers", err);
    int64_t *ex_loc = sr_mem_calloc(&t->mem, (size_t)(EVAL_BATCH * max_known), sizeof(int64_t), "eval buffers", err);
    int64_t *ex_all = sr_mem_calloc(&t->mem, (size_t)(bmax * max_known), sizeof(int64_t), "eval buffers", err);
    int64_t *ecounts = sr_mem_calloc(&t->mem, (size_t)P, sizeof(int64_t), "eval buffers", err);
    int64_t *test = sr_mem_calloc(&t->mem, (size_t)(max_known + ev->nnz + 1), sizeof(int64_t), "eval buffers", err);
    if (!q_loc || !q_all || !top_s || !top_i || !len_loc || !len_all || !indptr || !ex_loc || !ex_all ||
        !ecounts || !test)
        sr_comm_abort(c, err);

    /* Cosine scoring ranks by normalised rows (the temperature does not
     * change the order). */
    sr_status st = bb_forward(t, err);
    const float *items = bb_item_rows(t);
    if (t->cfg.model_temperature > 0) {
        sr_rows_normalize(items, t->mf.n_items, d, 1.0f, t->vn, t->vinv);
        items = t->vn;
    }
    if (st == SR_OK && !sr_loss_scores_by_dot(t->loss)) {
        /* hsm ranks by tree log-probability, not by q . v */
        st = sr_loss_eval_prepare(t->loss, err);
        sr_topk_ws_set_scorer(ws, sr_loss_eval_scores, t->loss);
    }
    for (int64_t s = 0; s < steps && st == SR_OK; s++) {
        int64_t lo = s * EVAL_BATCH, hi = lo + EVAL_BATCH < nev ? lo + EVAL_BATCH : nev;
        int64_t nb = hi > lo ? hi - lo : 0, ne = 0;
        if ((st = bb_eval_queries(t, users + lo, nb, split, q_loc, err)) != SR_OK) break;
        for (int64_t i = 0; i < nb; i++) {
            int64_t u = users[lo + i];
            int64_t n = append_row(&t->split[SR_SPLIT_TRAIN], u, ex_loc + ne);
            if (split == SR_SPLIT_TEST) n += append_row(&t->split[SR_SPLIT_VALID], u, ex_loc + ne + n);
            len_loc[i] = sort_unique(ex_loc + ne, n);
            ne += len_loc[i];
        }
        if ((st = sr_comm_allgather_i64(c, nb, counts, err)) != SR_OK) break;
        if ((st = sr_comm_allgather_i64(c, ne, ecounts, err)) != SR_OK) break;
        int64_t B = 0, off = 0;
        for (int r = 0; r < P; r++) {
            if (r < c->rank) off += counts[r];
            B += counts[r];
        }
        if ((st = sr_comm_allgather_rows(c, q_loc, counts, d, q_all, err)) != SR_OK) break;
        if ((st = sr_comm_allgather_ids(c, len_loc, counts, len_all, err)) != SR_OK) break;
        if ((st = sr_comm_allgather_ids(c, ex_loc, ecounts, ex_all, err)) != SR_OK) break;
        indptr[0] = 0;
        for (int64_t i = 0; i < B; i++) indptr[i + 1] = indptr[i] + len_all[i];
        if (B == 0) continue;
        if (t->cfg.model_temperature > 0) sr_rows_normalize(q_all, B, d, 1.0f, q_all, t->qinv);
        const bool mask = t->cfg.eval_mask_history;
        st = sr_eval_topk(c, q_all, B, d, items, t->mf.n_items, &t->items, mask ? indptr : NULL,
                          mask ? ex_all : NULL, kmax, ws,
                          top_s, top_i, err);
        if (st != SR_OK) break;
        for (int64_t i = 0; i < nb; i++) {
            int64_t u = users[lo + i];
            int64_t n = append_row(ev, u, test);
            n = sort_unique(test, n);
            sr_metrics_add(&m, top_i + (off + i) * kmax, kmax, test, n);
        }
    }
    if (st == SR_OK) st = sr_metrics_allreduce(c, &m, err);
    if (st == SR_OK) {
        sr_metrics fin;
        sr_metrics_finalise(&m, &fin);
        res->nk = fin.n_k;
        for (int i = 0; i < fin.n_k; i++) {
            res->k[i] = fin.k[i];
            res->ndcg[i] = fin.ndcg[i];
            res->precision[i] = fin.precision[i];
            res->recall[i] = fin.recall[i];
        }
        res->users = (int64_t)m.users;
        res->seconds = sr_time_now() - t0;
    }
    void *bufs[] = {users, counts, q_loc, q_all, top_s, top_i, len_loc, len_all, indptr, ex_loc, ex_all, ecounts, test};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sr_mem_free(&t->mem, bufs[i]);
    sr_topk_ws_destroy(&ws);
    return st;
}

/* ---- access for analysis commands ---------------------------------------- */

const sr_config *sr_trainer_config(const sr_trainer *t) { return &t->cfg; }
const sr_dataset_meta *sr_trainer_meta(const sr_trainer *t) { return &t->meta; }
const int64_t *sr_trainer_popularity(const sr_trainer *t) { return t->pop; }

const float *sr_trainer_item_rows(sr_trainer *t, const sr_shard **map, int64_t *n_local)
{
    *map = &t->items;
    *n_local = t->mf.n_items;
    if (t->cfg.model_temperature > 0) {
        sr_rows_normalize(bb_item_rows(t), t->mf.n_items, t->mf.d, 1.0f, t->vn, t->vinv);
        return t->vn;
    }
    return bb_item_rows(t);
}

sr_status sr_trainer_user_queries(sr_trainer *t, const int64_t *users, int64_t n, float *q,
                                  sr_error *err)
{
    const int64_t d = t->mf.d;
    SR_TRY(bb_forward(t, err)); /* collective: the scoring rows of the backbone */
    double *acc = sr_mem_calloc(&t->mem, (size_t)(n * d > 0 ? n * d : 1), sizeof *acc, "queries", err);
    if (!acc) sr_comm_abort(t->c, err);
    for (int64_t i = 0; i < n; i++) {
        int64_t u = users[i];
        if (u < 0 || u >= t->meta.num_users) {
            sr_mem_free(&t->mem, acc);
            SR_FAIL(err, SR_ERR_USAGE, "user %lld is outside [0, %lld)", (long long)u,
                    (long long)t->meta.num_users);
        }
        if (u >= t->u0 && u < t->u1)
            for (int64_t j = 0; j < d; j++) acc[i * d + j] = bb_user_row(t, u - t->u0)[j];
    }
    sr_status st = sr_comm_allreduce_sum(t->c, acc, n * d, err); /* one owner each: exact */
    for (int64_t k = 0; k < n * d; k++) q[k] = (float)acc[k];
    sr_mem_free(&t->mem, acc);
    if (st == SR_OK && t->cfg.model_temperature > 0 && n > 0)
        sr_rows_normalize(q, n, d, (float)(1.0 / t->cfg.model_temperature), q, t->qinv);
    return st;
}

sr_status sr_trainer_user_targets(sr_trainer *t, const int64_t *users, int64_t n, int64_t *targets,
                                  sr_error *err)
{
    for (int64_t i = 0; i < n; i++) {
        targets[i] = 0;
        int64_t u = users[i];
        if (u < t->u0 || u >= t->u1) continue;
        for (int s = SR_SPLIT_TEST; s >= SR_SPLIT_TRAIN; s--) { /* test, valid, train */
            const sr_csr *m = &t->split[s];
            int64_t lu = u - t->u0;
            if (m->indptr[lu + 1] > m->indptr[lu]) {
                targets[i] = m->items[m->indptr[lu]] + 1;
                break;
            }
        }
    }
    SR_TRY(sr_comm_allreduce_sum_i64(t->c, targets, n, err)); /* one owner each */
    for (int64_t i = 0; i < n; i++) targets[i] -= 1; /* -1: the user has no item at all */
    return SR_OK;
}
