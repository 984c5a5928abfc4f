/* train.c: creating and destroying a trainer, and the analysis accessors
 * (train.h). The trainer holds one backbone (models/backbone.h) and one
 * loss (loss/loss.h) and branches on neither. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/collectives.h"
#include "core/cpu.h"
#include "train/metrics.h"
#include "train/trainer.h"

/* Out of memory on one rank: abort the job (peers are in collectives). */
static void *alloc_or_abort(sr_trainer *t, int64_t n, size_t size, const char *what, sr_error *err)
{
    void *p = sr_mem_calloc(&t->mem, (size_t)(n > 0 ? n : 1), size, what, err);
    if (!p) sr_comm_abort(t->c, err);
    return p;
}

/* Keys whose limit is the catalogue: the same meta on every rank, so every
 * rank fails alike without a collective. A sampled loss draws its negatives
 * with replacement from the N items (whole passes first, sampler.c): k > N
 * costs k dot products a query for nothing the exact softmax would not give. */
static sr_status check_catalogue(const sr_trainer *t, sr_error *err)
{
    const sr_config *cfg = &t->cfg;
    const long long n = (long long)t->meta.num_items;
    for (int i = 0; i < cfg->eval_topk_count; i++)
        if (cfg->eval_topk[i] > n)
            SR_FAIL(err, SR_ERR_CONFIG, "eval.topk = %lld is larger than the catalogue of %s (%lld items)",
                    (long long)cfg->eval_topk[i], cfg->data_path, n);
    const bool sampled = !strcmp(cfg->loss_name, "ssm") || !strcmp(cfg->loss_name, "nce");
    if (!sampled || !strcmp(cfg->loss_proposal, "inbatch")) return SR_OK; /* inbatch: the batch's targets */
    if (cfg->loss_negatives > n)
        SR_FAIL(err, SR_ERR_CONFIG,
                "loss.negatives = %lld is larger than the catalogue of %s (%lld items); at most %lld "
                "(loss.name = softmax uses every item)",
                (long long)cfg->loss_negatives, cfg->data_path, n, n);
    if (!strcmp(cfg->loss_proposal, "dynamic") && cfg->loss_dns_candidates > n)
        SR_FAIL(err, SR_ERR_CONFIG,
                "loss.dns_candidates = %lld is larger than the catalogue of %s (%lld items); at most %lld",
                (long long)cfg->loss_dns_candidates, cfg->data_path, n, n);
    return SR_OK;
}

/* This rank's rows of every split and the train popularity of every item
 * (proposals, the hsm tree and LightGCN's normalisation need it). */
static sr_status read_data(sr_trainer *t, sr_error *err)
{
    const sr_comm *c = t->c;
    const sr_config *cfg = &t->cfg;
    if (!cfg->data_path[0])
        sr_error_set(err, SR_ERR_CONFIG, __FILE__, __LINE__, "data.path is not set (give a dataset from softrec data convert/synth)");
    SR_TRY(sr_comm_agree(c, err));
    sr_dataset *ds = NULL;
    SR_TRY(sr_dataset_open(&ds, c, cfg->data_path, err));
    t->meta = *sr_dataset_meta_get(ds);
    sr_dataset_user_range(t->meta.num_users, c->size, c->rank, &t->u0, &t->u1);
    sr_status st = check_catalogue(t, err);
    for (int s = 0; s < SR_SPLIT_COUNT && st == SR_OK; s++)
        st = sr_dataset_read_split(ds, (sr_split)s, t->u0, t->u1, &t->split[s], &t->mem, err);
    if (st == SR_OK) {
        t->pop = alloc_or_abort(t, t->meta.num_items, sizeof *t->pop, "item popularity", err);
        st = sr_dataset_read_popularity(ds, 0, t->meta.num_items, t->pop, err);
    }
    sr_dataset_close(&ds);
    return st;
}

/* The backbone's examples on every rank, the steps of an epoch, and the
 * most examples a rank passes to one step: ceil(E_r / steps) (shuffled) or
 * the global batch (unshuffled). */
static sr_status count_examples(sr_trainer *t, sr_error *err)
{
    const sr_comm *c = t->c;
    const sr_csr *tr = &t->split[SR_SPLIT_TRAIN];
    t->n_ex = 0;
    for (int64_t u = 0; u < t->u1 - t->u0; u++) t->n_ex += t->ops->examples_of(sr_csr_row_len(tr, u));
    int64_t *all = alloc_or_abort(t, c->size, sizeof *all, "example counts", err);
    sr_status st = sr_comm_allgather_i64(c, t->n_ex, all, err);
    t->ex_total = t->ex_offset = 0;
    for (int r = 0; r < c->size && st == SR_OK; r++) {
        if (r < c->rank) t->ex_offset += all[r];
        t->ex_total += all[r];
    }
    sr_mem_free(&t->mem, all);
    SR_TRY(st);
    if (t->ex_total == 0)
        sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: the train split is empty", t->cfg.data_path);
    SR_TRY(sr_comm_agree(c, err));
    const int64_t B = t->cfg.train_batch_size;
    t->steps_per_epoch = sr_ceil_div(t->ex_total, B);
    t->max_local_batch = t->cfg.train_shuffle ? sr_ceil_div(t->n_ex, t->steps_per_epoch) : B;
    if (t->max_local_batch > B) t->max_local_batch = B;
    t->ex_order = alloc_or_abort(t, t->n_ex, sizeof *t->ex_order, "example order", err);
    return SR_OK;
}

/* Buffers of the largest step, the loss and the scorer, sized by the
 * largest step this split has, not by train.batch_size (a batch of 10^6
 * over ML-100K must not ask for 10^6-query buffers): a rank passes at most
 * its own examples and, unshuffled, at most one global batch
 * (sr_trainer_step_range); b_max: the sum of the ranks' largest shares,
 * and unshuffled at most the global batch ceil(E / steps). */
static sr_status create_step(sr_trainer *t, sr_error *err)
{
    const sr_comm *c = t->c;
    const int64_t d = t->cfg.model_dim, qpe = t->ops->queries_per_example(&t->cfg);
    const int64_t gb = sr_ceil_div(t->ex_total, t->steps_per_epoch); /* <= train.batch_size */
    int64_t lb = t->max_local_batch < t->n_ex ? t->max_local_batch : t->n_ex;
    if (!t->cfg.train_shuffle && lb > gb) lb = gb;
    t->max_local_batch = lb; /* the backbone sizes its step buffers by it too */
    int64_t ge = lb;
    SR_TRY(sr_comm_allreduce_sum_i64(c, &ge, 1, err)); /* same on every rank */
    if (!t->cfg.train_shuffle && ge > gb) ge = gb;
    const int64_t mq = lb * qpe, b_max = ge * qpe;
    sr_mem_buf b[] = {SR_MEM_BUF(t->q_local, mq * d + 1), SR_MEM_BUF(t->dq_local, mq * d + 1),
                      SR_MEM_BUF(t->t_local, mq + 1),     SR_MEM_BUF(t->q_all, b_max * d),
                      SR_MEM_BUF(t->dq_all, b_max * d),   SR_MEM_BUF(t->t_all, b_max),
                      SR_MEM_BUF(t->counts, c->size)};
    t->step_bufs = sr_mem_bufset_alloc(&t->mem, b, sizeof b / sizeof b[0], "step buffers", err);
    if (!t->step_bufs) sr_comm_abort(c, err); /* one rank's: peers may wait in a collective */
    const int64_t q_max = b_max > SR_EVAL_BATCH * c->size ? b_max : SR_EVAL_BATCH * c->size;
    if (sr_scores_init(&t->scores, t->cfg.model_temperature, sr_shard_count(&t->items, c->rank), d, q_max, &t->mem,
                       err) != SR_OK)
        sr_comm_abort(c, err);
    sr_loss_init li = {c, &t->cfg, &t->items, t->pop, &t->opt, b_max, d, &t->mem};
    (void)sr_loss_create(&t->loss, &li, err);
    return sr_comm_agree(c, err); /* config errors alike, OOM on one rank */
}

static sr_status create_backbone(sr_trainer *t, sr_error *err)
{
    sr_backbone_init in = {t->c, &t->cfg, &t->items, t->meta.num_users, t->meta.num_items, t->u0, t->u1,
                           t->split, t->pop, &t->opt, t->max_local_batch, SR_EVAL_BATCH, &t->mem, &t->log};
    if (t->ops->create(&t->bb, &in, err) != SR_OK && err->code == SR_ERR_NOMEM)
        sr_comm_abort(t->c, err); /* one rank's: peers may wait in a collective */
    return sr_comm_agree(t->c, err);
}

sr_status sr_trainer_create_with(sr_trainer **out, const sr_comm *c, const sr_config *cfg,
                                 const sr_backbone_ops *ops, sr_error *err)
{
    *out = NULL;
    sr_trainer *t = calloc(1, sizeof *t);
    if (!t) sr_comm_abort(c, &(sr_error){SR_ERR_NOMEM, __FILE__, __LINE__, "out of memory for the trainer"});
    t->c = c;
    t->cfg = *cfg;
    t->ops = ops;
    sr_log_init(&t->log, c->rank, c->size);
    sr_mem_init(&t->mem, 0);
    /* Allocation-failure injection (tests): every counted allocation of the
     * run goes through t->mem. A malformed spec fails alike on every rank. */
    sr_status st = sr_fault_from_env(&t->alloc_fault, err);
    if (st == SR_OK) sr_fault_arm_mem(&t->alloc_fault, c->rank, &t->mem);
    if (st == SR_OK) st = read_data(t, err);
    /* Same inputs on every rank: these fail alike everywhere. */
    if (st == SR_OK) st = sr_shard_init_named(&t->items, cfg->shard_layout, t->meta.num_items, c->size, err);
    if (st == SR_ERR_NOMEM) sr_comm_abort(c, err); /* one rank's: peers go on to collectives */
    if (st == SR_OK) st = sr_optim_from_config(&t->opt, cfg, err);
    if (st == SR_OK) st = sr_lr_schedule_from_config(&t->lrs, cfg, err);
    sr_metric_kind kind = SR_METRIC_NDCG;
    if (st == SR_OK)
        st = sr_metric_parse(cfg->eval_valid_metric, cfg->eval_topk, cfg->eval_topk_count, "eval.valid_metric", &kind,
                             &t->valid_k, err);
    t->valid_kind = (int)kind;
    if (st == SR_OK) st = count_examples(t, err);
    if (st == SR_OK) st = create_step(t, err);
    if (st == SR_OK) st = create_backbone(t, err);
    if (st == SR_OK && cfg->train_init[0]) st = sr_trainer_load(t, cfg->train_init, err);
    if (st == SR_OK) {
        sr_cpu cpu;
        char desc[256];
        sr_cpu_detect(&cpu);
        sr_cpu_describe(&cpu, desc, sizeof desc);
        sr_log_root(&t->log, SR_LOG_INFO, "cpu: %s", desc); /* the path the kernels take */
    }
    if (st != SR_OK) {
        sr_trainer_destroy(&t);
        return st;
    }
    *out = t;
    return SR_OK;
}

sr_status sr_trainer_create(sr_trainer **out, const sr_comm *c, const sr_config *cfg, sr_error *err)
{
    const sr_backbone_ops *ops = sr_backbone_find(cfg->model_name);
    if (!ops) { /* config checks the name; a caller may still fill it by hand */
        *out = NULL;
        char names[256];
        size_t off = 0;
        const char *n;
        for (size_t i = 0; (n = sr_backbone_choice(i, NULL)) != NULL && off < sizeof names; i++)
            off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", i ? "|" : "", n);
        SR_FAIL(err, SR_ERR_CONFIG, "model.name = '%s': not one of %s", cfg->model_name, names);
    }
    return sr_trainer_create_with(out, c, cfg, ops, err);
}

void sr_trainer_destroy(sr_trainer **tp)
{
    sr_trainer *t = *tp;
    if (!t) return;
    if (t->bb) t->ops->destroy(&t->bb);
    sr_loss_destroy(&t->loss);
    sr_scores_free(&t->scores);
    for (int s = 0; s < SR_SPLIT_COUNT; s++) sr_csr_free(&t->split[s], &t->mem);
    void *bufs[] = {t->pop, t->ex_order, t->step_bufs};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sr_mem_free(&t->mem, bufs[i]);
    sr_shard_destroy(&t->items);
    sr_fault_report_mem(&t->alloc_fault, t->c->rank, &t->mem, "train");
    free(t);
    *tp = NULL;
}

/* ---- access for analysis commands ---------------------------------------- */

const sr_config *sr_trainer_config(const sr_trainer *t) { return &t->cfg; }
const sr_dataset_meta *sr_trainer_meta(const sr_trainer *t) { return &t->meta; }
const int64_t *sr_trainer_popularity(const sr_trainer *t) { return t->pop; }
sr_backbone *sr_trainer_backbone(sr_trainer *t) { return t->bb; }

const float *sr_trainer_item_rows(sr_trainer *t, const sr_shard **map, int64_t *n_local)
{
    *map = &t->items;
    *n_local = sr_shard_count(&t->items, t->c->rank);
    return sr_scores_items(&t->scores, t->ops->item_rows(t->bb));
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
