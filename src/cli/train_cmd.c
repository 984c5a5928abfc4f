/* train_cmd.c: "softrec train" and "softrec eval" (cli.h). */
#include <errno.h>
#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/log.h"
#include "io/checkpoint.h"
#include "io/fault.h"
#include "train/guard.h"
#include "train/train.h"

/* ---- the result: a JSON row (stdout, result.json) and a summary (stderr) -- */

/* The run's numbers: what it trained, on what, at what cost. */
static void row_add_run(json_t *row, const sr_comm *c, const sr_config *cfg, const sr_fit_result *res)
{
    const int th = openblas_get_num_threads(); /* what ran, set or not */
    json_object_set_new(row, "best_epoch", json_integer(res->best_epoch));
    json_object_set_new(row, "train_seconds", json_real(res->train_seconds));
    json_object_set_new(row, "epoch_seconds", json_real(res->epoch_seconds));
    json_object_set_new(row, "epochs", json_integer(res->epochs));
    json_object_set_new(row, "steps", json_integer(res->steps));
    json_object_set_new(row, "ranks", json_integer(c->size));
    json_object_set_new(row, "threads", json_integer(th));
    json_object_set_new(row, "model", json_string(cfg->model_name));
    json_object_set_new(row, "loss", json_string(cfg->loss_name));
    json_object_set_new(row, "negatives", json_integer(cfg->loss_negatives));
    json_object_set_new(row, "proposal", json_string(cfg->loss_proposal));
    json_object_set_new(row, "dataset", json_string(cfg->data_path));
    json_object_set_new(row, "num_users", json_integer(res->num_users));
    json_object_set_new(row, "num_items", json_integer(res->num_items));
    json_object_set_new(row, "peak_mem_bytes", json_integer(res->peak_mem_bytes));
    json_object_set_new(row, "comm_bytes_per_step", json_integer(res->comm_bytes_per_step));
    if (res->full_table_bytes > 0) {
        json_object_set_new(row, "propagation_round_bytes", json_integer(res->round_bytes));
        json_object_set_new(row, "full_table_round_bytes", json_integer(res->full_table_bytes));
    }
    json_object_set_new(row, "run_dir", json_string(cfg->run_dir));
    json_object_set_new(row, "skipped_steps", json_integer(res->skipped_steps));
    json_object_set_new(row, "resumed_from", json_string(res->resumed_from));
    json_object_set_new(row, "version", json_string(SOFTREC_VERSION));
}

/* A config value as JSON of its type (ints, numbers, booleans, lists of
 * ints, strings), from its text. */
static json_t *config_value(sr_config_type type, const char *text)
{
    switch (type) {
    case SR_CFG_INT: return json_integer(strtoll(text, NULL, 10));
    case SR_CFG_FLOAT: return json_real(strtod(text, NULL));
    case SR_CFG_BOOL: return json_boolean(!strcmp(text, "true"));
    case SR_CFG_INTLIST: {
        json_t *a = json_array();
        for (const char *p = text; *p;) {
            char *end;
            long long v = strtoll(p, &end, 10);
            if (end == p) break;
            json_array_append_new(a, json_integer(v));
            p = *end == ',' ? end + 1 : end;
        }
        return a;
    }
    default: return json_string(text);
    }
}

/* The result row: {"test", "best_valid", run numbers..., "config": {every key}}. */
static json_t *result_row(const sr_comm *c, const sr_config *cfg, const sr_fit_result *res)
{
    json_t *row = json_object(), *conf = json_object();
    json_object_set_new(row, "test", sr_eval_result_to_json(&res->test));
    json_object_set_new(row, "test_epoch", json_integer(res->test_epoch));
    json_object_set_new(row, "test_last", sr_eval_result_to_json(&res->test_last));
    json_object_set_new(row, "best_valid", sr_eval_result_to_json(&res->best_valid));
    json_object_set_new(row, "stopped_early", json_integer(res->stopped_early));
    row_add_run(row, c, cfg, res);
    size_t nkeys = 0;
    const sr_config_key *keys = sr_config_table(&nkeys);
    for (size_t i = 0; i < nkeys; i++) {
        char val[SR_CONFIG_PATH_MAX];
        if (sr_config_get(cfg, keys[i].name, val, sizeof val))
            json_object_set_new(conf, keys[i].name, config_value(keys[i].type, val));
    }
    json_object_set_new(row, "config", conf);
    return row;
}

/* The human summary on stderr: data, model, loss, test metrics, files. */
static void print_summary(const sr_comm *c, const sr_config *cfg, const sr_fit_result *res, FILE *out)
{
    const sr_eval_result *t = &res->test;
    fprintf(out, "\nsoftrec: done: %lld epoch%s in %.1f s on %d ranks%s%s\n", (long long)res->epochs,
            res->epochs == 1 ? "" : "s",
            res->train_seconds, c->size, res->resumed_from[0] ? ", resumed from " : "", res->resumed_from);
    fprintf(out, "  data    %s: %lld users, %lld items\n", cfg->data_path, (long long)res->num_users,
            (long long)res->num_items);
    fprintf(out, "  model   %s (d=%lld), loss %s, optimiser %s\n", cfg->model_name, (long long)cfg->model_dim,
            cfg->loss_name, cfg->optim_name);
    fprintf(out, "  test    %lld users, the model of epoch %lld (%s)\n    %-15s", (long long)t->users,
            (long long)res->test_epoch, res->test_epoch == res->epochs ? "the last" : "best validation, best.h5", "");
    for (int i = 0; i < t->nk; i++) {
        char k[24];
        snprintf(k, sizeof k, "@%lld", (long long)t->k[i]);
        fprintf(out, "  %7s", k);
    }
    const char *names[6] = {"NDCG", "Precision", "Recall", "Hit", "MRR", "MAP"}; /* sr_metric_kind order */
    for (int m = 0; m < 6; m++) {
        fprintf(out, "\n    %-15s", names[m]);
        for (int i = 0; i < t->nk; i++) fprintf(out, "  %7.4f", sr_eval_result_value(t, m, i));
    }
    fprintf(out, "\n  files   %s/{result.json,metrics.jsonl,log.txt,model.h5,%sconfig.ini,checkpoints/}\n\n",
            cfg->run_dir, res->best_epoch > 0 ? "best.h5," : "");
    fflush(out);
}

/* Rank 0: the row as the last stdout line (launch/report, slurm/lib.sh and
 * the tests take it from there) and as run.dir/result.json; the summary
 * on stderr before it. */
static void print_result(const sr_comm *c, const sr_config *cfg, const sr_fit_result *res)
{
    json_t *row = result_row(c, cfg, res);
    char *txt = json_dumps(row, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8));
    json_decref(row);
    print_summary(c, cfg, res, stderr);
    if (!txt) {
        fprintf(stderr, "softrec: warning: cannot format the result row (out of memory)\n");
        return;
    }
    printf("%s\n", txt);
    fflush(stdout);
    char path[SR_CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/result.json", cfg->run_dir);
    FILE *f = fopen(path, "w");
    if (!f || fprintf(f, "%s\n", txt) < 0) fprintf(stderr, "softrec: warning: cannot write %s\n", path);
    if (f) fclose(f);
    free(txt);
}

/* ---- run.dir: never replace another run's files without --force ---------- */

/* Keys that may change between a run and its continuation (length, resume,
 * checkpoint cadence, guards, logging): all others make a different run. */
static bool key_is_semantic(const char *name)
{
    static const char *const free_keys[] = {
        "run.dir", "run.progress_every", "train.epochs", "train.resume", "train.checkpoint_every",
        "train.keep_checkpoints", "train.max_bad_steps", "train.watchdog_factor",
        "train.watchdog_min_seconds", "eval.every", "eval.test_curve",
    };
    for (size_t i = 0; i < sizeof free_keys / sizeof *free_keys; i++)
        if (!strcmp(name, free_keys[i])) return false;
    return true;
}

/* The first semantic key where a and b differ, described into buf; false
 * when they agree. */
static bool config_differs(const sr_config *a, const sr_config *b, char *buf, size_t len)
{
    size_t n = 0;
    const sr_config_key *keys = sr_config_table(&n);
    for (size_t i = 0; i < n; i++) {
        char va[SR_CONFIG_PATH_MAX], vb[SR_CONFIG_PATH_MAX];
        if (!key_is_semantic(keys[i].name)) continue;
        if (!sr_config_get(a, keys[i].name, va, sizeof va) || !sr_config_get(b, keys[i].name, vb, sizeof vb))
            continue;
        if (strcmp(va, vb)) {
            snprintf(buf, len, "a different run (its config.ini has %s = %.200s, this run %.200s)", keys[i].name,
                     va, vb);
            return true;
        }
    }
    return false;
}

static bool exists_in(const char *dir, const char *name)
{
    char path[SR_CONFIG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* Rank 0: why cfg's run must not write into run.dir ("" when it may). */
static void run_dir_conflict(const sr_config *cfg, char *why, size_t len)
{
    why[0] = '\0';
    /* train.resume=auto with checkpoints: the resume protocol decides */
    if (!strcmp(cfg->train_resume, "auto") && exists_in(cfg->run_dir, "checkpoints")) return;
    if (exists_in(cfg->run_dir, "model.h5")) {
        snprintf(why, len, "a finished run (model.h5)");
        return;
    }
    if (!exists_in(cfg->run_dir, "config.ini")) return;
    char path[SR_CONFIG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/config.ini", cfg->run_dir);
    sr_config old;
    sr_error e;
    sr_error_clear(&e);
    sr_config_defaults(&old);
    if (sr_config_load_file(&old, path, &e) != SR_OK) snprintf(why, len, "a run whose config.ini does not load");
    else config_differs(&old, cfg, why, len);
}

/* Collective: refuse (SR_ERR_CONFIG, agreed) or, with --force, clear the
 * old run's results so nothing stale survives a failed new run. */
static sr_status check_run_dir(const sr_comm *c, const sr_config *cfg, int force, sr_error *err)
{
    struct stat sb;
    memset(&sb, 0, sizeof sb);
    errno = 0;
    const int missing = c->rank == 0 ? stat(cfg->run_dir, &sb) : 0;
    if (c->rank == 0 && !missing && !S_ISDIR(sb.st_mode)) {
        /* Caught here, or the first write into it says "does not exist". */
        sr_error_set(err, SR_ERR_CONFIG, __FILE__, __LINE__, "run.dir %s is a file, not a directory", cfg->run_dir);
    } else if (c->rank == 0 && missing && errno == ENOTDIR) {
        sr_error_set(err, SR_ERR_CONFIG, __FILE__, __LINE__, "run.dir %s: a parent of it is a file, not a directory",
                     cfg->run_dir);
    } else if (c->rank == 0) {
        char why[640];
        run_dir_conflict(cfg, why, sizeof why);
        if (why[0] && !force)
            sr_error_set(err, SR_ERR_CONFIG, __FILE__, __LINE__,
                         "run.dir %s holds %s; choose another run.dir (--set run.dir=...), "
                         "continue it with --set train.resume=auto, or replace it with --force",
                         cfg->run_dir, why);
        else if (why[0]) {
            fprintf(stderr, "softrec: warning: --force: replacing %s in %s\n", why, cfg->run_dir);
            const char *stale[] = {"model.h5", "result.json"};
            for (size_t i = 0; i < 2; i++) {
                char path[SR_CONFIG_PATH_MAX + 64];
                snprintf(path, sizeof path, "%s/%s", cfg->run_dir, stale[i]);
                remove(path);
            }
        }
    }
    return sr_comm_agree(c, err);
}

/* A training run's result is its test metrics: without test users it
 * would report zeros over 0 users and exit 0. Checked here, not in
 * sr_trainer_create, because eval --split valid, export and recommend open
 * trainers on datasets without a test split. The meta is the same on
 * every rank, so every rank fails alike. */
static sr_status check_test_split(sr_trainer *t, sr_error *err)
{
    if (sr_trainer_meta(t)->nnz[SR_SPLIT_TEST] > 0) return SR_OK;
    const char *path = sr_trainer_config(t)->data_path;
    sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__, "%s: the test split is empty (nothing to report)", path);
    return err->code;
}

/* Rank 0, at the start: the keys that differ from the defaults on one line
 * (every key goes to run.dir/config.ini). */
static void print_config_line(const sr_comm *c, const sr_config *cfg)
{
    sr_config def;
    sr_config_defaults(&def);
    size_t n = 0;
    const sr_config_key *keys = sr_config_table(&n);
    fprintf(stderr, "softrec: resolved config (%d ranks; every key in %s/config.ini):", c->size, cfg->run_dir);
    for (size_t i = 0; i < n; i++) {
        char v[SR_CONFIG_PATH_MAX], d[SR_CONFIG_PATH_MAX];
        if (sr_config_get(cfg, keys[i].name, v, sizeof v) && sr_config_get(&def, keys[i].name, d, sizeof d) &&
            strcmp(v, d))
            fprintf(stderr, " %s=%s", keys[i].name, v);
    }
    fputc('\n', stderr);
}

typedef struct train_opts {
    sr_cli_list sources; /* --config FILE and --set key=value, in command-line order */
    int force;           /* replace what run.dir holds */
} train_opts;

/* Defaults, then every --config and --set in command-line order (a later
 * one wins). */
static sr_status apply_sources(sr_config *cfg, const sr_cli_list *l, sr_error *err)
{
    for (int i = 0; i < l->n; i++) {
        if (!strcmp(l->items[i].opt, "config")) SR_TRY(sr_config_load_file(cfg, l->items[i].val, err));
        else SR_TRY(sr_config_set_assignment(cfg, l->items[i].val, err));
    }
    return SR_OK;
}

/* One run of cfg in cfg->run_dir: the run.dir check, training, the result
 * row; a signal stop is SR_STOPPED (exit 11) after its checkpoint. The
 * guard (signals, watchdog) lives from before the dataset is read until the
 * trainer is gone: a rank stopped in start-up (dataset load, model create,
 * their collectives) or in the finish ends the job like one stopped in a step. */
static sr_status train_once(const sr_comm *c, const sr_config *cfg, int force, sr_error *err)
{
    SR_TRY(check_run_dir(c, cfg, force, err));
    if (c->rank == 0) print_config_line(c, cfg);
    sr_fault fault;
    SR_TRY(sr_fault_from_env(&fault, err));
    sr_guard *g = NULL;
    if (sr_guard_create(&g, c, cfg->train_watchdog_factor, cfg->train_watchdog_min_seconds, err) != SR_OK)
        sr_comm_abort(c, err);
    sr_guard_watch(g, SR_GUARD_START, 0);
    sr_trainer *t = NULL;
    sr_fit_result res;
    sr_status st = sr_fault_hit(&fault, SR_FAULT_START, c->rank, "start-up", err);
    if (st == SR_OK) st = sr_trainer_create(&t, c, cfg, err);
    if (st == SR_OK) st = check_test_split(t, err);
    if (st == SR_OK) st = sr_trainer_fit(t, g, &res, err);
    sr_trainer_destroy(&t);
    sr_guard_destroy(&g);
    if (st != SR_OK) return st;
    if (res.stopped) /* preempted: the checkpoint is committed; no result row; exit code 11 */
        SR_FAIL(err, SR_STOPPED, "stopped by signal %d, checkpoint committed; resume with --set train.resume=auto "
                "(run.dir %s)", res.stopped, cfg->run_dir);
    if (c->rank == 0) print_result(c, cfg, &res);
    return SR_OK;
}

/* ---- train.seeds: one run per seed, then mean, sd and a 95% CI ----------- */

#define SEEDS_MAX 256

/* "1,2,3" into seeds[0..*n): integers in [0, 2^63), no empty entries, no
 * repeats, at least 2. */
static sr_status parse_seeds(const char *text, int64_t *seeds, int *n, sr_error *err)
{
    *n = 0;
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t')) p++, len--;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        if (!len)
            SR_FAIL(err, SR_ERR_CONFIG, "train.seeds = '%s': empty seed (want comma-separated integers, e.g. 1,2,3)",
                    text);
        char tok[32] = "";
        int ok = len < sizeof tok;
        if (ok) memcpy(tok, p, len), tok[len] = '\0';
        char *end = NULL;
        errno = 0;
        long long v = ok ? strtoll(tok, &end, 10) : -1;
        if (!ok || errno || *end || v < 0 || tok[0] == '+' || tok[0] == '-')
            SR_FAIL(err, SR_ERR_CONFIG, "train.seeds = '%s': '%.*s' is not a seed (an integer >= 0)", text,
                    (int)(len > 40 ? 40 : len), p);
        for (int i = 0; i < *n; i++)
            if (seeds[i] == v) SR_FAIL(err, SR_ERR_CONFIG, "train.seeds = '%s': seed %lld appears twice", text, v);
        if (*n == SEEDS_MAX) SR_FAIL(err, SR_ERR_CONFIG, "train.seeds = '%s': more than %d seeds", text, SEEDS_MAX);
        seeds[(*n)++] = v;
        if (!comma) break;
        p = comma + 1;
    }
    if (*n < 2)
        SR_FAIL(err, SR_ERR_CONFIG, "train.seeds = '%s': want at least 2 seeds (one run: train.seed)", text);
    return SR_OK;
}

/* The two-sided 95% quantile of Student's t with df degrees of freedom
 * (the normal's beyond 30). */
static double t95(int df)
{
    static const double q[31] = {0,        12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624,
                                 2.306004, 2.262157,  2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450,
                                 2.119905, 2.109816,  2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658,
                                 2.063899, 2.059539,  2.055529, 2.051831, 2.048407, 2.045230, 2.042272};
    return df >= 1 && df <= 30 ? q[df] : 1.959964;
}

/* {"metric": {"mean", "sd", "ci95": [lo, hi], "n"}} over runs[*][section],
 * for every "name@K" every run has as a number. */
static json_t *seed_stats(json_t *runs, const char *section)
{
    json_t *out = json_object();
    json_t *first = json_object_get(json_array_get(runs, 0), section);
    size_t n = json_array_size(runs);
    const char *key;
    json_t *v0;
    json_object_foreach(first, key, v0)
    {
        if (!strchr(key, '@') || !json_is_number(v0)) continue;
        double sum = 0, ss = 0;
        size_t i;
        for (i = 0; i < n; i++) {
            json_t *v = json_object_get(json_object_get(json_array_get(runs, i), section), key);
            if (!json_is_number(v)) break;
            sum += json_number_value(v);
        }
        if (i < n) continue;
        double mean = sum / (double)n;
        for (i = 0; i < n; i++) {
            double d = json_number_value(json_object_get(json_object_get(json_array_get(runs, i), section), key)) - mean;
            ss += d * d;
        }
        double sd = sqrt(ss / (double)(n - 1)), h = t95((int)n - 1) * sd / sqrt((double)n);
        json_object_set_new(out, key,
                            json_pack("{s:f, s:f, s:[f, f], s:I}", "mean", mean, "sd", sd, "ci95", mean - h, mean + h,
                                      "n", (json_int_t)n));
    }
    return out;
}

/* The human table on stderr: mean ± sd and the 95% CI per metric. */
static void print_seed_summary(json_t *sum, const char *seeds, FILE *out)
{
    size_t n = json_array_size(json_object_get(sum, "runs"));
    fprintf(out, "\nsoftrec: seeds %s: %zu runs; mean ± sd and 95%% CI (Student t, %zu df) per metric\n", seeds, n,
            n - 1);
    const char *sections[2] = {"test", "best_valid"};
    for (int s = 0; s < 2; s++) {
        json_t *sec = json_object_get(sum, sections[s]);
        if (!json_object_size(sec)) continue;
        fprintf(out, "  %s\n", sections[s]);
        const char *key;
        json_t *st;
        json_object_foreach(sec, key, st)
        {
            json_t *ci = json_object_get(st, "ci95");
            fprintf(out, "    %-15s %.4f ± %.4f   [%.4f, %.4f]\n", key, json_number_value(json_object_get(st, "mean")),
                    json_number_value(json_object_get(st, "sd")), json_number_value(json_array_get(ci, 0)),
                    json_number_value(json_array_get(ci, 1)));
        }
    }
    fprintf(out, "  files   %s/{seeds.json,seed-<s>/}\n\n", json_string_value(json_object_get(sum, "run_dir")));
    fflush(out);
}

/* Rank 0: the summary of the finished seeds as the last stdout line and as
 * run.dir/seeds.json; the table on stderr. */
static sr_status write_seed_summary(const sr_config *cfg, const int64_t *seeds, int n, json_t *runs, sr_error *err)
{
    json_t *sum = json_object(), *js = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(js, json_integer(seeds[i]));
    json_object_set_new(sum, "seeds", js);
    json_object_set(sum, "runs", runs);
    json_object_set_new(sum, "test", seed_stats(runs, "test"));
    json_object_set_new(sum, "best_valid", seed_stats(runs, "best_valid"));
    json_object_set_new(sum, "t95", json_real(t95(n - 1)));
    json_object_set_new(sum, "run_dir", json_string(cfg->run_dir));
    json_object_set_new(sum, "version", json_string(SOFTREC_VERSION));
    print_seed_summary(sum, cfg->train_seeds, stderr);
    char *txt = json_dumps(sum, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(sum);
    if (!txt) SR_FAIL(err, SR_ERR_NOMEM, "train.seeds: cannot format the summary (out of memory)");
    printf("%s\n", txt);
    fflush(stdout);
    char path[SR_CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/seeds.json", cfg->run_dir);
    FILE *f = fopen(path, "w");
    int bad = !f || fprintf(f, "%s\n", txt) < 0;
    if (f && fclose(f)) bad = 1;
    free(txt);
    if (bad) SR_FAIL(err, SR_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    return SR_OK;
}

/* Rank 0: run.dir/result.json of a finished seed appended to runs. */
static sr_status append_seed_row(const sr_config *one, json_t *runs, sr_error *err)
{
    char path[SR_CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/result.json", one->run_dir);
    json_error_t je;
    json_t *row = json_load_file(path, 0, &je);
    if (!json_is_object(row)) {
        json_decref(row);
        SR_FAIL(err, SR_ERR_IO, "%s: cannot read the seed's result row: %s", path, je.text);
    }
    json_array_append_new(runs, row);
    return SR_OK;
}

/* Collective: cfg once per seed of train.seeds, each in run.dir/seed-<s>
 * with train.seed = s; the first failing seed ends the sweep with its error. */
static sr_status train_seeds(const sr_comm *c, const sr_config *cfg, int force, sr_error *err)
{
    int64_t seeds[SEEDS_MAX];
    int n = 0;
    (void)parse_seeds(cfg->train_seeds, seeds, &n, err);
    if (err->code == SR_OK && strlen(cfg->run_dir) + 32 >= SR_CONFIG_PATH_MAX)
        sr_error_set(err, SR_ERR_CONFIG, __FILE__, __LINE__, "train.seeds: run.dir '%.80s...' is too long", cfg->run_dir);
    SR_TRY(sr_comm_agree(c, err));
    json_t *runs = json_array();
    sr_status st = SR_OK;
    for (int i = 0; i < n && st == SR_OK; i++) {
        sr_config one = *cfg;
        one.train_seed = seeds[i];
        one.train_seeds[0] = '\0';
        if (snprintf(one.run_dir, sizeof one.run_dir, "%s/seed-%lld", cfg->run_dir, (long long)seeds[i]) >=
            (int)sizeof one.run_dir) /* checked above: cannot happen */
            SR_FAIL(err, SR_ERR_INTERNAL, "train.seeds: run.dir too long");
        if (c->rank == 0) fprintf(stderr, "softrec: seeds: seed %lld (%d of %d), run.dir %s\n", (long long)seeds[i], i + 1, n, one.run_dir);
        st = train_once(c, &one, force, err);
        if (st != SR_OK) { /* SR_STOPPED: preempted, train.resume=auto continues the sweep */
            if (c->rank == 0 && st != SR_STOPPED)
                fprintf(stderr, "softrec: seeds: seed %lld failed; the sweep stops (%d of %d seeds finished)\n",
                        (long long)seeds[i], i, n);
            break;
        }
        if (c->rank == 0) (void)append_seed_row(&one, runs, err);
        st = sr_comm_agree(c, err);
    }
    if (st == SR_OK && c->rank == 0) (void)write_seed_summary(cfg, seeds, n, runs, err);
    json_decref(runs);
    return st == SR_OK ? sr_comm_agree(c, err) : st;
}

static sr_status train_run(const sr_cli_ctx *ctx, void *opts, sr_error *err)
{
    const sr_comm *c = ctx->comm;
    const train_opts *o = opts;
    sr_config cfg;
    sr_config_defaults(&cfg);
    (void)apply_sources(&cfg, &o->sources, err);
    SR_TRY(sr_comm_agree(c, err));
    if (cfg.train_seeds[0]) return train_seeds(c, &cfg, o->force, err);
    return train_once(c, &cfg, o->force, err);
}

sr_status sr_cli_open_checkpoint(const sr_comm *c, const char *ckpt, const char *dataset, const sr_cli_list *sets,
                                 sr_config *cfg, sr_trainer **out, sr_error *err)
{
    *out = NULL;
    /* The checkpoint carries the config it was trained with; read its
     * attributes first (no tables), then apply the overrides. */
    sr_config_defaults(cfg);
    sr_ckpt_info info;
    memset(&info, 0, sizeof info);
    sr_status st = sr_ckpt_read_info(c, ckpt, &info, err); /* the load below checks the digests */
    if (st == SR_OK && info.config_ini) st = sr_config_load_string(cfg, info.config_ini, ckpt, err);
    sr_ckpt_info_free(&info);
    if (st == SR_OK && dataset) st = sr_config_set(cfg, "data.path", dataset, "--dataset", err);
    for (int i = 0; sets && i < sets->n && st == SR_OK; i++) st = sr_config_set_assignment(cfg, sets->items[i].val, err);
    cfg->train_init[0] = '\0'; /* the model comes from the checkpoint, never from train.init */
    SR_TRY(sr_comm_agree(c, err));
    sr_trainer *t = NULL;
    SR_TRY(sr_trainer_create(&t, c, cfg, err));
    if ((st = sr_trainer_load(t, ckpt, err)) != SR_OK) {
        sr_trainer_destroy(&t);
        return st;
    }
    *out = t;
    return SR_OK;
}

typedef struct eval_opts {
    const char *ckpt, *dataset, *split_name;
    sr_cli_list sets;
    int split; /* 1 valid, 2 test */
} eval_opts;

static sr_status eval_check(void *opts, sr_error *err)
{
    eval_opts *o = opts;
    if (!strcmp(o->split_name, "valid")) o->split = 1;
    else if (!strcmp(o->split_name, "test")) o->split = 2;
    else SR_FAIL(err, SR_ERR_USAGE, "eval: --split must be valid or test, not '%s'", o->split_name);
    return SR_OK;
}

static sr_status eval_run(const sr_cli_ctx *ctx, void *opts, sr_error *err)
{
    const sr_comm *c = ctx->comm;
    const eval_opts *o = opts;
    sr_config cfg;
    sr_trainer *t = NULL;
    SR_TRY(sr_cli_open_checkpoint(c, o->ckpt, o->dataset, &o->sets, &cfg, &t, err));
    sr_eval_result res;
    sr_status st = sr_trainer_evaluate(t, o->split, &res, err);
    sr_trainer_destroy(&t);
    if (st != SR_OK) return st;
    if (c->rank == 0) {
        json_t *row = json_object();
        json_object_set_new(row, o->split == 1 ? "valid" : "test", sr_eval_result_to_json(&res));
        json_object_set_new(row, "checkpoint", json_string(o->ckpt));
        json_object_set_new(row, "dataset", json_string(cfg.data_path));
        json_object_set_new(row, "ranks", json_integer(c->size));
        json_object_set_new(row, "seconds", json_real(round(res.seconds * 1e3) / 1e3));
        char *txt = json_dumps(row, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8));
        json_decref(row);
        if (txt) printf("%s\n", txt);
        free(txt);
        fflush(stdout);
    }
    return SR_OK;
}

/* ---- the descriptors ------------------------------------------------------- */

static const sr_cli_option train_options[] = {
    SR_CLI_LIST_OPT("config", train_opts, sources),
    SR_CLI_LIST_OPT("set", train_opts, sources),
    SR_CLI_FLAG_OPT("force", train_opts, force, 1),
    SR_CLI_END,
};

const sr_cli_command sr_cli_train = {
    .name = "train",
    .summary = "train a model (--config FILE.ini, --set key=value)",
    .usage = "usage: softrec train [--config FILE.ini] [--set key=value]... [--force]\n"
             "  Trains the model on data.path. --config and --set apply in command-line order\n"
             "  after the defaults (a later one wins); 'softrec help config' lists every key.\n"
             "  Writes run.dir/{config.ini,metrics.jsonl,model.h5,result.json} and checkpoints/;\n"
             "  the last stdout line is one JSON object with the test metrics (also result.json),\n"
             "  a summary table goes to stderr.\n"
             "  --config FILE.ini   INI file of keys ([train] epochs = 10 sets train.epochs)\n"
             "  --set key=value     one key (repeatable)\n"
             "  --force             replace what run.dir holds: a finished run (model.h5) or a run\n"
             "                      with other semantic keys is refused without it (unless\n"
             "                      train.resume=auto continues it from its checkpoints)\n",
    .options = train_options,
    .opts_size = sizeof(train_opts),
    .needs_mpi = true,
    .run = train_run,
};

static void eval_init(void *opts) { ((eval_opts *)opts)->split_name = "test"; }

static const sr_cli_option eval_options[] = {
    SR_CLI_STR_OPT("checkpoint", eval_opts, ckpt, true),
    SR_CLI_STR_OPT("dataset", eval_opts, dataset, false),
    SR_CLI_STR_OPT("split", eval_opts, split_name, false),
    SR_CLI_LIST_OPT("set", eval_opts, sets),
    SR_CLI_END,
};

const sr_cli_command sr_cli_eval = {
    .name = "eval",
    .summary = "full-ranking metrics of a checkpoint",
    .usage = "usage: softrec eval --checkpoint MODEL.h5 [--dataset DATA.h5] [--split valid|test] [--set key=value]...\n"
             "  Full-ranking metrics of a saved model (model.h5 or a checkpoint), built from the\n"
             "  config stored in it; prints one JSON object.\n"
             "  --checkpoint FILE   the model (required)\n"
             "  --dataset PATH      dataset (default: the data.path stored in the checkpoint)\n"
             "  --split S           valid or test (default test)\n"
             "  --set key=value     config override on top of the stored config (repeatable)\n",
    .options = eval_options,
    .opts_size = sizeof(eval_opts),
    .needs_mpi = true,
    .init = eval_init,
    .check = eval_check,
    .run = eval_run,
};
