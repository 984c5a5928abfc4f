/* normalize.h: cosine scoring with a temperature, as a pure row transform.
 *
 * With model.temperature = tau > 0 the score of (u, i) is
 *     cos(q_u, v_i) / tau = (q_u / (|q_u| tau)) . (v_i / |v_i|),
 * the form sampled-softmax recommenders train best with (bounded logits, one
 * scale knob). It is applied outside the loss: rows are mapped forward with
 * sr_rows_normalize (y = s x / |x|) and gradients pulled back with
 * sr_rows_normalize_backward (dx = s (dy - y_hat (y_hat . dy)) / |x|, where
 * y_hat = x / |x|). Zero rows map to zero and get zero gradient. Pure
 * kernels: no MPI, no allocation; memory-bound (two passes over n x d).
 */
#ifndef SR_MODELS_NORMALIZE_H
#define SR_MODELS_NORMALIZE_H

#include <stdint.h>

/* y[r] = scale * x[r] / |x[r]| for n rows of width d; inv_norm[r] = 1/|x[r]|
 * (0 for a zero row) is kept for the backward pass. x and y may alias. */
void sr_rows_normalize(const float *x, int64_t n, int64_t d, float scale, float *y, float *inv_norm);

/* In place: g (dL/dy, n x d) becomes dL/dx, given y (the forward output) and
 * inv_norm from the forward pass. */
void sr_rows_normalize_backward(const float *y, const float *inv_norm, int64_t n, int64_t d,
                                float scale, float *g);

#endif
