/* trainer.h: the trainer's state, shared by the files of src/train that
 * implement train.h (train.c: creation; step.c: one optimiser step;
 * fit.c: the epoch loop; state.c: checkpoints; evaluate.c: full ranking;
 * report.c: progress and result lines). Not for use outside src/train.
 */
#ifndef SR_TRAIN_TRAINER_H
#define SR_TRAIN_TRAINER_H

#include <stdbool.h>
#include <stdint.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "core/config.h"
#include "core/csr.h"
#include "core/log.h"
#include "core/mem.h"
#include "io/dataset.h"
#include "io/fault.h"
#include "loss/loss.h"
#include "models/backbone.h"
#include "nn/optim.h"
#include "train/scores.h"
#include "train/train.h"

#define SR_EVAL_BATCH 256 /* users per rank per evaluation step */

static inline int64_t sr_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct sr_trainer {
    const sr_comm *c;
    sr_config cfg;
    sr_log log;
    sr_mem mem;
    sr_fault alloc_fault; /* SOFTREC_FAULT when it is alloc/alloc-count (armed on mem) */
    sr_dataset_meta meta;
    sr_shard items;
    int64_t u0, u1;
    sr_csr split[SR_SPLIT_COUNT];
    int64_t *pop;            /* train count of every item (global order) */
    /* examples: the backbone's (examples_of), numbered per rank */
    int64_t n_ex;            /* this rank's */
    int64_t ex_total;        /* over all ranks */
    int64_t ex_offset;       /* global index of this rank's first */
    int64_t *ex_order;       /* this epoch's order of the local examples */
    int64_t steps_per_epoch; /* ceil(global examples / global batch) */
    int64_t max_local_batch; /* examples a rank passes to one step, at most */
    int64_t step;            /* optimiser steps taken */
    sr_optim opt;
    sr_lr_schedule lrs;
    int valid_kind, valid_k;    /* eval.valid_metric: sr_metric_kind, index into eval.topk */
    /* the model, the loss and how they score */
    const sr_backbone_ops *ops;
    sr_backbone *bb;
    sr_loss *loss;
    sr_scores scores;
    /* one step's buffers */
    float *q_local, *dq_local;  /* this rank's queries and their gradients */
    int64_t *t_local;           /* their targets */
    float *q_all, *dq_all;      /* the global batch */
    int64_t *t_all;
    int64_t *counts;            /* queries per rank */
    void *step_bufs;            /* the one block behind the step's buffers */
};

/* step.c */
void sr_trainer_shuffle(sr_trainer *t, int64_t epoch);
/* This rank's examples of step s: positions [*lo, *hi) of ex_order. */
void sr_trainer_step_range(const sr_trainer *t, int64_t s, int64_t *lo, int64_t *hi);
/* One optimiser step on local examples [lo, hi) (collective); the global
 * mean loss. SR_ERR_NUMERIC on every rank when a gradient is not finite
 * (nothing updated). */
sr_status sr_trainer_step(sr_trainer *t, int64_t lo, int64_t hi, double *loss, sr_error *err);

/* evaluate.c: the ranking queries of local users loc[0, m) (loc NULL: users
 * 0 .. m-1) into q (m x d), after the backbone's prepare, in batches of
 * SR_EVAL_BATCH whose count is agreed so collective backbones meet
 * (collective). for_loss: each batch is scaled as the loss sees it
 * (sr_scores_queries), else the rows are raw. */
sr_status sr_trainer_local_queries(sr_trainer *t, const int64_t *loc, int64_t m, float *q, bool for_loss,
                                   sr_error *err);

#endif
