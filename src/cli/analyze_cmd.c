/* analyze_cmd.c: "softrec analyze lse-bias|jacobian" (cli.h).
 *
 * Both load a trained model from a checkpoint (its stored config and
 * dataset, --set overrides on top), draw a sample of users with a seeded
 * stream shared by all ranks (so the sample does not depend on the rank
 * count), build their queries as the loss sees them, and run a collective
 * kernel over the sharded catalogue:
 *   lse-bias   exact log Z against the SSM and NCE estimates for a list of k
 *              with R repetitions each (analysis/lse_bias.h): bias, variance,
 *              MSE per k;
 *   jacobian   spectral norm of the prediction map's Jacobian at the model's
 *              logits for softmax / sparsemax / entmax / rankmax, with
 *              support sizes (analysis/jacobian.h).
 * Output on rank 0: a Markdown table on stdout, then one JSON object as the
 * last stdout line (also written to --out FILE when given).
 */
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/jacobian.h"
#include "analysis/lse_bias.h"
#include "cli/cli.h"
#include "core/config.h"
#include "core/rng.h"
#include "loss/loss.h"
#include "loss/sampler.h"
#include "train/train.h"

#define MAX_LIST 32

typedef struct analyze_opts {
    const char *what; /* "lse-bias" | "jacobian" */
    const char *ckpt, *dataset, *out;
    sr_cli_list sets;
    int64_t users, seed, reps;
    const char *k_list;
    int64_t ks[MAX_LIST];
    int nk;
    const char *proposal; /* NULL: the checkpoint's loss.proposal */
    double beta;          /* NAN: the checkpoint's loss.proposal_beta */
    /* jacobian */
    const char *map_list;
    sr_loss_kind maps[4];
    int nmaps;
    double alpha, tol;
    int64_t iters;
} analyze_opts;

static sr_status parse_list(const char *s, int64_t *v, int *n, sr_error *err)
{
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long long x = strtoll(p, &end, 10);
        if (end == p || x < 1 || *n >= MAX_LIST || (*end && *end != ','))
            SR_FAIL(err, SR_ERR_USAGE, "analyze lse-bias: --k wants up to %d positive integers separated by commas, not '%s'",
                    MAX_LIST, s);
        v[(*n)++] = x;
        p = *end ? end + 1 : end;
    }
    if (*n == 0) SR_FAIL(err, SR_ERR_USAGE, "analyze lse-bias: --k is empty");
    return SR_OK;
}

static sr_status parse_maps(const char *s, analyze_opts *o, sr_error *err)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    o->nmaps = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        sr_loss_kind k;
        if (!sr_loss_kind_parse(tok, &k) ||
            (k != SR_LOSS_SOFTMAX && k != SR_LOSS_SPARSEMAX && k != SR_LOSS_ENTMAX && k != SR_LOSS_RANKMAX) ||
            o->nmaps == 4)
            SR_FAIL(err, SR_ERR_USAGE, "analyze jacobian: --maps takes softmax,sparsemax,entmax,rankmax, not '%s'", s);
        o->maps[o->nmaps++] = k;
    }
    if (o->nmaps == 0) SR_FAIL(err, SR_ERR_USAGE, "analyze jacobian: --maps is empty");
    return SR_OK;
}

static sr_status lse_bias_check(void *opts, sr_error *err)
{
    analyze_opts *o = opts;
    if (o->k_list) SR_TRY(parse_list(o->k_list, o->ks, &o->nk, err));
    if (o->proposal && strcmp(o->proposal, "uniform") && strcmp(o->proposal, "popularity"))
        SR_FAIL(err, SR_ERR_USAGE, "analyze lse-bias: --proposal must be uniform or popularity, not '%s'", o->proposal);
    if (!isnan(o->beta) && (o->beta < 0 || o->beta > 10))
        SR_FAIL(err, SR_ERR_USAGE, "analyze lse-bias: --beta wants a number in [0, 10], not %g", o->beta);
    return SR_OK;
}

static sr_status jacobian_check(void *opts, sr_error *err)
{
    analyze_opts *o = opts;
    if (o->map_list) SR_TRY(parse_maps(o->map_list, o, err));
    if (!(o->alpha > 1 && o->alpha <= 10))
        SR_FAIL(err, SR_ERR_USAGE, "analyze jacobian: --alpha wants a number in (1, 10], not %g", o->alpha);
    if (!(o->tol > 0)) SR_FAIL(err, SR_ERR_USAGE, "analyze jacobian: --tol wants a number > 0, not %g", o->tol);
    return SR_OK;
}

/* n distinct users out of U, the same on every rank (replicated stream),
 * ascending. Partial Fisher-Yates over an index array of U. */
static sr_status sample_users(int64_t U, int64_t n, uint64_t seed, int64_t *out, sr_error *err)
{
    int64_t *idx = malloc((size_t)(U > 0 ? U : 1) * sizeof *idx);
    if (!idx) SR_FAIL(err, SR_ERR_NOMEM, "analyze: out of memory for %lld user ids", (long long)U);
    for (int64_t i = 0; i < U; i++) idx[i] = i;
    sr_rng r;
    sr_rng_init(&r, seed, 0xFFFFFFFFu, SR_STREAM_SPLIT);
    for (int64_t i = 0; i < n; i++) {
        int64_t j = i + (int64_t)sr_rng_below(&r, (uint64_t)(U - i));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    for (int64_t i = 0; i < n; i++) out[i] = idx[i];
    free(idx);
    for (int64_t i = 1; i < n; i++) /* insertion sort: n is small */
        for (int64_t j = i; j > 0 && out[j - 1] > out[j]; j--) {
            int64_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return SR_OK;
}

static void emit(const sr_comm *c, const analyze_opts *o, json_t *res)
{
    if (c->rank == 0) {
        char *txt = json_dumps(res, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8));
        if (txt) {
            printf("%s\n", txt);
            fflush(stdout);
            if (o->out) {
                FILE *f = fopen(o->out, "w");
                if (f) {
                    fprintf(f, "%s\n", txt);
                    fclose(f);
                } else {
                    fprintf(stderr, "softrec: warning: cannot write %s\n", o->out);
                }
            }
            free(txt);
        }
    }
    json_decref(res);
}

static sr_status run_lse_bias(const sr_comm *c, const analyze_opts *o, sr_trainer *t, const float *q,
                              int64_t b, sr_error *err)
{
    const sr_config *cfg = sr_trainer_config(t);
    const char *prop = o->proposal ? o->proposal
                       : !strcmp(cfg->loss_proposal, "popularity") ? "popularity" : "uniform";
    const double beta = !isnan(o->beta) ? o->beta : cfg->loss_proposal_beta;
    const sr_shard *map;
    int64_t n_local;
    const float *v = sr_trainer_item_rows(t, &map, &n_local);
    sr_mem mem;
    sr_mem_init(&mem, 0);
    sr_sampler *smp = NULL;
    (void)sr_sampler_create(&smp, map, c->rank,
                                     !strcmp(prop, "popularity") ? SR_PROPOSAL_POPULARITY : SR_PROPOSAL_UNIFORM,
                                     sr_trainer_popularity(t), beta, &mem, err);
    SR_TRY(sr_comm_agree(c, err)); /* same inputs everywhere, but OOM is local */
    double *logz = malloc((size_t)b * sizeof *logz);
    sr_lse_bias_row rows[MAX_LIST];
    if (!logz) sr_comm_abort(c, &(sr_error){SR_ERR_NOMEM, __FILE__, __LINE__, "out of memory"});
    sr_status st = sr_lse_bias_run(c, map, smp, q, b, cfg->model_dim, v, o->ks, o->nk, o->reps, (uint64_t)o->seed, &mem,
                         logz, rows, err);
    /* The expected-gradient bias needs two repetitions for its unbiased
     * squared norm; with one the log Z table is all there is. */
    sr_lse_grad_row grows[MAX_LIST];
    sr_lse_grad_summary gsum;
    const bool grad = o->reps >= 2;
    if (st == SR_OK && grad)
        st = sr_lse_grad_bias_run(c, map, smp, q, b, cfg->model_dim, v, o->ks, o->nk, o->reps, 0,
                                  cfg->loss_remove_accidental_hits, (uint64_t)o->seed, &mem, &gsum, grows, err);
    sr_sampler_destroy(&smp);
    if (st != SR_OK) {
        free(logz);
        return st;
    }
    double mean_logz = 0;
    for (int64_t i = 0; i < b; i++) mean_logz += logz[i] / (double)b;
    free(logz);
    if (c->rank == 0) {
        printf("# lse-bias: %lld users, %lld items, proposal %s (beta %.2f), %lld repetitions, mean log Z %.4f\n\n",
               (long long)b, (long long)map->n, prop, beta, (long long)o->reps, mean_logz);
        printf("| k | SSM bias | SSM var | SSM MSE | NCE bias | NCE var | NCE MSE |\n");
        printf("|---:|---:|---:|---:|---:|---:|---:|\n");
        for (int i = 0; i < o->nk; i++)
            printf("| %lld | %.5f | %.5f | %.5f | %.5f | %.5f | %.5f |\n", (long long)rows[i].k, rows[i].ssm_bias,
                   rows[i].ssm_var, rows[i].ssm_mse, rows[i].nce_bias, rows[i].nce_var, rows[i].nce_mse);
        printf("\n");
        if (grad) {
            printf("# expected-gradient bias at the exact fixed point (y ~ P), accidental hits %s: RMS over users of\n"
                   "# ||E g|| relative to the exact gradient's RMS norm %.4f; NCE k -> inf limit %.5f\n"
                   "# SSM SE: spread of %lld independent groups of repetitions (conservative; nan with one)\n\n",
                   cfg->loss_remove_accidental_hits ? "removed" : "kept", sqrt(gsum.grad_ms),
                   sqrt(fmax(gsum.nce_lim_rel2, 0)), (long long)sr_lse_grad_groups(o->reps));
            printf("| k | SSM rel. bias | SSM rel^2 +- SE | SSM plug-in | NCE rel. bias | NCE, logits - log Z |\n");
            printf("|---:|---:|---:|---:|---:|---:|\n");
            for (int i = 0; i < o->nk; i++)
                printf("| %lld | %.5f | %.2e +- %.1e | %.5f | %.5f | %.5f |\n", (long long)grows[i].k,
                       sqrt(fmax(grows[i].ssm_rel2, 0)), grows[i].ssm_rel2, grows[i].ssm_rel2_se,
                       sqrt(fmax(grows[i].ssm_naive_rel2, 0)), sqrt(fmax(grows[i].nce_rel2, 0)),
                       sqrt(fmax(grows[i].nce_sn_rel2, 0)));
            printf("\n");
        }
    }
    json_t *res = json_object(), *arr = json_array();
    for (int i = 0; i < o->nk; i++) {
        json_t *r = json_object();
        json_object_set_new(r, "k", json_integer(rows[i].k));
        json_object_set_new(r, "ssm_bias", json_real(rows[i].ssm_bias));
        json_object_set_new(r, "ssm_var", json_real(rows[i].ssm_var));
        json_object_set_new(r, "ssm_mse", json_real(rows[i].ssm_mse));
        json_object_set_new(r, "nce_bias", json_real(rows[i].nce_bias));
        json_object_set_new(r, "nce_var", json_real(rows[i].nce_var));
        json_object_set_new(r, "nce_mse", json_real(rows[i].nce_mse));
        json_array_append_new(arr, r);
    }
    json_object_set_new(res, "analysis", json_string("lse-bias"));
    json_object_set_new(res, "checkpoint", json_string(o->ckpt));
    json_object_set_new(res, "dataset", json_string(cfg->data_path));
    json_object_set_new(res, "users", json_integer(b));
    json_object_set_new(res, "items", json_integer(map->n));
    json_object_set_new(res, "proposal", json_string(prop));
    json_object_set_new(res, "beta", json_real(beta));
    json_object_set_new(res, "reps", json_integer(o->reps));
    json_object_set_new(res, "seed", json_integer(o->seed));
    json_object_set_new(res, "ranks", json_integer(c->size));
    json_object_set_new(res, "mean_logz", json_real(mean_logz));
    json_object_set_new(res, "rows", arr);
    if (grad) {
        json_t *g = json_object(), *ga = json_array();
        json_object_set_new(g, "remove_accidental_hits", json_boolean(cfg->loss_remove_accidental_hits));
        json_object_set_new(g, "grad_ms", json_real(gsum.grad_ms));
        json_object_set_new(g, "nce_lim_rel2", json_real(gsum.nce_lim_rel2));
        json_object_set_new(g, "ssm_se_groups", json_integer(sr_lse_grad_groups(o->reps)));
        for (int i = 0; i < o->nk; i++) {
            json_t *r = json_object();
            json_object_set_new(r, "k", json_integer(grows[i].k));
            json_object_set_new(r, "ssm_rel2", json_real(grows[i].ssm_rel2));
            /* NAN (one group) has no JSON number: write null, not a missing key. */
            double se = grows[i].ssm_rel2_se;
            json_object_set_new(r, "ssm_rel2_se", isnan(se) ? json_null() : json_real(se));
            json_object_set_new(r, "ssm_naive_rel2", json_real(grows[i].ssm_naive_rel2));
            json_object_set_new(r, "nce_rel2", json_real(grows[i].nce_rel2));
            json_object_set_new(r, "nce_sn_rel2", json_real(grows[i].nce_sn_rel2));
            json_array_append_new(ga, r);
        }
        json_object_set_new(g, "rows", ga);
        json_object_set_new(res, "grad_bias", g);
    }
    emit(c, o, res);
    return SR_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static sr_status run_jacobian(const sr_comm *c, const analyze_opts *o, sr_trainer *t, const float *q,
                              const int64_t *users, int64_t b, sr_error *err)
{
    const sr_config *cfg = sr_trainer_config(t);
    const sr_shard *map;
    int64_t n_local;
    int64_t *targets = malloc((size_t)(b > 0 ? b : 1) * sizeof *targets);
    double *norm = malloc((size_t)(b > 0 ? b : 1) * sizeof *norm);
    int64_t *support = malloc((size_t)(b > 0 ? b : 1) * sizeof *support);
    int64_t *iters = malloc((size_t)(b > 0 ? b : 1) * sizeof *iters);
    if (!targets || !norm || !support || !iters)
        sr_comm_abort(c, &(sr_error){SR_ERR_NOMEM, __FILE__, __LINE__, "out of memory"});
    sr_status st = sr_trainer_user_targets(t, users, b, targets, err);
    const float *v = sr_trainer_item_rows(t, &map, &n_local);
    /* Rankmax needs a target: users without any item are left out of it. */
    int64_t bt = 0;
    for (int64_t i = 0; i < b; i++) bt += targets[i] >= 0;
    sr_mem mem;
    sr_mem_init(&mem, 0);
    json_t *res = json_object(), *arr = json_array();
    if (c->rank == 0 && st == SR_OK) {
        printf("# jacobian: %lld users, %lld items, checkpoint %s\n\n", (long long)b, (long long)map->n, o->ckpt);
        printf("| map | users | mean ||J|| | min | max | mean support | median support | max support | mean iters |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    }
    for (int m = 0; m < o->nmaps && st == SR_OK; m++) {
        sr_jacobian_opts jo = {o->maps[m], o->alpha, 1, o->iters, o->tol, cfg->loss_bisect_tol, 0,
                               (uint64_t)o->seed, &mem};
        /* Rankmax: the users with a target, packed first. */
        const float *qm = q;
        int64_t bm = b;
        float *qp = NULL;
        int64_t *tp = NULL;
        if (o->maps[m] == SR_LOSS_RANKMAX && bt < b) {
            qp = malloc((size_t)(bt * cfg->model_dim + 1) * sizeof *qp);
            tp = malloc((size_t)(bt + 1) * sizeof *tp);
            if (!qp || !tp) sr_comm_abort(c, &(sr_error){SR_ERR_NOMEM, __FILE__, __LINE__, "out of memory"});
            int64_t w = 0;
            for (int64_t i = 0; i < b; i++)
                if (targets[i] >= 0) {
                    memcpy(qp + w * cfg->model_dim, q + i * cfg->model_dim, (size_t)cfg->model_dim * sizeof *qp);
                    tp[w++] = targets[i];
                }
            qm = qp;
            bm = bt;
        }
        if (bm > 0)
            st = sr_jacobian_norms(c, qm, bm, cfg->model_dim, v, n_local, map,
                                   o->maps[m] == SR_LOSS_RANKMAX ? (tp ? tp : targets) : NULL, &jo, norm, support,
                                   iters, err);
        free(qp);
        free(tp);
        if (st != SR_OK || bm == 0) continue;
        double mean = 0, lo = norm[0], hi = norm[0], msup = 0, mit = 0;
        for (int64_t i = 0; i < bm; i++) {
            mean += norm[i] / (double)bm;
            lo = norm[i] < lo ? norm[i] : lo;
            hi = norm[i] > hi ? norm[i] : hi;
            msup += (double)support[i] / (double)bm;
            mit += (double)iters[i] / (double)bm;
        }
        qsort(support, (size_t)bm, sizeof *support, cmp_i64);
        const char *name = sr_loss_kind_name(o->maps[m]);
        char label[48];
        if (o->maps[m] == SR_LOSS_ENTMAX) snprintf(label, sizeof label, "entmax-%g", o->alpha);
        else snprintf(label, sizeof label, "%s", name);
        if (c->rank == 0)
            printf("| %s | %lld | %.4f | %.4f | %.4f | %.1f | %lld | %lld | %.1f |\n", label, (long long)bm, mean,
                   lo, hi, msup,
                   (long long)support[bm / 2], (long long)support[bm - 1], mit);
        json_t *r = json_object();
        json_object_set_new(r, "map", json_string(name));
        if (o->maps[m] == SR_LOSS_ENTMAX) json_object_set_new(r, "alpha", json_real(o->alpha));
        json_object_set_new(r, "users", json_integer(bm));
        json_object_set_new(r, "norm_mean", json_real(mean));
        json_object_set_new(r, "norm_min", json_real(lo));
        json_object_set_new(r, "norm_max", json_real(hi));
        json_object_set_new(r, "support_mean", json_real(msup));
        json_object_set_new(r, "support_median", json_integer(support[bm / 2]));
        json_object_set_new(r, "support_max", json_integer(support[bm - 1]));
        json_object_set_new(r, "iters_mean", json_real(mit));
        json_array_append_new(arr, r);
    }
    free(targets);
    free(norm);
    free(support);
    free(iters);
    if (st != SR_OK) {
        json_decref(arr);
        json_decref(res);
        return st;
    }
    if (c->rank == 0) printf("\n");
    json_object_set_new(res, "analysis", json_string("jacobian"));
    json_object_set_new(res, "checkpoint", json_string(o->ckpt));
    json_object_set_new(res, "dataset", json_string(cfg->data_path));
    json_object_set_new(res, "users", json_integer(b));
    json_object_set_new(res, "items", json_integer(map->n));
    json_object_set_new(res, "temperature", json_real(cfg->model_temperature));
    json_object_set_new(res, "seed", json_integer(o->seed));
    json_object_set_new(res, "ranks", json_integer(c->size));
    json_object_set_new(res, "rows", arr);
    emit(c, o, res);
    return SR_OK;
}

static sr_status analyze_run(const sr_cli_ctx *ctx, void *opts, sr_error *err)
{
    const sr_comm *c = ctx->comm;
    const analyze_opts *o = opts;
    sr_config cfg;
    sr_trainer *t = NULL;
    SR_TRY(sr_cli_open_checkpoint(c, o->ckpt, o->dataset, &o->sets, &cfg, &t, err));
    const sr_dataset_meta *meta = sr_trainer_meta(t);
    int64_t b = o->users < meta->num_users ? o->users : meta->num_users;
    if (cfg.model_temperature > 0 && b > 256 * (int64_t)c->size) b = 256 * (int64_t)c->size;
    int64_t *users = malloc((size_t)(b > 0 ? b : 1) * sizeof *users);
    float *q = malloc((size_t)(b * cfg.model_dim > 0 ? b * cfg.model_dim : 1) * sizeof *q);
    if (!users || !q) sr_comm_abort(c, &(sr_error){SR_ERR_NOMEM, __FILE__, __LINE__, "out of memory"});
    sr_status st = sample_users(meta->num_users, b, (uint64_t)o->seed, users, err);
    if (sr_comm_agree(c, err) == SR_OK) st = sr_trainer_user_queries(t, users, b, q, err);
    if (st == SR_OK)
        st = !strcmp(o->what, "jacobian") ? run_jacobian(c, o, t, q, users, b, err) : run_lse_bias(c, o, t, q, b, err);
    free(users);
    free(q);
    sr_trainer_destroy(&t);
    return st;
}

/* ---- the descriptors ------------------------------------------------------- */

static void lse_bias_init(void *opts)
{
    *(analyze_opts *)opts = (analyze_opts){.what = "lse-bias", .users = 256, .seed = 1, .reps = 20, .beta = NAN,
                                           .ks = {16, 64, 256, 1024, 4096}, .nk = 5};
}

static void jacobian_init(void *opts)
{
    *(analyze_opts *)opts = (analyze_opts){
        .what = "jacobian", .users = 256, .seed = 1, .beta = NAN,
        .maps = {SR_LOSS_SOFTMAX, SR_LOSS_SPARSEMAX, SR_LOSS_ENTMAX, SR_LOSS_RANKMAX}, .nmaps = 4, .alpha = 1.5,
        .tol = 1e-7, .iters = 200};
}

#define ANALYZE_COMMON_OPTIONS                                                              \
    SR_CLI_STR_OPT("checkpoint", analyze_opts, ckpt, true),                                 \
    SR_CLI_STR_OPT("dataset", analyze_opts, dataset, false),                                \
    SR_CLI_STR_OPT("out", analyze_opts, out, false),                                        \
    SR_CLI_LIST_OPT("set", analyze_opts, sets),                                             \
    SR_CLI_INT_OPT("users", SR_CLI_INT64, analyze_opts, users, 1, INT64_MAX),              \
    SR_CLI_INT_OPT("seed", SR_CLI_INT64, analyze_opts, seed, 0, INT64_MAX)

#define ANALYZE_COMMON_USAGE                                                        \
    "common options:\n"                                                             \
    "  --checkpoint FILE  the trained model (required)\n"                           \
    "  --users N          users sampled (default 256)\n"                            \
    "  --seed S           seed of the user sample and the draws (default 1)\n"      \
    "  --dataset PATH     dataset (default: the one stored in the checkpoint)\n"    \
    "  --set key=value    config override (repeatable)\n"                           \
    "  --out FILE         also write the JSON result to FILE\n"                     \
    "Prints a Markdown table, then one JSON object as the last line.\n"

static const sr_cli_option lse_bias_options[] = {
    ANALYZE_COMMON_OPTIONS,
    SR_CLI_STR_OPT("k", analyze_opts, k_list, false),
    SR_CLI_INT_OPT("reps", SR_CLI_INT64, analyze_opts, reps, 1, INT64_MAX),
    SR_CLI_STR_OPT("proposal", analyze_opts, proposal, false),
    SR_CLI_REAL_OPT("beta", analyze_opts, beta),
    SR_CLI_END,
};

const sr_cli_command sr_cli_analyze_lse_bias = {
    .group = "analyze",
    .name = "lse-bias",
    .summary = "bias of the sampled log Z (SSM, NCE) and of their gradients at a checkpoint",
    .usage = "usage: softrec analyze lse-bias --checkpoint MODEL.h5 [options]\n"
             "  Exact log-partition function against the sampled-softmax and NCE estimates, and\n"
             "  (R >= 2) the bias of their expected training gradients at the exact fixed point.\n"
             "  --k LIST           sample sizes (default 16,64,256,1024,4096)\n"
             "  --reps R           repetitions per k (default 20)\n"
             "  --proposal P       uniform | popularity (default: the checkpoint's loss.proposal,\n"
             "                     uniform when that is neither)\n"
             "  --beta B           popularity exponent in [0, 10] (default: loss.proposal_beta)\n"
             ANALYZE_COMMON_USAGE,
    .options = lse_bias_options,
    .opts_size = sizeof(analyze_opts),
    .needs_mpi = true,
    .init = lse_bias_init,
    .check = lse_bias_check,
    .run = analyze_run,
};

static const sr_cli_option jacobian_options[] = {
    ANALYZE_COMMON_OPTIONS,
    SR_CLI_STR_OPT("maps", analyze_opts, map_list, false),
    SR_CLI_REAL_OPT("alpha", analyze_opts, alpha),
    SR_CLI_INT_OPT("iters", SR_CLI_INT64, analyze_opts, iters, 1, INT64_MAX),
    SR_CLI_REAL_OPT("tol", analyze_opts, tol),
    SR_CLI_END,
};

const sr_cli_command sr_cli_analyze_jacobian = {
    .group = "analyze",
    .name = "jacobian",
    .summary = "spectral norms of the prediction maps' Jacobians at a checkpoint",
    .usage = "usage: softrec analyze jacobian --checkpoint MODEL.h5 [options]\n"
             "  Spectral norm ||J||_2 of the prediction map's Jacobian at the model's logits\n"
             "  (power iteration over the sharded catalogue), with support sizes.\n"
             "  --maps LIST        of softmax,sparsemax,entmax,rankmax (default all four)\n"
             "  --alpha A          entmax alpha in (1, 10] (default 1.5)\n"
             "  --iters N          power iterations at most (default 200)\n"
             "  --tol T            relative change that stops the iteration (default 1e-7)\n"
             "  rankmax needs a target per user: its first test item (else valid, else train).\n"
             ANALYZE_COMMON_USAGE,
    .options = jacobian_options,
    .opts_size = sizeof(analyze_opts),
    .needs_mpi = true,
    .init = jacobian_init,
    .check = jacobian_check,
    .run = analyze_run,
};
