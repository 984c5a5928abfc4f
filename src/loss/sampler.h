/* sampler.h: shard-local negative sampling with exact global expected
 * counts. Q(j) ~ 1 (uniform) or (count_j + 1)^beta (popularity); k draws
 * are split into per-rank quotas k_r (sum k_r = k on every draw, E[k_r] =
 * k M_r from one shared uniform), and each rank draws its k_r from Q
 * restricted to its shard (alias table; stratified under uniform), so every
 * item's expected count is k Q(j) at any rank count. Pure: no MPI, no
 * globals. Derivation: docs/losses.md, "Negative sampler (sampler.h)".
 */
#ifndef SR_LOSS_SAMPLER_H
#define SR_LOSS_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

#include "comm/shard.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/rng.h"

/* Walker/Vose alias table over n >= 1 non-negative weights (sum > 0). */
typedef struct sr_alias {
    int64_t n;
    double *prob;   /* n: accept column i with this probability */
    int64_t *alias; /* n: otherwise return alias[i] */
} sr_alias;

sr_status sr_alias_build(sr_alias *a, const double *w, int64_t n, sr_mem *mem, sr_error *err);
void sr_alias_destroy(sr_alias *a, sr_mem *mem);
/* One draw: 3 words of r (a column by Lemire, a 53-bit coin). */
int64_t sr_alias_draw(const sr_alias *a, sr_rng *r);

typedef enum sr_proposal {
    SR_PROPOSAL_UNIFORM = 0,
    SR_PROPOSAL_POPULARITY = 1
} sr_proposal;

typedef struct sr_sampler sr_sampler;

/* Sampler of rank `rank` over the map items. popularity (items->n counts,
 * global id order) is read only here; it may be NULL for the uniform
 * proposal. beta in [0, 10]. Errors: a negative count (SR_ERR_DATA), out of
 * memory. */
sr_status sr_sampler_create(sr_sampler **out, const sr_shard *items, int rank, sr_proposal kind,
                            const int64_t *popularity, double beta, sr_mem *mem, sr_error *err);
void sr_sampler_destroy(sr_sampler **s);

sr_proposal sr_sampler_kind(const sr_sampler *s);
int64_t sr_sampler_n_local(const sr_sampler *s);

/* Quotas of k draws for the shared uniform u: quota[r] for r < p (p entries,
 * may be NULL) and this rank's quota as the return value. Identical on every
 * rank for the same (k, u). */
int64_t sr_sampler_quotas(const sr_sampler *s, int64_t k, double u, int64_t *quota);

/* log Q(j) of local row j (exact for the stored weights). */
double sr_sampler_logq(const sr_sampler *s, int64_t row);

/* Draw kr local rows into rows[0..kr) from Q restricted to the shard
 * (stratified passes under uniform, see above). kr must be 0 when the shard
 * is empty (quotas guarantee it). */
void sr_sampler_draw(const sr_sampler *s, int64_t kr, sr_rng *r, int64_t *rows);

/* Streams. Rank streams are (seed, rank, SR_STREAM_SAMPLER); quantities that
 * every rank must draw alike (the quota uniform, bpr's negatives) come from
 * the replicated stream (seed, SR_SAMPLER_SHARED_RANK, SR_STREAM_SAMPLER), a
 * rank value no real rank has. Both are positioned at block step << 32 for
 * global step `step`, so a run reproduces bit for bit and a resume at step s
 * draws what the uninterrupted run drew (2^32 blocks, 2^34 words, per step). */
#define SR_SAMPLER_SHARED_RANK 0xFFFFFFFFu
void sr_sampler_stream(sr_rng *r, uint64_t seed, int rank, int64_t step);
void sr_sampler_shared_stream(sr_rng *r, uint64_t seed, int64_t step);

#endif
