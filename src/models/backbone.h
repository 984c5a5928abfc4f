/* backbone.h: what a model provides to the trainer, as one table of functions.
 *
 * A backbone turns a rank's training examples into queries (rows the loss
 * scores against the item rows), takes the loss's gradients back, and owns
 * its parameters, regularisation and update. The trainer owns batching, the
 * all-gather of queries, the loss, the learning-rate schedule and the
 * checkpoints, and never knows which backbone it runs (docs/design.md,
 * "Adding a backbone"). Functions marked (collective) are called by every
 * rank in the same order; their errors are agreed or abort the job.
 */
#ifndef SR_MODELS_BACKBONE_H
#define SR_MODELS_BACKBONE_H

#include <stdbool.h>
#include <stdint.h>

#include "comm/comm.h"
#include "comm/shard.h"
#include "core/config.h"
#include "core/csr.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "nn/item_grad.h"
#include "nn/optim.h"

/* A backbone's state begins with this header (C's base-struct idiom):
 * implementations embed it first and cast. */
typedef struct sr_backbone_ops sr_backbone_ops;
typedef struct sr_backbone {
    const sr_backbone_ops *ops;
} sr_backbone;

/* What the trainer hands a backbone at creation; borrowed, outlives it. */
typedef struct sr_backbone_init {
    const sr_comm *c;
    const sr_config *cfg;
    const sr_shard *items;      /* item shard map */
    int64_t num_users, num_items;
    int64_t u0, u1;             /* this rank's users */
    const sr_csr *split;        /* [SR_SPLIT_COUNT]: this rank's rows of each split */
    const int64_t *popularity;  /* train count of every item, global order */
    const sr_optim *opt;
    int64_t max_batch;          /* most examples this rank passes to one step */
    int64_t eval_batch;         /* most users this rank passes to eval_queries */
    sr_mem *mem;
    const sr_log *log;
} sr_backbone_init;

/* One step's gradients, handed to update. */
typedef struct sr_backbone_grads {
    const int64_t *ex;          /* the nb local example ids of the step */
    int64_t nb;
    const float *dq;            /* nq x d: dL/d(this rank's queries), in train_queries' order */
    int64_t nq;
    const sr_item_grad *dv;     /* dL/d(local item scoring rows) */
    const int64_t *targets;     /* the global batch's B target ids */
    int64_t B;
    int64_t step;               /* the optimiser step being taken, >= 1 */
} sr_backbone_grads;

/* A checkpointed table: local rows of a global table, sharded like the
 * items (map) or a block [first, first + rows) (map == NULL). Replicated
 * tables list rows == global_rows (for_write: only rank 0 lists them). */
typedef struct sr_table {
    char name[96];              /* HDF5 path, "/model/..." or "/optim/..." */
    float *data;
    int64_t rows, global_rows, cols;
    const sr_shard *map;
    int64_t first;
} sr_table;

#define SR_TABLES_MAX 96
typedef struct sr_table_set {
    sr_table t[SR_TABLES_MAX];
    int n;
} sr_table_set;

typedef enum sr_table_kind { SR_TABLES_MODEL = 0, SR_TABLES_OPTIM = 1 } sr_table_kind;

/* Append a table (name from printf-style fmt); silently full at SR_TABLES_MAX. */
void sr_table_set_add(sr_table_set *s, float *data, int64_t rows, int64_t global_rows, int64_t cols,
                      const sr_shard *map, int64_t first, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));


struct sr_backbone_ops {
    const char *name;           /* model.name */
    const char *help;
    /* Training examples of a user with n train items (static: the trainer
     * counts examples before creating the backbone), and queries each
     * example yields at most. */
    int64_t (*examples_of)(int64_t n_train);
    int64_t (*queries_per_example)(const sr_config *cfg);
    sr_status (*create)(sr_backbone **out, const sr_backbone_init *in, sr_error *err);
    void (*destroy)(sr_backbone **b);
    /* (collective) Work before queries or item rows can be read, e.g.
     * LightGCN's propagation; NULL when there is none. */
    sr_status (*prepare)(sr_backbone *b, sr_error *err);
    /* (collective) Queries and target items of local examples ex[0..nb):
     * writes *nq rows into q (nq x d) and targets. step: the step being taken. */
    sr_status (*train_queries)(sr_backbone *b, const int64_t *ex, int64_t nb, int64_t step, float *q,
                               int64_t *targets, int64_t *nq, sr_error *err);
    /* This rank's item scoring rows (n_local x d), valid after prepare. */
    const float *(*item_rows)(const sr_backbone *b);
    /* (collective) Backward through the backbone and the optimiser step. */
    sr_status (*update)(sr_backbone *b, const sr_backbone_grads *g, sr_error *err);
    /* Learning rate of every optimiser the backbone holds, from now on. */
    void (*set_lr)(sr_backbone *b, double lr);
    /* (collective) Queries of nb local users (local indices) for ranking
     * split (SR_SPLIT_VALID or SR_SPLIT_TEST), after prepare. */
    sr_status (*eval_queries)(sr_backbone *b, const int64_t *users, int64_t nb, sr_split split, float *q,
                              sr_error *err);
    /* Tables a checkpoint stores: the model's or the optimiser state's. */
    void (*tables)(sr_backbone *b, sr_table_kind kind, bool for_write, sr_table_set *out);
    /* Bytes this rank sends per propagation round, and what whole tables
     * would cost (LightGCN's figures in the result row); NULL: none. */
    void (*round_bytes)(const sr_backbone *b, int64_t *round, int64_t *full_table);
};
/* create: on error *out is NULL and nothing is left allocated. */

/* Helpers for implementations. The local user of every local example,
 * examples enumerated user by user, examples_of(row length) each (as the
 * trainer counts them); NULL (err set) when out of memory. */
int64_t *sr_backbone_example_users(const sr_csr *train, int64_t (*examples_of)(int64_t), sr_mem *mem,
                                   sr_error *err);
/* out[i] = table row rows[i] (d floats), i < n. */
void sr_rows_gather(float *out, const float *table, const int64_t *rows, int64_t n, int64_t d);
/* "/optim/<table>/m" and ".../v" of an optimiser state, when present. */
void sr_optim_state_tables(sr_optim_state *s, int64_t rows, int64_t global_rows, const sr_shard *map,
                           int64_t first, const char *table, sr_table_set *out);

/* The registry: the backbone called `name`, or NULL. */
const sr_backbone_ops *sr_backbone_find(const char *name);
/* The i-th registered name and its help (NULL past the last): config's
 * model.name choices (declared in core/config.h). */
const char *sr_backbone_choice(size_t i, const char **help);
/* Registered backbone i (0-based), NULL past the end. */
const sr_backbone_ops *sr_backbone_at(int i);

#endif
