/* info.h: statistics of a dataset file ("softrec data info").
 *
 * sr_data_info_compute is collective: every rank opens the file, reads and
 * validates its user range of every split (so a bad item id anywhere is
 * reported), and the per-user figures are reduced. Popularity figures come
 * from /item_popularity read on rank 0 and are only valid there. Printing
 * is the caller's business (rank 0).
 */
#ifndef SR_IO_INFO_H
#define SR_IO_INFO_H

#include <jansson.h>
#include <stdio.h>

#include "comm/comm.h"
#include "io/dataset.h"

typedef struct sr_data_info {
    char path[1024];
    sr_dataset_meta meta;
    int64_t total;                            /* interactions over all splits */
    double density;                           /* total / (users * items) */
    int64_t users_with[SR_SPLIT_COUNT];       /* users with >= 1 row per split */
    int64_t row_min[SR_SPLIT_COUNT], row_max[SR_SPLIT_COUNT];
    /* popularity (train), rank 0 only */
    double gini;          /* 0 = uniform, -> 1 = all on one item */
    int64_t top1_items;   /* ceil(1% of items), at least 1 */
    double top1_share;    /* share of train interactions on those items */
    int64_t pop_max;
    double pop_median;
    int64_t cold_items;   /* items with no train interaction */
} sr_data_info;

sr_status sr_data_info_compute(const sr_comm *c, const char *path, sr_data_info *out, sr_error *err);

/* One JSON object (caller json_decref's it). */
json_t *sr_data_info_json(const sr_data_info *in);
/* Human-readable, a few lines. */
void sr_data_info_print(const sr_data_info *in, FILE *out);

#endif
