/* lse.h: the log-sum-exp triple and its associative merge (pure, no MPI).
 *
 * A triple summarises a set of logits z_j for one query:
 *   max    = max_j z_j            (-inf for an empty set)
 *   sum    = sum_j exp(z_j - max) (0 for an empty set)
 *   target = the target's logit    (0 from shards that do not own it: the
 *                                   merge adds, so exactly one owner counts)
 * log Z = max + log(sum). Merging is associative and commutative up to
 * rounding, in double, and treats empty sets exactly.
 */
#ifndef SR_CORE_LSE_H
#define SR_CORE_LSE_H

#include <stdint.h>

typedef struct sr_lse {
    double max;
    double sum;
    double target;
} sr_lse;

/* The empty-set triple. */
static inline sr_lse sr_lse_empty(void)
{
    sr_lse e = {-__builtin_inf(), 0.0, 0.0};
    return e;
}

/* inout[i] = merge(inout[i], in[i]) for i < n. */
void sr_lse_merge(sr_lse *inout, const sr_lse *in, int64_t n);

/* log Z of a triple (-inf for the empty set). */
double sr_lse_value(const sr_lse *t);

#endif
