/* toy_backbone.h: the popularity backbone of the trainer test (one shared
 * query vector), with counters of the trainer's calls into it. */
#ifndef SR_TESTS_TOY_BACKBONE_H
#define SR_TESTS_TOY_BACKBONE_H

#include "models/backbone.h"

typedef struct toy_bb {
    sr_backbone base;
    const sr_comm *c;
    const sr_shard *items;
    const sr_csr *train;
    int64_t d, n_local, n_global;
    double lr;
    float *item, *w;
    /* calls seen: prepare, train_queries, update; queries without a
     * prepare since the last update */
    int64_t prepares, queries, updates, out_of_order;
    int prepared;
} toy_bb;

extern const sr_backbone_ops toy_backbone;

#endif
