/* export.c: the vectors a trained model scores with, for use outside
 * softrec (train.h, sr_trainer_export). */
#include <stdio.h>
#include <string.h>

#include "io/checkpoint.h"
#include "train/trainer.h"

sr_status sr_trainer_export(sr_trainer *t, const char *path, sr_error *err)
{
    if (!sr_loss_scores_by_dot(t->loss))
        SR_FAIL(err, SR_ERR_CONFIG, "export: loss.name = %s scores items by tree log-probabilities, not by q . v: "
                "there are no vectors to export", t->cfg.loss_name);
    const int64_t nloc = t->u1 - t->u0, d = t->cfg.model_dim, ni = sr_shard_count(&t->items, t->c->rank);
    float *q, *v;
    sr_mem_buf b[] = {SR_MEM_BUF(q, nloc * d + 1), SR_MEM_BUF(v, ni * d + 1)};
    void *bufs = sr_mem_bufset_alloc(&t->mem, b, 2, "export", err);
    if (!bufs) sr_comm_abort(t->c, err);
    sr_status st = sr_trainer_local_queries(t, NULL, nloc, q, true, err); /* every local user */
    if (st == SR_OK) memcpy(v, sr_scores_items(&t->scores, t->ops->item_rows(t->bb)), (size_t)(ni * d) * sizeof *v);
    sr_ckpt_table tabs[2] = {{"/export/user_vectors", q, nloc, t->meta.num_users, d, NULL, t->u0},
                             {"/export/item_vectors", v, ni, t->meta.num_items, d, &t->items, 0}};
    sr_ckpt_info info = {.step = t->step, .num_users = t->meta.num_users, .num_items = t->meta.num_items, .dim = d};
    snprintf(info.dataset, sizeof info.dataset, "%s", t->cfg.data_path);
    snprintf(info.dataset_sha256, sizeof info.dataset_sha256, "%s", t->meta.source_sha256);
    if (st == SR_OK) st = sr_ckpt_write(t->c, path, &info, tabs, 2, err);
    sr_mem_free(&t->mem, bufs);
    return st;
}
