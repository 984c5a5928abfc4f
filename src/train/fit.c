/* fit.c: the epoch loop (train.h) as named phases: start (run directory,
 * reliability hooks, resume), steps (with the skip policy, checkpoints and
 * progress), the end of an epoch (validation, its metrics line), and the
 * finish (last checkpoint, model.h5, test evaluation, run figures). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comm/collectives.h"
#include "io/ckpt_dir.h"
#include "io/fault.h"
#include "train/guard.h"
#include "train/report.h"
#include "train/runlog.h"
#include "train/state.h"
#include "train/trainer.h"

/* One run of sr_trainer_fit. */
typedef struct fit_run {
    sr_trainer *t;
    sr_fit_result *res;
    sr_train_pos pos;
    sr_fault fault;
    sr_guard *guard;
    int64_t first_epoch, last_epoch, steps_run, bad_run, comm_bytes; /* last_epoch: the last one finished */
    double t_start, t_epoch; /* wall clock at the run's and the epoch's start */
    FILE *runlog;            /* rank 0: run.dir/log.txt (runlog.h), or NULL */
} fit_run;

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

/* Reliability hooks (fault injection, the watchdog's heartbeats; the guard
 * is the caller's, start-up watched already) and the checkpoint directory;
 * then continue from its latest checkpoint when train.resume = auto finds
 * one. */
static sr_status fit_start(fit_run *f, sr_error *err)
{
    sr_trainer *t = f->t;
    const sr_comm *c = t->c;
    const sr_config *cfg = &t->cfg;
    if (c->rank == 0) make_dirs(cfg->run_dir, err);
    SR_TRY(sr_comm_agree(c, err));
    sr_log_root(&t->log, SR_LOG_INFO,
                "training %s (d=%lld) with %s: %lld users, %lld items over %d ranks "
                "(%s shards), %lld examples, %lld steps/epoch of %lld",
                t->ops->name, (long long)cfg->model_dim, cfg->loss_name, (long long)t->meta.num_users,
                (long long)t->meta.num_items, c->size, cfg->shard_layout, (long long)t->ex_total,
                (long long)t->steps_per_epoch, (long long)cfg->train_batch_size);
    SR_TRY(sr_fault_from_env(&f->fault, err));
    if (sr_guard_set_heartbeat_dir(f->guard, cfg->run_dir, err) != SR_OK) {
        sr_log_root(&t->log, SR_LOG_WARN, "%s (the watchdog will not name stopped ranks)", err->msg);
        sr_error_clear(err);
    }
    SR_TRY(sr_ckpt_dir_cleanup(c, cfg->run_dir, err));
    f->pos = (sr_train_pos){.epoch = 1, .best = -1};
    char *from = f->res->resumed_from;
    if (!strcmp(cfg->train_resume, "auto")) {
        SR_TRY(sr_trainer_resume(t, &f->pos, &f->fault, from, sizeof f->res->resumed_from, err));
        if (from[0]) SR_TRY(sr_trainer_load_seconds(t, &f->pos, err));
        if (from[0])
            sr_log_root(&t->log, SR_LOG_INFO, "resumed from %s: epoch %lld, step %lld of the epoch, %lld steps taken",
                        from, (long long)f->pos.epoch, (long long)f->pos.cursor, (long long)f->pos.step);
    }
    sr_report_run_files(cfg, c->rank, from[0] != 0);
    SR_TRY(sr_runlog_open(t, from[0] != 0, &f->runlog, err));
    t->log.copy = f->runlog;
    f->first_epoch = f->pos.epoch;
    f->t_start = sr_time_now();
    return SR_OK;
}

/* An evaluation, watched with its own limit. */
static sr_status evaluate(fit_run *f, int split, sr_eval_result *r, sr_error *err)
{
    sr_guard_watch(f->guard, SR_GUARD_EVAL, 0);
    sr_status st = sr_fault_hit(&f->fault, SR_FAULT_EVAL, f->t->c->rank, "evaluation", err);
    if (st == SR_OK) st = sr_trainer_evaluate(f->t, split, r, err);
    sr_guard_unwatch(f->guard);
    return st;
}

/* A checkpoint of the current step; the wall time trained goes beside it
 * (train_seconds), not into the file. */
static sr_status save_checkpoint(fit_run *f, sr_error *err)
{
    SR_TRY(sr_trainer_save_seconds(f->t, &f->pos, err));
    return sr_trainer_save_checkpoint(f->t, &f->pos, f->guard, &f->fault, err);
}

/* What a failed step means. Non-finite (seen by every rank in the same
 * step): skipped with parameters unchanged, until train.max_bad_steps in a
 * row stop the run. Bad data: the run stops, the error names the step.
 * Anything else is one rank's failure mid-step: the job is aborted. */
static sr_status step_failed(fit_run *f, int64_t epoch, int64_t s, sr_status st, sr_error *err)
{
    sr_trainer *t = f->t;
    const sr_config *cfg = &t->cfg;
    if (st == SR_ERR_NUMERIC) {
        f->pos.skipped++;
        if (++f->bad_run > cfg->train_max_bad_steps) {
            char msg[SR_ERROR_MSG_MAX + 400];
            snprintf(msg, sizeof msg,
                     "epoch %lld step %lld: %s in %lld steps in a row (train.max_bad_steps = %lld); "
                     "stopped (try a lower train.lr and resume from the last checkpoint with train.resume_force=true)",
                     (long long)epoch, (long long)s + 1, err->msg, (long long)f->bad_run,
                     (long long)cfg->train_max_bad_steps);
            snprintf(err->msg, sizeof err->msg, "%.*s", (int)sizeof err->msg - 1, msg);
            return st;
        }
        sr_log_root(&t->log, SR_LOG_WARN, "epoch %lld step %lld skipped: %s (parameters unchanged)",
                    (long long)epoch, (long long)s + 1, err->msg);
        sr_error_clear(err);
        return SR_OK;
    }
    if (st == SR_ERR_DATA) {
        char msg[SR_ERROR_MSG_MAX + 96];
        snprintf(msg, sizeof msg, "epoch %lld step %lld: %s", (long long)epoch, (long long)s + 1, err->msg);
        snprintf(err->msg, sizeof err->msg, "%.*s", (int)sizeof err->msg - 1, msg);
        return st;
    }
    sr_comm_abort(t->c, err);
}

/* After a step (its stop decision is the step's last collective): a
 * checkpoint every train.checkpoint_every steps, and one when a signal asks
 * the run to stop (then the run stops). */
static sr_status after_step(fit_run *f, int64_t step, sr_error *err)
{
    sr_trainer *t = f->t;
    const sr_config *cfg = &t->cfg;
    int sig = 0;
    sr_status st = sr_guard_should_stop(f->guard, &sig, err);
    sr_guard_step_end(f->guard, step);
    SR_TRY(st);
    const bool every = cfg->train_checkpoint_every > 0 && t->step % cfg->train_checkpoint_every == 0;
    if (!sig && !every) return SR_OK;
    const double t_train = f->pos.train_seconds;
    f->pos.train_seconds = t_train + (sr_time_now() - f->t_epoch);
    st = save_checkpoint(f, err);
    f->pos.train_seconds = t_train;
    if (st == SR_OK && sig) {
        f->res->stopped = sig;
        sr_log_root(&t->log, SR_LOG_INFO, "signal %d: stopped after step %lld, checkpoint committed in %s/checkpoints",
                    sig, (long long)t->step, cfg->run_dir);
    }
    return st;
}

static void progress(fit_run *f, int64_t epoch, int64_t s, int64_t s0, double *last)
{
    sr_trainer *t = f->t;
    const int64_t steps = t->steps_per_epoch;
    double now = sr_time_now();
    if (t->c->rank != 0 || (now - *last < t->cfg.run_progress_every && s + 1 != steps)) return;
    double done = (double)(epoch - 1) * steps + s + 1;
    sr_progress p = {epoch, t->cfg.train_epochs, s + 1, steps, f->pos.epoch_loss / (double)(s + 1),
                     (double)(s + 1 - s0) * t->cfg.train_batch_size / (now - f->t_epoch),
                     (now - f->t_start) / (double)f->steps_run * ((double)t->cfg.train_epochs * steps - done)};
    sr_report_progress(&t->log, t->c->rank, &p);
    if (f->runlog && s + 1 == steps) { /* the log keeps each epoch's last progress line */
        sr_log plain = t->log;
        plain.out = f->runlog, plain.copy = NULL, plain.tty = 0;
        sr_report_progress(&plain, t->c->rank, &p);
    }
    *last = now;
}

/* The steps of one epoch, from its first or (resumed) from the cursor. */
static sr_status fit_steps(fit_run *f, int64_t epoch, sr_error *err)
{
    sr_trainer *t = f->t;
    const sr_comm *c = t->c;
    const int64_t steps = t->steps_per_epoch;
    double last = f->t_epoch;
    sr_trainer_shuffle(t, epoch);
    const int64_t s0 = epoch == f->first_epoch ? f->pos.cursor : 0;
    if (s0 == 0) f->pos.epoch_loss = 0;
    for (int64_t s = s0; s < steps; s++) {
        int64_t lo, hi;
        sr_trainer_step_range(t, s, &lo, &hi);
        double loss = 0;
        int64_t b0 = c->stats ? c->stats->bytes : 0;
        /* The step's number before sr_trainer_step counts it. */
        const int64_t step = t->step + 1;
        sr_guard_step_begin(f->guard, step);
        sr_status st = sr_trainer_step(t, lo, hi, &loss, err);
        if (c->stats) f->comm_bytes += c->stats->bytes - b0;
        if (st != SR_OK) {
            sr_guard_step_end(f->guard, step);
            SR_TRY(step_failed(f, epoch, s, st, err));
            continue;
        }
        f->bad_run = 0;
        f->steps_run++;
        f->pos.epoch_loss += loss;
        f->pos.epoch = epoch;
        f->pos.cursor = s + 1;
        SR_TRY(after_step(f, step, err));
        if (f->res->stopped) return SR_OK;
        progress(f, epoch, s, s0, &last);
    }
    return SR_OK;
}

/* The validations since best_epoch's by epoch (a validation epoch, or the
 * last one a resumed run completed: validations happen at multiples of
 * eval.every) when they reach train.early_stop_patience, else 0. */
static int64_t patience_spent(const sr_config *cfg, int64_t epoch, int64_t best_epoch)
{
    if (cfg->train_early_stop_patience <= 0 || cfg->eval_every <= 0 || best_epoch <= 0) return 0;
    const int64_t since = epoch / cfg->eval_every - best_epoch / cfg->eval_every;
    return since >= cfg->train_early_stop_patience ? since : 0;
}

/* A validation's verdict: a new best eval.valid_metric keeps the model as
 * run.dir/best.h5 (committed like model.h5); train.early_stop_patience
 * validations without one end the training. */
static sr_status select_model(fit_run *f, int64_t epoch, const sr_eval_result *v, sr_error *err)
{
    sr_trainer *t = f->t;
    const sr_config *cfg = &t->cfg;
    const double value = sr_eval_result_value(v, t->valid_kind, t->valid_k);
    sr_log_root(&t->log, SR_LOG_INFO, "epoch %lld valid ndcg@%lld %.4f recall@%lld %.4f (%.1f s)", (long long)epoch,
                (long long)v->k[0], v->ndcg[0], (long long)v->k[0], v->recall[0], v->seconds);
    if (value > f->pos.best) {
        f->pos.best = value;
        f->pos.best_epoch = epoch;
        f->res->best_valid = *v;
        char path[SR_CONFIG_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/best.h5", cfg->run_dir);
        sr_guard_watch(f->guard, SR_GUARD_MODEL, 0);
        sr_status st = sr_trainer_save_model(t, path, epoch, err);
        sr_guard_unwatch(f->guard);
        return st;
    }
    const int64_t since = patience_spent(cfg, epoch, f->pos.best_epoch);
    if (since > 0) {
        f->res->stopped_early = epoch;
        sr_log_root(&t->log, SR_LOG_INFO, "epoch %lld: %lld validations without a better %s than epoch %lld's %.6f: "
                    "stopped (train.early_stop_patience)", (long long)epoch, (long long)since,
                    cfg->eval_valid_metric[0] ? cfg->eval_valid_metric : "ndcg", (long long)f->pos.best_epoch,
                    f->pos.best);
    }
    return SR_OK;
}

/* Validation every eval.every epochs (when the split has one), and the
 * epoch's metrics line. */
static sr_status end_epoch(fit_run *f, int64_t epoch, sr_error *err)
{
    sr_trainer *t = f->t;
    const sr_config *cfg = &t->cfg;
    double secs = sr_time_now() - f->t_epoch;
    f->pos.train_seconds += secs;
    json_t *line = json_object();
    json_object_set_new(line, "epoch", json_integer(epoch));
    json_object_set_new(line, "step", json_integer(t->step));
    json_object_set_new(line, "loss", sr_json_number(f->pos.epoch_loss / (double)t->steps_per_epoch, 1e-6));
    json_object_set_new(line, "epoch_seconds", sr_json_number(secs, 1e-3));
    json_object_set_new(line, "examples_per_second", sr_json_number((double)t->ex_total / secs, 0.1));
    json_object_set_new(line, "train_seconds", sr_json_number(f->pos.train_seconds, 1e-3));
    sr_status st = SR_OK;
    if (cfg->eval_every > 0 && epoch % cfg->eval_every == 0 && t->meta.nnz[SR_SPLIT_VALID] > 0) {
        sr_eval_result v;
        st = evaluate(f, SR_SPLIT_VALID, &v, err);
        if (st == SR_OK) json_object_set_new(line, "valid", sr_eval_result_to_json(&v));
        if (st == SR_OK) st = select_model(f, epoch, &v, err);
        sr_eval_result te;
        if (st == SR_OK && cfg->eval_test_curve) st = evaluate(f, SR_SPLIT_TEST, &te, err);
        if (st == SR_OK && cfg->eval_test_curve) json_object_set_new(line, "test", sr_eval_result_to_json(&te));
    }
    if (st == SR_OK) sr_report_append(cfg, &t->log, t->c->rank, line);
    json_decref(line);
    SR_TRY(st);
    f->pos.epoch = epoch + 1; /* the next one starts at its first step */
    f->pos.cursor = 0;
    f->pos.epoch_loss = 0;
    return SR_OK;
}

/* The run's figures, the same on every rank (max over ranks). */
static sr_status run_figures(fit_run *f, sr_error *err)
{
    sr_trainer *t = f->t;
    sr_fit_result *res = f->res;
    int64_t round = 0, full = 0;
    if (t->ops->round_bytes) t->ops->round_bytes(t->bb, &round, &full);
    double agg[4] = {(double)sr_mem_process_peak(),
                     res->steps > 0 ? (double)f->comm_bytes / (double)res->steps : 0, (double)round, (double)full};
    SR_TRY(sr_comm_allreduce_max(t->c, agg, 4, err));
    res->peak_mem_bytes = (int64_t)agg[0];
    res->comm_bytes_per_step = (int64_t)(agg[1] + 0.5);
    res->round_bytes = (int64_t)agg[2];
    res->full_table_bytes = (int64_t)agg[3];
    return SR_OK;
}

/* The test split for the last epoch's model and, unless eval.test_model =
 * last, for the best validation's (run.dir/best.h5, loaded over it). */
static sr_status test_models(fit_run *f, sr_error *err)
{
    sr_trainer *t = f->t;
    sr_fit_result *res = f->res;
    SR_TRY(evaluate(f, SR_SPLIT_TEST, &res->test_last, err));
    res->test = res->test_last;
    res->test_epoch = f->last_epoch;
    /* a resumed finished run has not seen its best validation in this
     * process: measured again on that model (evaluation is deterministic) */
    const bool revalid = res->best_valid.users == 0 && f->pos.best_epoch > 0;
    if (revalid && f->pos.best_epoch == f->last_epoch) SR_TRY(evaluate(f, SR_SPLIT_VALID, &res->best_valid, err));
    if (strcmp(t->cfg.eval_test_model, "best") || f->pos.best_epoch <= 0 || f->pos.best_epoch == f->last_epoch)
        return SR_OK;
    char path[SR_CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/best.h5", t->cfg.run_dir);
    double missing = access(path, R_OK) != 0; /* a run directory copied without it: say so */
    SR_TRY(sr_comm_allreduce_max(t->c, &missing, 1, err));
    if (missing) {
        sr_log_root(&t->log, SR_LOG_WARN, "%s is missing: the test metrics are the last epoch's, not epoch %lld's",
                    path, (long long)f->pos.best_epoch);
        return SR_OK;
    }
    SR_TRY(sr_trainer_load(t, path, err));
    if (revalid) SR_TRY(evaluate(f, SR_SPLIT_VALID, &res->best_valid, err));
    res->test_epoch = f->pos.best_epoch;
    return evaluate(f, SR_SPLIT_TEST, &res->test, err);
}

/* The last checkpoint, model.h5, the test split, the final metrics line. */
static sr_status fit_finish(fit_run *f, sr_error *err)
{
    sr_trainer *t = f->t;
    const sr_config *cfg = &t->cfg;
    sr_fit_result *res = f->res;
    sr_guard_watch(f->guard, SR_GUARD_FINISH, 0); /* between the watched phases below, and until destroy */
    SR_TRY(save_checkpoint(f, err));
    res->skipped_steps = f->pos.skipped;
    res->train_seconds = f->pos.train_seconds;
    res->epochs = f->last_epoch;
    res->steps = f->steps_run;
    res->epoch_seconds = f->last_epoch > 0 ? f->pos.train_seconds / (double)f->last_epoch : 0;
    res->best_epoch = f->pos.best_epoch;
    res->num_users = t->meta.num_users;
    res->num_items = t->meta.num_items;
    char path[SR_CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/model.h5", cfg->run_dir);
    sr_guard_watch(f->guard, SR_GUARD_MODEL, 0);
    sr_status st = sr_trainer_save_model(t, path, f->last_epoch, err);
    sr_guard_unwatch(f->guard);
    SR_TRY(st);
    SR_TRY(test_models(f, err));
    json_t *line = json_object();
    json_object_set_new(line, "final", json_true());
    json_object_set_new(line, "step", json_integer(t->step));
    json_object_set_new(line, "best_valid_epoch", json_integer(f->pos.best_epoch));
    json_object_set_new(line, "test_epoch", json_integer(res->test_epoch));
    json_object_set_new(line, "test", sr_eval_result_to_json(&res->test));
    json_object_set_new(line, "test_last", sr_eval_result_to_json(&res->test_last));
    sr_report_append(cfg, &t->log, t->c->rank, line);
    json_decref(line);
    SR_TRY(sr_fault_hit(&f->fault, SR_FAULT_FINISH, t->c->rank, "finish", err));
    return run_figures(f, err); /* the peak includes the final evaluation */
}

sr_status sr_trainer_fit(sr_trainer *t, sr_guard *guard, sr_fit_result *res, sr_error *err)
{
    memset(res, 0, sizeof *res);
    fit_run f = {.t = t, .res = res, .guard = guard};
    sr_status st = fit_start(&f, err);
    f.last_epoch = f.pos.epoch - 1;
    if (st == SR_OK && patience_spent(&t->cfg, f.last_epoch, f.pos.best_epoch) > 0) {
        /* a resumed run that early stopping had ended: finish it again (the
         * same test rows), do not train on; a larger patience continues it */
        res->stopped_early = f.last_epoch;
        sr_log_root(&t->log, SR_LOG_INFO, "epoch %lld: early stopping had ended this run (best epoch %lld); "
                    "raise train.early_stop_patience to train on", (long long)f.last_epoch,
                    (long long)f.pos.best_epoch);
    }
    for (int64_t e = f.pos.epoch; e <= t->cfg.train_epochs && st == SR_OK && !res->stopped && !res->stopped_early;
         e++) {
        f.t_epoch = sr_time_now();
        st = fit_steps(&f, e, err);
        if (st == SR_OK && !res->stopped) st = end_epoch(&f, e, err);
        if (st == SR_OK && !res->stopped) f.last_epoch = e;
    }
    if (st == SR_OK && !res->stopped) st = fit_finish(&f, err);
    else if (st == SR_OK) res->skipped_steps = f.pos.skipped;
    if (f.runlog) {
        if (st != SR_OK) fprintf(f.runlog, "softrec: error: %s [%s:%d]\n", err->msg, err->file, err->line);
        fclose(f.runlog);
        t->log.copy = NULL;
    }
    return st;
}
