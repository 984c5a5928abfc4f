/* state.c: what a checkpoint holds and how a run continues from one
 * (train.h, docs/reliability.md): the backbone's and the loss's tables, the
 * optimiser state, and the training position. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/collectives.h"
#include "io/checkpoint.h"
#include "io/ckpt_dir.h"
#include "train/state.h"
#include "train/trainer.h"

/* The checkpoint's tables: the backbone's, then the loss's own sharded
 * table (hsm inner nodes). */
static int collect_tables(sr_trainer *t, sr_table_kind kind, bool for_write, sr_table_set *set,
                          sr_ckpt_table *out)
{
    set->n = 0;
    t->ops->tables(t->bb, kind, for_write, set);
    const sr_shard *map = NULL;
    int64_t nl = 0;
    float *w = sr_loss_params(t->loss, &map, &nl);
    const int64_t d = t->cfg.model_dim;
    if (w && kind == SR_TABLES_MODEL) sr_table_set_add(set, w, nl, map->n, d, map, 0, "/model/loss_nodes");
    if (w && kind == SR_TABLES_OPTIM && sr_loss_param_state(t->loss))
        sr_optim_state_tables(sr_loss_param_state(t->loss), nl, map->n, map, 0, "loss_nodes", set);
    for (int i = 0; i < set->n; i++) {
        const sr_table *s = &set->t[i];
        out[i] = (sr_ckpt_table){s->name, s->data, s->rows, s->global_rows, s->cols, s->map, s->first};
    }
    return set->n;
}

/* Model tables, then optimiser tables after them (training checkpoints). */
typedef struct ckpt_tables {
    sr_table_set model, optim;
    sr_ckpt_table all[2 * SR_TABLES_MAX];
    int n;
} ckpt_tables;

static void all_tables(sr_trainer *t, bool for_write, bool with_optim, ckpt_tables *ct)
{
    ct->n = collect_tables(t, SR_TABLES_MODEL, for_write, &ct->model, ct->all);
    if (with_optim) ct->n += collect_tables(t, SR_TABLES_OPTIM, for_write, &ct->optim, ct->all + ct->n);
}

/* steps: steps per epoch, for the load-time ranges (0 on save). Bounds
 * keep (epoch - 1) * steps + cursor far from overflow. */
#define POS_MAX_EPOCH ((int64_t)1 << 24)
#define POS_MAX_STEP ((int64_t)1 << 53)
static int pos_state(sr_train_pos *p, sr_ckpt_state *st, int64_t steps)
{
    const int r = steps > 0;
    st[0] = (sr_ckpt_state){"step", SR_CKPT_I64, &p->step, 1, 0, r, 0, POS_MAX_STEP};
    st[1] = (sr_ckpt_state){"epoch", SR_CKPT_I64, &p->epoch, 1, 0, r, 1, POS_MAX_EPOCH};
    st[2] = (sr_ckpt_state){"cursor", SR_CKPT_I64, &p->cursor, 1, 0, r, 0, steps};
    st[3] = (sr_ckpt_state){"best_epoch", SR_CKPT_I64, &p->best_epoch, 1, 0, r, 0, POS_MAX_EPOCH};
    st[4] = (sr_ckpt_state){"skipped_steps", SR_CKPT_I64, &p->skipped, 1, 0, r, 0, POS_MAX_STEP};
    /* best: -1 (none yet) or a metric in [0, 1]; loss: finite. The wall
     * time is not here: it differs between identical runs, and the same
     * run must give the same file (sr_trainer_save_seconds). */
    st[5] = (sr_ckpt_state){"best_valid", SR_CKPT_F64, &p->best, 1, 0, r, -1, 1};
    st[6] = (sr_ckpt_state){"epoch_loss", SR_CKPT_F64, &p->epoch_loss, 1, 0, r, -POS_MAX_STEP, POS_MAX_STEP};
    return 7;
}

/* The loaded position must be one this run could have reached: every step
 * of the epochs before, and cursor steps of this one, was taken or skipped
 * (step is also the learning-rate / optimiser schedule's position); the
 * best epoch is a finished one. Replicated values: the same verdict on
 * every rank. */
static sr_status check_pos(const sr_train_pos *p, int64_t steps, const char *path, sr_error *err)
{
    if (p->step + p->skipped != (p->epoch - 1) * steps + p->cursor)
        SR_FAIL(err, SR_ERR_DATA,
                "%s: /state/step: %lld steps taken + %lld skipped do not reach epoch %lld, cursor %lld at %lld steps "
                "per epoch (train.batch_size or the data changed since it was saved?)",
                path, (long long)p->step, (long long)p->skipped, (long long)p->epoch, (long long)p->cursor,
                (long long)steps);
    if (p->best_epoch >= p->epoch)
        SR_FAIL(err, SR_ERR_DATA, "%s: /state/best_epoch: %lld is not a finished epoch (epoch %lld in progress)", path,
                (long long)p->best_epoch, (long long)p->epoch);
    return SR_OK; /* the doubles' ranges are checked by the loader */
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
    info->dim = t->cfg.model_dim;
    snprintf(info->dataset, sizeof info->dataset, "%s", t->cfg.data_path);
    snprintf(info->dataset_sha256, sizeof info->dataset_sha256, "%s", t->meta.source_sha256);
    size_t need = sr_config_write_ini(&t->cfg, NULL, 0) + 1;
    info->config_ini = malloc(need);
    if (!info->config_ini) sr_comm_abort(t->c, &(sr_error){SR_ERR_NOMEM, __FILE__, __LINE__, "out of memory"});
    sr_config_write_ini(&t->cfg, info->config_ini, need);
}

sr_status sr_trainer_save_checkpoint(sr_trainer *t, sr_train_pos *p, sr_guard *g, sr_fault *fault, sr_error *err)
{
    ckpt_tables ct;
    all_tables(t, true, true, &ct);
    p->step = t->step;
    sr_ckpt_state st[8];
    int ns = pos_state(p, st, 0);
    sr_ckpt_info info;
    fill_info(t, &info, p->epoch);
    if (g) sr_guard_watch(g, SR_GUARD_SAVE, 0);
    sr_status s = sr_ckpt_dir_save(t->c, t->cfg.run_dir, t->step, &info, ct.all, ct.n, st, ns,
                                   t->cfg.train_keep_checkpoints, fault, err);
    if (g) sr_guard_unwatch(g);
    free(info.config_ini);
    return s;
}

/* run.dir/checkpoints/train_seconds: one line "<step> <seconds>" per save,
 * appended before the checkpoint is written (a failed save leaves a line no
 * checkpoint names; the last line of a step wins). */
static void seconds_path(const sr_trainer *t, char *buf, size_t n)
{
    snprintf(buf, n, "%s/checkpoints/train_seconds", t->cfg.run_dir);
}

sr_status sr_trainer_save_seconds(sr_trainer *t, sr_train_pos *p, sr_error *err)
{
    /* Wall time differs per rank: keep the slowest rank's (replicated). */
    SR_TRY(sr_comm_allreduce_max(t->c, &p->train_seconds, 1, err));
    if (t->c->rank != 0) return SR_OK;
    char path[SR_CONFIG_PATH_MAX + 32];
    seconds_path(t, path, sizeof path);
    FILE *f = fopen(path, "a");
    /* Only a figure of the run: a failure is a warning, not a lost save. */
    if (!f || fprintf(f, "%lld %.17g\n", (long long)t->step, p->train_seconds) < 0 || fclose(f) != 0) {
        sr_log_root(&t->log, SR_LOG_WARN, "%s: cannot record the training time: %s", path, strerror(errno));
        if (f) fclose(f);
    }
    return SR_OK;
}

sr_status sr_trainer_load_seconds(sr_trainer *t, sr_train_pos *p, sr_error *err)
{
    double secs = 0;
    if (t->c->rank == 0) {
        char path[SR_CONFIG_PATH_MAX + 32], line[128];
        seconds_path(t, path, sizeof path);
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof line, f)) {
            long long step;
            double v;
            if (sscanf(line, "%lld %lf", &step, &v) == 2 && step == p->step && isfinite(v) && v >= 0) secs = v;
        }
        if (f) fclose(f);
    }
    SR_TRY(sr_comm_bcast(t->c, &secs, 1, MPI_DOUBLE, 0, err));
    p->train_seconds = secs;
    return SR_OK;
}

sr_status sr_trainer_resume(sr_trainer *t, sr_train_pos *p, sr_fault *fault, char *from, size_t len, sr_error *err)
{
    ckpt_tables ct;
    all_tables(t, false, true, &ct);
    sr_ckpt_state st[8];
    int ns = pos_state(p, st, t->steps_per_epoch);
    sr_ckpt_info info;
    memset(&info, 0, sizeof info);
    SR_TRY(sr_ckpt_dir_load(t->c, t->cfg.run_dir, ct.all, ct.n, st, ns, &info, fault, from, len, err));
    free(info.config_ini);
    if (!from[0]) return SR_OK;
    SR_TRY(check_pos(p, t->steps_per_epoch, from, err));
    t->step = p->step;
    return SR_OK;
}

sr_status sr_trainer_load(sr_trainer *t, const char *path, sr_error *err)
{
    ckpt_tables ct;
    all_tables(t, false, false, &ct);
    sr_ckpt_info info;
    SR_TRY(sr_ckpt_read(t->c, path, ct.all, ct.n, &info, err));
    free(info.config_ini);
    sr_log_root(&t->log, SR_LOG_INFO, "loaded model from %s (step %lld)", path, (long long)info.step);
    return SR_OK;
}

sr_status sr_trainer_save_model(sr_trainer *t, const char *path, int64_t epoch, sr_error *err)
{
    ckpt_tables ct;
    all_tables(t, true, false, &ct);
    sr_ckpt_info info;
    fill_info(t, &info, epoch);
    sr_status st = sr_ckpt_write(t->c, path, &info, ct.all, ct.n, err);
    free(info.config_ini);
    return st;
}
