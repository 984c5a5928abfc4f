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

/* The run fingerprint (docs/reliability.md, "Run fingerprint"): the keys
 * that change what is trained, and the dataset's content. A section prefix
 * takes that section's future keys in too. Not in it: bookkeeping (run.*,
 * train.epochs, checkpoints, resume, watchdog, max_bad_steps), evaluation
 * (eval.*), where the data lives (data.path: its content is), train.init
 * (a resumed run loads its tables), and loss.tile (memory per tile). */
static const char *const FP_PREFIXES[] = {"model.", "loss.", "optim."};
static const char *const FP_KEYS[] = {"train.batch_size", "train.lr",   "train.lr_milestones", "train.lr_gamma",
                                      "train.seed",       "train.shuffle", "shard.layout"};
static const char *const FP_EXCLUDED[] = {"loss.tile"};
#define FP_DATA_KEY "data.content_sha256"
#define FP_VALUE_SHOWN 80 /* characters of a value quoted in a message */

static bool fp_key(const char *name)
{
    for (size_t i = 0; i < sizeof FP_EXCLUDED / sizeof *FP_EXCLUDED; i++)
        if (!strcmp(name, FP_EXCLUDED[i])) return false;
    for (size_t i = 0; i < sizeof FP_KEYS / sizeof *FP_KEYS; i++)
        if (!strcmp(name, FP_KEYS[i])) return true;
    for (size_t i = 0; i < sizeof FP_PREFIXES / sizeof *FP_PREFIXES; i++)
        if (!strncmp(name, FP_PREFIXES[i], strlen(FP_PREFIXES[i]))) return true;
    return false;
}

/* "key = value" lines, config table order, then the data line (malloc'ed;
 * out of memory aborts the job). */
static char *fingerprint_text(const sr_trainer *t)
{
    size_t n;
    const sr_config_key *k = sr_config_table(&n);
    size_t cap = (n + 1) * (SR_CONFIG_PATH_MAX + 128), off = 0;
    char *fp = malloc(cap);
    if (!fp) sr_comm_abort(t->c, &(sr_error){SR_ERR_NOMEM, __FILE__, __LINE__, "out of memory"});
    char val[SR_CONFIG_PATH_MAX + 64];
    for (size_t i = 0; i < n; i++) {
        if (!fp_key(k[i].name) || !sr_config_get(&t->cfg, k[i].name, val, sizeof val)) continue;
        off += (size_t)snprintf(fp + off, cap - off, "%s = %s\n", k[i].name, val);
    }
    snprintf(fp + off, cap - off, FP_DATA_KEY " = %s\n", t->meta.content_sha256);
    return fp;
}

/* The value of key in fingerprint text fp, or NULL; *len its length. */
static const char *fp_value(const char *fp, const char *key, size_t kl, size_t *len)
{
    for (const char *p = fp; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, key, kl) || strncmp(p + kl, " = ", 3)) continue;
        *len = strcspn(p + kl + 3, "\n");
        return p + kl + 3;
    }
    return NULL;
}

/* Whether this run's value av (length al) of key p (length kl) is the key's
 * default: a key a later softrec added, absent from an older checkpoint's
 * fingerprint and left at its default, trains what the older one did. */
static bool fp_is_default(const sr_config *def, const char *p, size_t kl, const char *av, size_t al)
{
    char key[128], val[SR_CONFIG_PATH_MAX + 64];
    if (!def || kl >= sizeof key) return false;
    memcpy(key, p, kl);
    key[kl] = '\0';
    return sr_config_get(def, key, val, sizeof val) && strlen(val) == al && !strncmp(val, av, al);
}

/* Append "key: checkpoint A, now B" for every key of `a` whose value in `b`
 * differs (or is missing, unless it is at its default in `def`); swapped =
 * the roles of a and b are swapped. Returns the count of differences. */
static int fp_diff(const char *a, const char *b, bool swapped, bool log, const sr_trainer *t, const sr_config *def,
                   const char *path, char *msg, size_t cap)
{
    int count = 0;
    for (const char *p = a; *p; p += strcspn(p, "\n") + (p[strcspn(p, "\n")] == '\n')) {
        size_t kl = strcspn(p, " \n"), al = strcspn(p, "\n"), bl = 0;
        if (al < kl + 3) continue;
        const char *av = p + kl + 3, *bv = fp_value(b, p, kl, &bl);
        al -= kl + 3;
        if (bv && bl == al && !strncmp(av, bv, al)) continue;
        if (!bv && !swapped && fp_is_default(def, p, kl, av, al)) continue;
        if (swapped && bv) continue; /* both present: reported by the first pass */
        const char *none = "(not recorded)", *cv = swapped ? av : bv ? bv : none, *nv = swapped ? none : av;
        size_t cl = swapped ? al : bv ? bl : strlen(none), nl = swapped ? strlen(none) : al;
        char one[2 * FP_VALUE_SHOWN + 128];
        snprintf(one, sizeof one, "%.*s: checkpoint %.*s, now %.*s", (int)kl, p,
                 (int)(cl < FP_VALUE_SHOWN ? cl : FP_VALUE_SHOWN), cv, (int)(nl < FP_VALUE_SHOWN ? nl : FP_VALUE_SHOWN),
                 nv);
        if (log) sr_log_root(&t->log, SR_LOG_WARN, "%s: %s (train.resume_force = true: resuming anyway)", path, one);
        size_t used = strlen(msg);
        if (used + strlen(one) + 8 < cap) snprintf(msg + used, cap - used, "%s%s", used ? "; " : "", one);
        count++;
    }
    return count;
}

/* The accept hook of a resume (ckpt_dir.h): a checkpoint of another run
 * (a semantic key or the data differ) is SR_ERR_CONFIG naming every
 * difference, unless train.resume_force, which warns and goes on. */
static sr_status accept_same_run(void *ctx, const char *path, const sr_ckpt_info *info, sr_error *err)
{
    const sr_trainer *t = ctx;
    const bool force = t->cfg.train_resume_force;
    char *now = fingerprint_text(t);
    char msg[SR_ERROR_MSG_MAX] = "";
    const char *stored = info->fingerprint ? info->fingerprint : "";
    int n = 0;
    if (!stored[0]) {
        snprintf(msg, sizeof msg, "it records no run fingerprint (saved before softrec recorded one)");
        if (force) sr_log_root(&t->log, SR_LOG_WARN, "%s: %s (train.resume_force = true: resuming anyway)", path, msg);
        n = 1;
    } else {
        sr_config *def = malloc(sizeof *def); /* NULL: a missing key is a difference */
        if (def) sr_config_defaults(def);
        n = fp_diff(now, stored, false, force, t, def, path, msg, sizeof msg - 160);
        n += fp_diff(stored, now, true, force, t, def, path, msg, sizeof msg - 160);
        free(def);
    }
    free(now);
    if (n == 0 || force) return SR_OK;
    SR_FAIL(err, SR_ERR_CONFIG, "%s: checkpoint of a different run (%d difference%s): %s; set train.resume_force=true "
            "to resume anyway", path, n, n == 1 ? "" : "s", msg);
}

/* The attributes of a checkpoint, the resolved config as INI text and the
 * run fingerprint included (malloc'ed: sr_ckpt_info_free; out of memory
 * aborts the job). */
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
    info->fingerprint = fingerprint_text(t);
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
    sr_ckpt_info_free(&info);
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
    const sr_ckpt_accept same_run = {accept_same_run, t};
    SR_TRY(sr_ckpt_dir_load(t->c, t->cfg.run_dir, ct.all, ct.n, st, ns, &info, &same_run, fault, from, len, err));
    sr_ckpt_info_free(&info);
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
    sr_ckpt_info_free(&info);
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
    sr_ckpt_info_free(&info);
    return st;
}
