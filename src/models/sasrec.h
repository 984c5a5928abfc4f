/* sasrec.h: the SASRec backbone (Kang & McAuley, ICDM 2018): a causal
 * self-attention transformer over a user's item sequence; the encoding at
 * position i is the query that scores item i+1 (DESIGN.md section 2, step 1).
 *
 * Model (choices follow the TF original where RecBole differs; see below):
 *   x0[i] = valid[i] * drop(sqrt(d) * e[i] + pos[i])     e: item rows from the caller
 *   for each of `layers` blocks (pre-LN, as the original):
 *     a  = LN1(x);  [q k v] = a Wqkv + bqkv             (d -> 3d, heads of d/heads)
 *     ctx_h = drop(softmax(q_h k_h^T / sqrt(dh) + causal/padding mask)) v_h
 *     x  = x + ctx Wo + bo
 *     a  = LN2(x);  x = x + drop(drop(relu(a W1 + b1)) W2 + b2)   (inner size d)
 *   h[i] = valid[i] * LNf(x[i])                          (final LayerNorm)
 * - Input scaled by sqrt(d) (TF original and its PyTorch port; RecBole does
 *   not scale): with tied tables the item rows are small next to the
 *   learned positions otherwise.
 * - Pre-LN blocks with a final LN (original), but queries, keys and values
 *   all come from LN1(x) and the residual adds to x itself (standard pre-LN;
 *   the original takes keys from the un-normalised x and adds the residual
 *   to the normalised queries, a quirk we do not copy).
 * - Feed-forward inner size d with ReLU (original; RecBole: 256 + GELU).
 * - Dropout (model.dropout) on the scaled input, the attention
 *   probabilities, the ReLU output and the feed-forward output (original).
 * - Masks: key j is visible to query i iff j <= i and valid[j]; a padding
 *   query (valid[i] = 0) attends to nothing and its h row is 0. Sequences
 *   are left-padded; the attention GEMMs skip the padded prefix of each
 *   sequence and the upper triangle (row tiles of 64).
 * - LayerNorm eps 1e-8 (original), biased variance.
 * - Positions are absolute in the window of max_len: the most recent item
 *   sits at max_len - 1 whatever the sequence length (original).
 * - Init: W* Xavier-uniform, biases 0, LN gains 1 and biases 0, pos
 *   N(0, init_std^2); Philox stream (seed, 100 + table, SR_STREAM_INIT), the
 *   same on every rank.
 *
 * Parameters are replicated on every rank in one packed float array (layout
 * below); gradients accumulate in a second one and are all-reduced in one
 * collective by sr_sasrec_update. The item tables are the caller's (sharded,
 * see seqembed.h): `tie` and `n_items` are recorded for the caller only.
 *
 * Randomness: dropout flags come from the Philox stream (seed, 0,
 * SR_STREAM_DROPOUT) at counter ((step << 6 | segment) << 32) + element/8,
 * two 16-bit draws a 32-bit word (so the rate is quantised to 1/65536).
 * Segment 0 is the input, 1 + 3l + {0, 1, 2} the attention probabilities,
 * ReLU output and feed-forward output of block l. Elements are numbered by
 * the sequence's index in the *global* batch (sr_sasrec_set_first_seq), not
 * by rank: random access makes a step draw the same flags at any rank count
 * and split (so dropout runs are rank-count invariant too), a resumed run
 * draws what the uninterrupted one drew, and the float64 twin draws the same.
 *
 * Memory: everything is allocated at create for n_max sequences (about
 * (9 d + heads L) L floats a sequence a block, plus L^2 heads bytes of
 * dropout flags a block when dropout > 0); forward/backward/update never
 * allocate. Not thread-safe; one model per rank.
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
