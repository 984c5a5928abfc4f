/* sasrec.h: the SASRec transformer (Kang & McAuley, ICDM 2018), causal
 * self-attention over a user's item sequence; the encoding at position i is
 * the query that scores item i+1. The model, its departures from the
 * original and its random streams: docs/models.md.
 *
 * Parameters are replicated on every rank in one packed float array;
 * gradients accumulate in a second one and are all-reduced by
 * sr_sasrec_update, the only collective. The item tables are the caller's
 * (sharded, seqembed.h). Dropout flags are keyed by (seed, step, the
 * sequence's index in the global batch), so a step draws the same flags at
 * any rank count. Everything is allocated at create for n_max sequences;
 * forward/backward/update never allocate. Not thread-safe; one per rank.
 */
#ifndef SR_MODELS_SASREC_H
#define SR_MODELS_SASREC_H

#include <stdbool.h>
#include <stdint.h>

#include "comm/comm.h"
#include "core/error.h"
#include "core/mem.h"
#include "nn/optim.h"

#define SR_SASREC_MAX_LAYERS 20 /* 6 bits of dropout segment */
#define SR_SASREC_LN_EPS 1e-8

typedef struct sr_sasrec_opts {
    int64_t d, layers, heads, max_len;
    double dropout;
    bool tie;
    int64_t n_items;
    uint64_t seed;
    double init_std;
} sr_sasrec_opts;

typedef struct sr_sasrec sr_sasrec;

/* A named table for checkpoints: rows x cols floats at data (a view into the
 * model, valid until destroy). */
typedef struct sr_param_view {
    const char *name;
    float *data;
    int64_t rows, cols;
} sr_param_view;

/* d % heads == 0, 1 <= layers <= SR_SASREC_MAX_LAYERS, max_len >= 1,
 * 0 <= dropout < 1, n_max >= 1; SR_ERR_CONFIG naming the key otherwise.
 * opt is copied. Local (no communication). */
sr_status sr_sasrec_create(sr_sasrec **out, const sr_sasrec_opts *o, const sr_optim *opt,
                           int64_t n_max, sr_mem *mem, sr_error *err);
void sr_sasrec_destroy(sr_sasrec **s);

/* x: n x L x d input embeddings (L = max_len; padding rows are ignored),
 * valid: n x L (1 = real item, 0 = padding), n <= n_max. train turns
 * dropout on; step positions the dropout stream. Writes h (n x L x d, 0 at
 * padding) and keeps what backward needs. Local. */
sr_status sr_sasrec_forward(sr_sasrec *s, const float *x, const uint8_t *valid, int64_t n, bool train,
                            int64_t step, float *h, sr_error *err);

/* dh: n x L x d, dL/dh for the last forward (rows at padding are ignored).
 * Adds the weight gradients into the model's accumulators (local sums over
 * this rank's sequences) and writes dx (n x L x d, dL/dx; 0 at padding).
 * Local. */
sr_status sr_sasrec_backward(sr_sasrec *s, const float *dh, float *dx, sr_error *err);

/* Index in the global batch of this rank's first sequence (default 0):
 * keys the dropout flags (see Randomness). Set it before each forward. */
void sr_sasrec_set_first_seq(sr_sasrec *s, int64_t first);

/* Collective: sums the gradient accumulators over ranks (one all-reduce of
 * the packed gradients, in double), applies the optimiser (dense) at global
 * step t >= 1 and clears the accumulators. */
sr_status sr_sasrec_update(sr_sasrec *s, const sr_comm *c, int64_t t, sr_error *err);

/* Learning rate of the following updates (train.lr_milestones). */
void sr_sasrec_set_lr(sr_sasrec *s, double lr);

/* Named tables: the parameters ("sasrec.pos", "sasrec.l0.wqkv", ...) then
 * their optimiser state ("<name>.m", "<name>.v" as the optimiser has them).
 * Fills min(max, count) entries; returns count. */
int sr_sasrec_params(sr_sasrec *s, sr_param_view *out, int max);

/* ---- layout and internals shared with the float64 twin and the tests ---- */

/* Offsets (in floats) of every tensor in the packed parameter array. Weight
 * matrices are row-major d_in x d_out (y = x W). */
typedef struct sr_sasrec_layer_off {
    int64_t ln1_g, ln1_b, wqkv, bqkv, wo, bo, ln2_g, ln2_b, w1, b1, w2, b2;
} sr_sasrec_layer_off;

typedef struct sr_sasrec_layout {
    int64_t d, layers, heads, max_len;
    int64_t pos, lnf_g, lnf_b;
    sr_sasrec_layer_off layer[SR_SASREC_MAX_LAYERS];
    int64_t total;
} sr_sasrec_layout;

void sr_sasrec_layout_init(sr_sasrec_layout *lay, int64_t d, int64_t layers, int64_t heads,
                           int64_t max_len);

/* The model's layout, packed weights and packed gradient accumulators
 * (lay->total floats each; writable, for tests and the trainer's checks). */
const sr_sasrec_layout *sr_sasrec_layout_of(const sr_sasrec *s);
float *sr_sasrec_weights(sr_sasrec *s);
float *sr_sasrec_grads(sr_sasrec *s);

/* Keep flags (1 = keep) of dropout segment seg at step for elements
 * [e0, e0 + cnt) at rate p (see Randomness above). */
void sr_sasrec_keep(uint64_t seed, int64_t step, int seg, int64_t e0, int64_t cnt, double p,
                    uint8_t *keep);

/* Float64 twin (sasrec_ref.c): plain loops, no BLAS. w: packed weights in
 * lay's layout; sequences are global batch indices first .. first + n - 1.
 * dropout <= 0: no dropout; otherwise the flags of sr_sasrec_keep(seed,
 * step, ...). Writes h; when dh != NULL also adds the weight gradients into
 * dw (lay->total) and writes dx. Allocates its scratch with malloc. */
void sr_sasrec_ref(const sr_sasrec_layout *lay, const double *w, const double *x,
                   const uint8_t *valid, int64_t n, int64_t first, double dropout, uint64_t seed,
                   int64_t step, double *h, const double *dh, double *dw, double *dx);

/* SASRec as a backbone (sasrec_backbone.c). */
extern const struct sr_backbone_ops sr_backbone_sasrec;

#endif
