/* train.h: the training loop and full-ranking evaluation, where the modules
 * meet (docs/design.md).
 *
 * A trainer owns everything one run needs on one rank: its users' CSR rows
 * of every split, one backbone (models/backbone.h: its tables, optimiser
 * state and update), one loss (loss/loss.h), the step buffers. sr_trainer_create reads the dataset collectively,
 * sr_trainer_fit runs the epochs (validation every eval.every epochs, the test
 * split at the end), sr_trainer_evaluate ranks the whole catalogue for one
 * split. All functions are collective and return errors agreed by all ranks.
 *
 * Determinism: with the same seed and rank count, the same bits (example
 * order comes from Philox streams keyed by (seed, rank, epoch); reductions
 * have a fixed order). Every rank takes the same number of steps per epoch:
 * the global example count sets the step count, and each rank splits its own
 * examples evenly over those steps (a rank may contribute nothing to a step).
 */
#ifndef SR_TRAIN_TRAIN_H
#define SR_TRAIN_TRAIN_H

#include <stdint.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "io/dataset.h"
#include "core/config.h"
#include "core/error.h"

#define SR_METRICS_MAX 8

/* Averages over the users with at least one item in the split. */
typedef struct sr_eval_result {
    int nk;
    int64_t k[SR_METRICS_MAX];
    double ndcg[SR_METRICS_MAX];
    double precision[SR_METRICS_MAX];
    double recall[SR_METRICS_MAX];
    double hit[SR_METRICS_MAX], mrr[SR_METRICS_MAX], map[SR_METRICS_MAX];
    int64_t users;   /* users evaluated */
    double seconds;
} sr_eval_result;

/* What a run reports (the result row of `softrec train`). */
typedef struct sr_fit_result {
    sr_eval_result test;        /* of the model eval.test_model names (test_epoch's) */
    sr_eval_result test_last;   /* of the last epoch's model */
    int64_t test_epoch;         /* the epoch whose model `test` is of */
    int64_t stopped_early;      /* epoch at which train.early_stop_patience ended training, 0: none */
    sr_eval_result best_valid;  /* nk == 0 when no validation ran */
    int64_t best_epoch;         /* epoch of the best eval.valid_metric (0: none); its model is run.dir/best.h5 */
    int64_t epochs, steps;      /* trained in this run */
    double train_seconds;       /* sum of epoch times (no evaluation) */
    double epoch_seconds;       /* mean per epoch */
    int64_t peak_mem_bytes;     /* max over ranks of the process's peak RSS */
    int64_t comm_bytes_per_step; /* max over ranks of collective payload bytes per step */
    int64_t num_users, num_items;
    /* lightgcn: bytes a rank sends per propagation round (max over ranks),
     * and what exchanging whole tables would send instead; 0 otherwise */
    int64_t round_bytes, full_table_bytes;
    int64_t skipped_steps;      /* non-finite steps skipped (parameters unchanged) */
    int stopped;                /* signal that stopped training (checkpoint committed), 0: ran to the end */
    char resumed_from[SR_CONFIG_PATH_MAX + 64]; /* checkpoint this run continued from, "" = fresh */
} sr_fit_result;

typedef struct sr_trainer sr_trainer;

/* Reads cfg->data_path, builds the shard map and the model (random init, or
 * cfg->train_init when set): the backbone registered as model.name. */
sr_status sr_trainer_create(sr_trainer **out, const sr_comm *c, const sr_config *cfg, sr_error *err);
/* The same with a given backbone (tests, or one outside the registry). */
struct sr_backbone_ops;
sr_status sr_trainer_create_with(sr_trainer **out, const sr_comm *c, const sr_config *cfg,
                                 const struct sr_backbone_ops *ops, sr_error *err);
void sr_trainer_destroy(sr_trainer **t);

/* Train cfg->train_epochs epochs; writes run_dir/metrics.jsonl (rank 0),
 * run_dir/model.h5 at the end; fills the result (the same on every rank).
 * Reliability (issue 6, docs/reliability.md):
 *  - a committed checkpoint every train.checkpoint_every steps and at the
 *    end in run_dir/checkpoints (model, optimiser state, step, epoch, data
 *    cursor, best validation; ckpt_dir.h's commit protocol); leftover
 *    temporaries removed at start;
 *  - train.resume = auto continues from `latest`: the same bits as an
 *    uninterrupted run at the same rank count (every random stream is keyed
 *    by step or epoch), resharded at another rank count;
 *  - SIGUSR1/SIGTERM on any rank: all ranks stop after the same step,
 *    commit a checkpoint, return SR_OK with res->stopped = the signal;
 *  - a step whose loss or gradients are not finite on any rank is skipped
 *    on every rank with parameters unchanged; more than
 *    train.max_bad_steps in a row stop the run with SR_ERR_NUMERIC (exit 8);
 *  - the watchdog (guard.h) ends the job with exit 10 when a step takes
 *    train.watchdog_factor x its recent median (and at least
 *    train.watchdog_min_seconds).
 * guard: the caller's (train/guard.h, not NULL), created before
 * sr_trainer_create with SR_GUARD_START watched so start-up is watched too,
 * destroyed after sr_trainer_destroy; fit publishes its heartbeats in
 * run.dir, brackets steps, saves and evaluations, and watches SR_GUARD_FINISH
 * from the last step on. */
struct sr_guard;
sr_status sr_trainer_fit(sr_trainer *t, struct sr_guard *guard, sr_fit_result *res, sr_error *err);

/* Full-ranking evaluation of split (1 = valid, 2 = test) with the user's
 * known items masked (train, and valid when evaluating test). */
sr_status sr_trainer_evaluate(sr_trainer *t, int split, sr_eval_result *res, sr_error *err);

/* Recommendations: the top k items (1 <= k <= num_items) of every user over
 * the whole catalogue, the user's known items (train, valid, test) masked,
 * the query built from its train and valid history. Collective; batch by
 * batch, sink gets the same replicated lists on every rank (rank 0 writes,
 * typically): n users' global ids, n x k item ids (-1 past the eligible
 * items) and their scores (cosine when model.temperature > 0, before the
 * temperature). A sink error on any rank is returned on every rank after
 * the last batch. */
typedef sr_status (*sr_trainer_topk_sink)(void *ctx, const int64_t *users, int64_t n, const int64_t *items,
                                          const float *scores, int64_t k, sr_error *err);
sr_status sr_trainer_recommend(sr_trainer *t, int64_t k, sr_trainer_topk_sink sink, void *ctx, sr_error *err);

/* The vectors the model scores with, as an HDF5 file (written like a
 * checkpoint, committed by rename): /export/user_vectors (num_users x d:
 * each user's query for ranking, from its train and valid history, after
 * LightGCN's propagation or SASRec's encoder, scaled as the loss sees it)
 * and /export/item_vectors (num_items x d: the scoring rows, normalised
 * when model.temperature > 0), so q . v is the model's logit. Collective.
 * SR_ERR_CONFIG for a loss whose scores are not dot products (hsm). */
sr_status sr_trainer_export(sr_trainer *t, const char *path, sr_error *err);

/* Load model tables from a checkpoint (same shapes as the dataset). */
sr_status sr_trainer_load(sr_trainer *t, const char *path, sr_error *err);

/* Analysis access (softrec analyze). The rows the scores are computed from:
 * this rank's item rows (normalised when model.temperature > 0) and their
 * map; valid until the next call. */
const float *sr_trainer_item_rows(sr_trainer *t, const sr_shard **map, int64_t *n_local);
/* Collective: the query vectors (n x d, replicated) of global users (the
 * same list on every rank), scaled as the loss sees them, so logits are
 * q . v with the rows above. n <= the eval batch (256 x ranks) when
 * model.temperature > 0. */
sr_status sr_trainer_user_queries(sr_trainer *t, const int64_t *users, int64_t n, float *q,
                                  sr_error *err);
/* Collective: one item per user (the first of its test split, else valid,
 * else train; -1 when it has none), replicated. */
sr_status sr_trainer_user_targets(sr_trainer *t, const int64_t *users, int64_t n, int64_t *targets,
                                  sr_error *err);
const sr_config *sr_trainer_config(const sr_trainer *t);
const sr_dataset_meta *sr_trainer_meta(const sr_trainer *t);
const int64_t *sr_trainer_popularity(const sr_trainer *t); /* train count per item, global order */

/* The backbone the trainer holds (its own type is the backbone's). */
struct sr_backbone *sr_trainer_backbone(sr_trainer *t);

/* The value of metric `kind` (sr_metric_kind) at cut-off index k_index. */
double sr_eval_result_value(const sr_eval_result *r, int kind, int k_index);

/* The metrics as a JSON object ("ndcg@20": value, ..., "users": n), values
 * rounded to 1e-6, non-finite ones null (jansson; the caller decrefs). */
struct json_t;
struct json_t *sr_eval_result_to_json(const sr_eval_result *r);

#endif
