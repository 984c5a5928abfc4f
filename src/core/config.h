/* config.h: the run configuration, filled from one table of keys.
 *
 * Every key has a row in the table in config.c: name ("section.key"), type,
 * default, bounds or allowed values, help. Sources apply in order: defaults,
 * then an INI file (read by inih; "[train]\nepochs = 10" sets train.epochs),
 * then --set key=value overrides. Unknown keys, malformed values and values
 * out of bounds are SR_ERR_CONFIG errors that name the source, the key and the
 * problem. The struct is plain data: pass it as const *, store it in
 * checkpoints as text (sr_config_write_ini).
 */
#ifndef SR_CORE_CONFIG_H
#define SR_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"

#define SR_CONFIG_PATH_MAX 1024
#define SR_CONFIG_NAME_MAX 32
#define SR_CONFIG_LIST_MAX 8

typedef struct sr_config {
    /* data */
    char data_path[SR_CONFIG_PATH_MAX];
    /* model */
    char model_name[SR_CONFIG_NAME_MAX];
    int64_t model_dim;
    double model_init_std;
    double model_temperature;    /* > 0: cosine scores / temperature; 0: dot product */
    int64_t model_layers;        /* sasrec: transformer blocks; lightgcn: propagation rounds K */
    int64_t model_heads;         /* sasrec: attention heads */
    double model_dropout;        /* sasrec */
    int64_t model_max_len;       /* sasrec: positions per sequence */
    bool model_tie_embeddings;   /* sasrec: input item embeddings = output table */
    char model_layer_weights[SR_CONFIG_PATH_MAX]; /* lightgcn: K+1 weights, empty = mean */
    /* loss */
    char loss_name[SR_CONFIG_NAME_MAX];
    int64_t loss_tile;           /* items per tile in the exact softmax */
    char loss_kernel[SR_CONFIG_NAME_MAX]; /* exact softmax path: blas | auto | fused-avx512 | fused-avx2 */
    char loss_precision[SR_CONFIG_NAME_MAX]; /* exact softmax products: fp32 | bf16 (fused AVX-512 only) */
    int64_t loss_negatives;      /* k: sampled negatives per step (ssm, nce) */
    char loss_proposal[SR_CONFIG_NAME_MAX]; /* uniform | popularity | inbatch | dynamic */
    char loss_dns_base[SR_CONFIG_NAME_MAX]; /* base proposal of dynamic: uniform | popularity */
    double loss_proposal_beta;   /* popularity proposal: Q(j) ~ count(j)^beta */
    int64_t loss_dns_candidates; /* dynamic: candidates drawn, k highest kept */
    bool loss_logq_correction;   /* subtract log expected count (ssm, nce) */
    bool loss_remove_accidental_hits;
    bool loss_shared_negatives;  /* one negative set for the global batch */
    double loss_alpha;           /* entmax alpha > 1 */
    int64_t loss_rankmax_k;      /* rankmax: size k of the (n,k)-simplex */
    double loss_bisect_tol;      /* sparse-map thresholds: bisection tolerance */
    /* training */
    int64_t train_epochs;
    int64_t train_batch_size;    /* global batch, summed over ranks */
    double train_lr;
    char train_lr_milestones[SR_CONFIG_PATH_MAX]; /* epochs after which lr *= train_lr_gamma */
    double train_lr_gamma;
    int64_t train_seed;
    char train_seeds[SR_CONFIG_PATH_MAX]; /* "1,2,3": one run per seed in run.dir/seed-<s>; "" = off */
    bool train_shuffle;
    char train_init[SR_CONFIG_PATH_MAX];
    int64_t train_checkpoint_every; /* steps between committed checkpoints (0 = end only) */
    int64_t train_keep_checkpoints; /* committed checkpoints kept */
    char train_resume[SR_CONFIG_NAME_MAX]; /* off | auto */
    bool train_resume_force;        /* resume despite a different run fingerprint (warnings) */
    int64_t train_max_bad_steps;    /* consecutive non-finite steps before rollback/stop */
    double train_watchdog_factor;   /* a step slower than factor x recent median ends the job */
    double train_watchdog_min_seconds; /* ... but never before this many seconds */
    /* optimiser */
    char optim_name[SR_CONFIG_NAME_MAX];
    double optim_weight_decay;
    double optim_beta1, optim_beta2, optim_eps;
    /* evaluation */
    int64_t eval_topk[SR_CONFIG_LIST_MAX];
    int eval_topk_count;
    bool eval_mask_history;      /* mask the user's known items in full ranking */
    int64_t eval_every;
    char eval_valid_metric[SR_CONFIG_NAME_MAX]; /* "ndcg@20"; empty: ndcg at eval_topk[0] */
    char eval_test_model[SR_CONFIG_NAME_MAX];   /* best | last */
    bool eval_test_curve;                       /* rank the test split at every validation too */
    int64_t train_early_stop_patience;         /* validations without a new best; 0 = off */
    /* layout */
    char shard_layout[SR_CONFIG_NAME_MAX]; /* block | interleave */
    /* run */
    char run_dir[SR_CONFIG_PATH_MAX];
    double run_progress_every;   /* seconds between progress lines */
} sr_config;

typedef enum sr_config_type {
    SR_CFG_INT,
    SR_CFG_FLOAT,
    SR_CFG_BOOL,
    SR_CFG_STRING,
    SR_CFG_ENUM,   /* a string from a '|'-separated list */
    SR_CFG_INTLIST /* comma-separated int64 values */
} sr_config_type;

/* Choices of an ENUM owned by a registry in a higher layer (losses,
 * proposals): the i-th allowed name and, through *help, its one-line help
 * (may be NULL); NULL past the last. To reuse: define such a function beside
 * the registry, declare it below, and name it in the row's choice_fn with
 * choices NULL; checks, error messages ("a|b|c") and help follow. */
typedef const char *(*sr_config_choice_fn)(size_t i, const char **help);

typedef struct sr_config_key {
    const char *name;
    sr_config_type type;
    size_t offset;       /* of the field in sr_config */
    size_t size;         /* of the field (strings: capacity) */
    const char *def;     /* default as text */
    double min, max;     /* INT, FLOAT, INTLIST elements: inclusive bounds */
    const char *choices; /* ENUM: "a|b|c", or NULL with choice_fn */
    const char *help;
    sr_config_choice_fn choice_fn; /* ENUM: the choices from a registry (see above) */
} sr_config_key;

/* Choice functions the table names (defined by their registries:
 * models/backbone.c, loss/registry.c, loss/sampled.c); core needs them only
 * at link time. */
const char *sr_backbone_choice(size_t i, const char **help);
const char *sr_loss_choice(size_t i, const char **help);
const char *sr_proposal_choice(size_t i, const char **help);
const char *sr_dns_base_choice(size_t i, const char **help);

/* The table (static storage) and its length. */
const sr_config_key *sr_config_table(size_t *count);

/* Fill with the defaults of the table. */
void sr_config_defaults(sr_config *cfg);

/* Apply one key. source names where it came from (for messages), e.g.
 * "--set" or "run.ini:12". */
sr_status sr_config_set(sr_config *cfg, const char *key, const char *value, const char *source,
                        sr_error *err);

/* Apply "key=value" (the --set syntax). */
sr_status sr_config_set_assignment(sr_config *cfg, const char *assignment, sr_error *err);

/* Apply every key of an INI file. */
sr_status sr_config_load_file(sr_config *cfg, const char *path, sr_error *err);

/* Apply INI text held in memory (checkpoints store the config this way). */
sr_status sr_config_load_string(sr_config *cfg, const char *text, const char *source,
                                sr_error *err);

/* Write the resolved config as INI text, every key, one per line, grouped in
 * sections. Returns the length it needs (like snprintf). */
size_t sr_config_write_ini(const sr_config *cfg, char *buf, size_t len);

/* Print "key = value" lines, aligned, for the log. */
void sr_config_print(const sr_config *cfg, FILE *out);

/* Print the table with types, defaults, bounds and help (softrec help config). */
void sr_config_print_help(FILE *out);

/* Value of one key as text (for messages and JSON rows); returns false if
 * the key is unknown. */
bool sr_config_get(const sr_config *cfg, const char *key, char *buf, size_t len);

#endif
