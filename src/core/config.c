/* config.c: the key table and its parsers. Add a key: one field in
 * sr_config, one row below; everything else (files, --set, printing, help,
 * checkpoints) follows from the row. */
#include "core/config.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define F(field) offsetof(sr_config, field), sizeof(((sr_config *)0)->field)
#define NOB 0, 0

/* Rows without a registry end at help: choice_fn is left NULL on purpose. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const sr_config_key TABLE[] = {
    {"data.path", SR_CFG_STRING, F(data_path), "", NOB, NULL,
     "HDF5 dataset (softrec data convert/synth); empty = none"},
    {"model.name", SR_CFG_ENUM, F(model_name), "mf", NOB, NULL,
     "backbone that builds the queries", sr_backbone_choice},
    {"model.dim", SR_CFG_INT, F(model_dim), "64", 1, 4096, NULL, "embedding dimension d"},
    {"model.init_std", SR_CFG_FLOAT, F(model_init_std), "0.1", 0, 10, NULL,
     "standard deviation of the normal initialisation of embeddings"},
    {"model.temperature", SR_CFG_FLOAT, F(model_temperature), "0", 0, 100, NULL,
     "0: score = dot product; tau > 0: score = cosine(user, item) / tau"},
    {"model.layers", SR_CFG_INT, F(model_layers), "2", 0, 64, NULL,
     "sasrec: transformer blocks; lightgcn: propagation rounds K"},
    {"model.heads", SR_CFG_INT, F(model_heads), "1", 1, 64, NULL, "sasrec: attention heads (divides model.dim)"},
    {"model.dropout", SR_CFG_FLOAT, F(model_dropout), "0.2", 0, 0.95, NULL, "sasrec: dropout rate"},
    {"model.max_len", SR_CFG_INT, F(model_max_len), "50", 2, 4096, NULL,
     "sasrec: positions per sequence (the most recent items are kept)"},
    {"model.tie_embeddings", SR_CFG_BOOL, F(model_tie_embeddings), "true", NOB, NULL,
     "sasrec: the input item embeddings are the output (scoring) table"},
    {"model.layer_weights", SR_CFG_STRING, F(model_layer_weights), "", NOB, NULL,
     "lightgcn: K+1 comma-separated layer weights (empty = mean over layers)"},
    {"loss.name", SR_CFG_ENUM, F(loss_name), "softmax", NOB, NULL,
     "loss of the softmax family: exact softmax, sampled softmax, NCE, BPR, hierarchical "
     "softmax, or a sparse map", sr_loss_choice},
    {"loss.tile", SR_CFG_INT, F(loss_tile), "4096", 16, 1 << 22, NULL,
     "items per tile in the exact softmax (memory is O(batch x tile))"},
    {"loss.kernel", SR_CFG_ENUM, F(loss_kernel), "blas", NOB, "blas|auto|fused-avx512|fused-avx2",
     "exact softmax path: blas = tiled SGEMM; auto = the widest fused register-tiled kernel the CPU "
     "has (d a multiple of 16, <= 512; SGEMM otherwise); other rounding than blas"},
    {"loss.precision", SR_CFG_ENUM, F(loss_precision), "fp32", NOB, "fp32|bf16",
     "exact softmax products: fp32; bf16 = the fused AVX-512 kernels with bf16-rounded inputs and fp32 "
     "accumulation (loss.name = softmax, loss.kernel = auto or fused-avx512, d a multiple of 16, a CPU with "
     "AVX512_BF16; logit error <= 2^-7 sum_k |q_k v_k|); tables stay fp32"},
    {"loss.negatives", SR_CFG_INT, F(loss_negatives), "256", 1, 1 << 26, NULL,
     "k: negatives drawn per step (ssm, nce; shared by the batch, or per query)"},
    {"loss.proposal", SR_CFG_ENUM, F(loss_proposal), "uniform", NOB, NULL,
     "proposal Q of the sampled losses (dynamic: hard negatives from loss.dns_base)",
     sr_proposal_choice},
    {"loss.dns_base", SR_CFG_ENUM, F(loss_dns_base), "uniform", NOB, NULL,
     "base proposal the dynamic sampler draws its candidates from", sr_dns_base_choice},
    {"loss.proposal_beta", SR_CFG_FLOAT, F(loss_proposal_beta), "1", 0, 10, NULL,
     "popularity proposal: Q(j) proportional to train count(j)^beta"},
    {"loss.dns_candidates", SR_CFG_INT, F(loss_dns_candidates), "1024", 1, 1 << 26, NULL,
     "dynamic proposal: candidates drawn per step; the k highest-scoring are kept"},
    {"loss.logq_correction", SR_CFG_BOOL, F(loss_logq_correction), "true", NOB, NULL,
     "subtract log(expected count) from sampled logits (ssm, nce)"},
    {"loss.remove_accidental_hits", SR_CFG_BOOL, F(loss_remove_accidental_hits), "true", NOB,
     NULL, "drop a sampled negative that equals the query's target"},
    {"loss.shared_negatives", SR_CFG_BOOL, F(loss_shared_negatives), "true", NOB, NULL,
     "one negative set for the whole global batch (one GEMM); false = per query"},
    {"loss.alpha", SR_CFG_FLOAT, F(loss_alpha), "1.5", 1.0001, 10, NULL,
     "entmax alpha (1.5 exact threshold; otherwise bisection)"},
    {"loss.rankmax_k", SR_CFG_INT, F(loss_rankmax_k), "1", 1, 1 << 20, NULL,
     "rankmax: k of the (n,k)-simplex projection"},
    {"loss.bisect_tol", SR_CFG_FLOAT, F(loss_bisect_tol), "1e-6", 1e-12, 1e-1, NULL,
     "sparse maps: bisection stops when the threshold bracket is below this"},
    {"train.epochs", SR_CFG_INT, F(train_epochs), "10", 0, 1e9, NULL, "passes over the training data"},
    {"train.batch_size", SR_CFG_INT, F(train_batch_size), "1024", 1, 1 << 24, NULL,
     "global batch: examples per step summed over all ranks"},
    {"train.lr", SR_CFG_FLOAT, F(train_lr), "0.001", 0, 1e6, NULL, "learning rate"},
    {"train.lr_milestones", SR_CFG_STRING, F(train_lr_milestones), "", NOB, NULL,
     "epochs after which train.lr is multiplied by train.lr_gamma, ascending, comma-separated "
     "(e.g. '16,32'; empty = constant)"},
    {"train.lr_gamma", SR_CFG_FLOAT, F(train_lr_gamma), "0.1", 1e-9, 1, NULL,
     "factor applied to the learning rate at each of train.lr_milestones"},
    {"train.seed", SR_CFG_INT, F(train_seed), "1", 0, 9.2e18, NULL, "seed of every random stream"},
    {"train.seeds", SR_CFG_STRING, F(train_seeds), "", NOB, NULL,
     "comma-separated seeds (e.g. '1,2,3'; at least 2): one run per seed, train.seed set to it, in "
     "run.dir/seed-<s>, then the mean, sd and 95% CI of each metric in run.dir/seeds.json (empty = off)"},
    {"train.shuffle", SR_CFG_BOOL, F(train_shuffle), "true", NOB, NULL,
     "shuffle the training examples every epoch"},
    {"train.init", SR_CFG_STRING, F(train_init), "", NOB, NULL,
     "checkpoint to initialise the model from (empty = random init)"},
    {"train.checkpoint_every", SR_CFG_INT, F(train_checkpoint_every), "0", 0, 1e15, NULL,
     "optimiser steps between committed checkpoints in run.dir/checkpoints (0 = at the end only)"},
    {"train.keep_checkpoints", SR_CFG_INT, F(train_keep_checkpoints), "2", 1, 1e6, NULL,
     "committed checkpoints kept (older ones are deleted after a commit)"},
    {"train.resume", SR_CFG_ENUM, F(train_resume), "off", NOB, "off|auto",
     "auto: continue from run.dir/checkpoints/latest when it exists"},
    {"train.resume_force", SR_CFG_BOOL, F(train_resume_force), "false", NOB, NULL,
     "resume even when the checkpoint's run fingerprint (the keys that change what is trained, and the "
     "dataset's content) differs from this run's: each difference is a warning instead of an error"},
    {"train.max_bad_steps", SR_CFG_INT, F(train_max_bad_steps), "3", 1, 1e9, NULL,
     "consecutive non-finite steps (skipped) before rolling back to the last checkpoint"},
    {"train.watchdog_factor", SR_CFG_FLOAT, F(train_watchdog_factor), "20", 0, 1e9, NULL,
     "end the job when a step takes longer than factor x the recent median (0 = off)"},
    {"train.watchdog_min_seconds", SR_CFG_FLOAT, F(train_watchdog_min_seconds), "120", 0, 1e9,
     NULL, "the watchdog never fires before a step has run this long"},
    {"optim.name", SR_CFG_ENUM, F(optim_name), "adam", NOB, "sgd|adam|adagrad", "optimiser"},
    {"optim.weight_decay", SR_CFG_FLOAT, F(optim_weight_decay), "0", 0, 1e3, NULL,
     "L2 penalty on the embedding rows a step uses"},
    {"optim.beta1", SR_CFG_FLOAT, F(optim_beta1), "0.9", 0, 0.999999, NULL, "Adam first-moment decay"},
    {"optim.beta2", SR_CFG_FLOAT, F(optim_beta2), "0.999", 0, 0.999999999, NULL,
     "Adam second-moment decay"},
    {"optim.eps", SR_CFG_FLOAT, F(optim_eps), "1e-8", 1e-30, 1, NULL, "Adam/Adagrad denominator floor"},
    {"eval.topk", SR_CFG_INTLIST, F(eval_topk), "20", 1, 10000, NULL,
     "cut-offs K of NDCG@K, Precision@K, Recall@K (comma-separated)"},
    {"eval.mask_history", SR_CFG_BOOL, F(eval_mask_history), "true", NOB, NULL,
     "full ranking masks the user's known items (train, and valid when testing)"},
    {"eval.every", SR_CFG_INT, F(eval_every), "1", 0, 1e9, NULL,
     "epochs between validation evaluations (0 = only the final test)"},
    {"eval.valid_metric", SR_CFG_STRING, F(eval_valid_metric), "", NOB, NULL,
     "validation metric that selects the model (ndcg|precision|recall|hit|mrr|map@K, K in eval.topk; "
     "empty = ndcg at the first eval.topk)"},
    {"eval.test_model", SR_CFG_ENUM, F(eval_test_model), "best", NOB, "best|last",
     "model the reported test metrics are of: the best-validation epoch's (run.dir/best.h5) or the last"},
    {"eval.test_curve", SR_CFG_BOOL, F(eval_test_curve), "false", NOB, NULL,
     "also rank the test split at every validation (metrics.jsonl \"test\"; doubles the evaluation cost)"},
    {"train.early_stop_patience", SR_CFG_INT, F(train_early_stop_patience), "0", 0, 1e9, NULL,
     "stop after this many validations without a new best (0 = off)"},
    {"shard.layout", SR_CFG_ENUM, F(shard_layout), "block", NOB, "block|interleave",
     "item to rank map: contiguous blocks or round-robin (spreads popular head items)"},
    {"run.dir", SR_CFG_STRING, F(run_dir), "runs/default", NOB, NULL,
     "run directory: resolved config, metrics.jsonl, checkpoints"},
    {"run.progress_every", SR_CFG_FLOAT, F(run_progress_every), "5", 0, 1e6, NULL,
     "seconds between progress lines on rank 0 (0 = every step)"},
};
#pragma GCC diagnostic pop

#undef F
#undef NOB

const sr_config_key *sr_config_table(size_t *count)
{
    *count = sizeof TABLE / sizeof TABLE[0];
    return TABLE;
}

static const sr_config_key *find_key(const char *name)
{
    for (size_t i = 0; i < sizeof TABLE / sizeof TABLE[0]; i++)
        if (!strcmp(TABLE[i].name, name)) return &TABLE[i];
    return NULL;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    size_t i = 0;
    while (s[i] == ' ' || s[i] == '\t') i++;
    if (i) memmove(s, s + i, n - i + 1);
}

static bool parse_int(const char *s, int64_t *out)
{
    if (!*s) return false;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) {
        /* Accept exact floats like 1e6 for convenience, nothing else. */
        errno = 0;
        double d = strtod(s, &end);
        if (errno || *end || d != floor(d) || fabs(d) > 9.2e18) return false;
        v = (long long)d;
    }
    *out = v;
    return true;
}

static bool parse_float(const char *s, double *out)
{
    if (!*s) return false;
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on") || !strcmp(s, "1")) {
        *out = true;
        return true;
    }
    if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off") || !strcmp(s, "0")) {
        *out = false;
        return true;
    }
    return false;
}

/* The allowed names of an ENUM row as "a|b|c" (static or from its registry). */
static void choices_text(const sr_config_key *k, char *buf, size_t len)
{
    if (!k->choice_fn) {
        snprintf(buf, len, "%s", k->choices);
        return;
    }
    size_t off = 0;
    buf[0] = '\0';
    const char *name;
    for (size_t i = 0; (name = k->choice_fn(i, NULL)) != NULL && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "|" : "", name);
}

static bool in_choices(const sr_config_key *k, const char *v)
{
    if (k->choice_fn) {
        const char *name;
        for (size_t i = 0; (name = k->choice_fn(i, NULL)) != NULL; i++)
            if (!strcmp(name, v)) return true;
        return false;
    }
    size_t n = strlen(v);
    const char *p = k->choices;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, v, n)) return true;
        if (!bar) break;
        p = bar + 1;
    }
    return false;
}

static sr_status check_bounds(const sr_config_key *k, double v, const char *text, const char *source,
                              sr_error *err)
{
    if (k->min == 0 && k->max == 0) return SR_OK;
    if (v < k->min)
        SR_FAIL(err, SR_ERR_CONFIG, "%s: %s = %s is below the minimum %g", source, k->name, text,
                k->min);
    if (v > k->max)
        SR_FAIL(err, SR_ERR_CONFIG, "%s: %s = %s is above the maximum %g", source, k->name, text,
                k->max);
    return SR_OK;
}

sr_status sr_config_set(sr_config *cfg, const char *key, const char *value, const char *source,
                        sr_error *err)
{
    const sr_config_key *k = find_key(key);
    if (!k) SR_FAIL(err, SR_ERR_CONFIG, "%s: unknown key '%s' (softrec help config lists them)", source, key);
    char v[SR_CONFIG_PATH_MAX + 64];
    if (strlen(value) >= sizeof v) SR_FAIL(err, SR_ERR_CONFIG, "%s: %s: value too long", source, key);
    strcpy(v, value);
    trim(v);
    char *field = (char *)cfg + k->offset;
    switch (k->type) {
    case SR_CFG_INT: {
        int64_t x;
        if (!parse_int(v, &x))
            SR_FAIL(err, SR_ERR_CONFIG, "%s: %s = '%s' is not an integer", source, k->name, v);
        SR_TRY(check_bounds(k, (double)x, v, source, err));
        *(int64_t *)field = x;
        break;
    }
    case SR_CFG_FLOAT: {
        double x;
        if (!parse_float(v, &x))
            SR_FAIL(err, SR_ERR_CONFIG, "%s: %s = '%s' is not a finite number", source, k->name, v);
        SR_TRY(check_bounds(k, x, v, source, err));
        *(double *)field = x;
        break;
    }
    case SR_CFG_BOOL: {
        bool x;
        if (!parse_bool(v, &x))
            SR_FAIL(err, SR_ERR_CONFIG, "%s: %s = '%s' is not a boolean (true/false)", source,
                    k->name, v);
        *(bool *)field = x;
        break;
    }
    case SR_CFG_ENUM:
        if (!in_choices(k, v)) {
            char all[512];
            choices_text(k, all, sizeof all);
            SR_FAIL(err, SR_ERR_CONFIG, "%s: %s = '%s' is not one of %s", source, k->name, v, all);
        }
        __attribute__((fallthrough)); /* stored like a string */
    case SR_CFG_STRING:
        if (strlen(v) >= k->size)
            SR_FAIL(err, SR_ERR_CONFIG, "%s: %s: value longer than %zu characters", source, k->name,
                    k->size - 1);
        strcpy(field, v);
        break;
    case SR_CFG_INTLIST: {
        int64_t vals[SR_CONFIG_LIST_MAX];
        int n = 0;
        if (!*v) SR_FAIL(err, SR_ERR_CONFIG, "%s: %s: empty list", source, k->name);
        char whole[sizeof v];
        strcpy(whole, v);
        /* Split by hand: strtok_r would skip the empty element of "10,,20". */
        for (char *tok = v, *next; tok; tok = next) {
            next = strchr(tok, ',');
            if (next) *next++ = '\0';
            trim(tok);
            if (!*tok)
                SR_FAIL(err, SR_ERR_CONFIG, "%s: %s = '%s' has an empty element (expected comma-separated integers)",
                        source, k->name, whole);
            if (n == SR_CONFIG_LIST_MAX)
                SR_FAIL(err, SR_ERR_CONFIG, "%s: %s: more than %d values", source, k->name,
                        SR_CONFIG_LIST_MAX);
            if (!parse_int(tok, &vals[n]))
                SR_FAIL(err, SR_ERR_CONFIG, "%s: %s: '%s' is not an integer", source, k->name, tok);
            SR_TRY(check_bounds(k, (double)vals[n], tok, source, err));
            n++;
        }
        /* eval.topk is the only list; its count lives beside it. */
        memcpy(field, vals, (size_t)n * sizeof vals[0]);
        if (k->offset == offsetof(sr_config, eval_topk)) cfg->eval_topk_count = n;
        break;
    }
    }
    return SR_OK;
}

void sr_config_defaults(sr_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    size_t n;
    const sr_config_key *t = sr_config_table(&n);
    for (size_t i = 0; i < n; i++) {
        sr_error e;
        sr_error_clear(&e);
        if (sr_config_set(cfg, t[i].name, t[i].def, "defaults", &e) != SR_OK)
            sr_panic(__FILE__, __LINE__, "bad default in config table: %s", e.msg);
    }
}

sr_status sr_config_set_assignment(sr_config *cfg, const char *assignment, sr_error *err)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        SR_FAIL(err, SR_ERR_CONFIG, "--set %s: expected key=value", assignment);
    char key[128];
    size_t kl = (size_t)(eq - assignment);
    if (kl >= sizeof key) SR_FAIL(err, SR_ERR_CONFIG, "--set %s: key too long", assignment);
    memcpy(key, assignment, kl);
    key[kl] = '\0';
    trim(key);
    return sr_config_set(cfg, key, eq + 1, "--set", err);
}

#define TABLE_LEN (sizeof TABLE / sizeof TABLE[0])

/* inih (the system's build) passes no line number to the handler, so the
 * readers below count the lines as inih does (one per reader call) and
 * first_line remembers where each key was set: a key set twice in one file
 * is an error, not a silent "last wins". */
typedef struct ini_ctx {
    sr_config *cfg;
    const char *source;
    sr_error *err;
    int failed;
    int line;                  /* the line inih is handling */
    int first_line[TABLE_LEN]; /* 0: not set by this file yet */
    FILE *file;                /* ini_file_reader_ */
    const char *text;          /* ini_string_reader_ */
} ini_ctx;

static int on_ini_entry(void *user, const char *section, const char *name, const char *value)
{
    ini_ctx *c = user;
    if (c->failed) return 0;
    char key[256];
    if (section && *section)
        snprintf(key, sizeof key, "%s.%s", section, name);
    else
        snprintf(key, sizeof key, "%s", name);
    const sr_config_key *k = find_key(key);
    if (k) {
        int *first = &c->first_line[k - TABLE];
        if (*first) {
            c->failed = 1;
            sr_error_set(c->err, SR_ERR_CONFIG, __FILE__, __LINE__,
                         "%s: duplicate key '%s' (first set at line %d; set each key once per file)", c->source,
                         key, *first);
            return 0;
        }
        *first = c->line;
    }
    if (sr_config_set(c->cfg, key, value, c->source, c->err) != SR_OK) {
        c->failed = 1;
        return 0;
    }
    return 1;
}

static char *ini_file_reader_(char *str, int num, void *stream)
{
    ini_ctx *c = stream;
    char *got = fgets(str, num, c->file);
    if (got) c->line++;
    return got;
}

/* Like inih's string reader: up to num - 1 characters through a '\n'. */
static char *ini_string_reader_(char *str, int num, void *stream)
{
    ini_ctx *c = stream;
    if (!*c->text || num < 2) return NULL;
    int i = 0;
    while (i < num - 1 && c->text[i]) {
        str[i] = c->text[i];
        if (c->text[i++] == '\n') break;
    }
    str[i] = '\0';
    c->text += i;
    c->line++;
    return str;
}

/* inih reports the line of the first failing entry as its return value; the
 * handler's message is then prefixed with it. */
static sr_status finish_ini(int rc, ini_ctx *c, const char *what)
{
    if (rc == 0) return SR_OK;
    if (c->failed) {
        char msg[SR_ERROR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", c->err->msg);
        /* Rewrite "source: ..." as "source:line: ..." */
        size_t sl = strlen(c->source);
        if (!strncmp(msg, c->source, sl) && msg[sl] == ':')
            snprintf(c->err->msg, sizeof c->err->msg, "%s:%d%s", c->source, rc, msg + sl);
        return c->err->code;
    }
    if (rc < 0) SR_FAIL(c->err, SR_ERR_IO, "%s: cannot open config file", what);
    SR_FAIL(c->err, SR_ERR_CONFIG, "%s:%d: syntax error (expected [section] or key = value)", what, rc);
}

sr_status sr_config_load_file(sr_config *cfg, const char *path, sr_error *err)
{
    ini_ctx c = {.cfg = cfg, .source = path, .err = err};
    c.file = fopen(path, "r");
    if (!c.file) SR_FAIL(err, SR_ERR_IO, "%s: cannot open config file: %s", path, strerror(errno));
    int rc = ini_parse_stream(ini_file_reader_, &c, on_ini_entry, &c);
    fclose(c.file);
    return finish_ini(rc, &c, path);
}

sr_status sr_config_load_string(sr_config *cfg, const char *text, const char *source, sr_error *err)
{
    ini_ctx c = {.cfg = cfg, .source = source, .err = err, .text = text};
    int rc = ini_parse_stream(ini_string_reader_, &c, on_ini_entry, &c);
    return finish_ini(rc, &c, source);
}

bool sr_config_get(const sr_config *cfg, const char *key, char *buf, size_t len)
{
    const sr_config_key *k = find_key(key);
    if (!k) return false;
    const char *field = (const char *)cfg + k->offset;
    switch (k->type) {
    case SR_CFG_INT: snprintf(buf, len, "%lld", (long long)*(const int64_t *)field); break;
    case SR_CFG_FLOAT: {
        /* Shortest text that reads back to the same double. */
        double v = *(const double *)field;
        for (int prec = 6; prec <= 17; prec++) {
            snprintf(buf, len, "%.*g", prec, v);
            if (strtod(buf, NULL) == v) break;
        }
        break;
    }
    case SR_CFG_BOOL: snprintf(buf, len, "%s", *(const bool *)field ? "true" : "false"); break;
    case SR_CFG_STRING:
    case SR_CFG_ENUM: snprintf(buf, len, "%s", field); break;
    case SR_CFG_INTLIST: {
        size_t off = 0;
        buf[0] = '\0';
        for (int i = 0; i < cfg->eval_topk_count && off < len; i++)
            off += (size_t)snprintf(buf + off, len - off, "%s%lld", i ? "," : "",
                                    (long long)((const int64_t *)field)[i]);
        break;
    }
    }
    return true;
}

size_t sr_config_write_ini(const sr_config *cfg, char *buf, size_t len)
{
    size_t n, off = 0;
    const sr_config_key *t = sr_config_table(&n);
    char section[64] = "";
    for (size_t i = 0; i < n; i++) {
        const char *dot = strchr(t[i].name, '.');
        size_t sl = (size_t)(dot - t[i].name);
        char val[SR_CONFIG_PATH_MAX + 64];
        sr_config_get(cfg, t[i].name, val, sizeof val);
        if (strlen(section) != sl || strncmp(section, t[i].name, sl)) {
            memcpy(section, t[i].name, sl);
            section[sl] = '\0';
            int w = snprintf(buf ? buf + off : NULL, buf && off < len ? len - off : 0, "%s[%s]\n",
                             off ? "\n" : "", section);
            off += (size_t)w;
        }
        int w = snprintf(buf ? buf + off : NULL, buf && off < len ? len - off : 0, "%s = %s\n",
                         dot + 1, val);
        off += (size_t)w;
    }
    return off;
}

void sr_config_print(const sr_config *cfg, FILE *out)
{
    size_t n;
    const sr_config_key *t = sr_config_table(&n);
    for (size_t i = 0; i < n; i++) {
        char val[SR_CONFIG_PATH_MAX + 64];
        sr_config_get(cfg, t[i].name, val, sizeof val);
        fprintf(out, "  %-22s = %s\n", t[i].name, val);
    }
}

static const char *type_name(sr_config_type t)
{
    switch (t) {
    case SR_CFG_INT: return "int";
    case SR_CFG_FLOAT: return "float";
    case SR_CFG_BOOL: return "bool";
    case SR_CFG_STRING: return "string";
    case SR_CFG_ENUM: return "enum";
    case SR_CFG_INTLIST: return "int list";
    }
    return "?";
}

void sr_config_print_help(FILE *out)
{
    size_t n;
    const sr_config_key *t = sr_config_table(&n);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "%-22s %-8s default %s", t[i].name, type_name(t[i].type),
                *t[i].def ? t[i].def : "''");
        char all[512];
        if (t[i].type == SR_CFG_ENUM) {
            choices_text(&t[i], all, sizeof all);
            fprintf(out, "  one of %s", all);
        } else if (t[i].min != 0 || t[i].max != 0) {
            fprintf(out, "  in [%g, %g]", t[i].min, t[i].max);
        }
        fprintf(out, "\n    %s\n", t[i].help);
        const char *name, *help = NULL;
        for (size_t c = 0; t[i].choice_fn && (name = t[i].choice_fn(c, &help)) != NULL; c++, help = NULL)
            fprintf(out, "      %-12s %s\n", name, help ? help : "");
    }
}
