/* vexp.h: the element-wise passes over a logit tile (max, sum of exp, exp
 * in place) that the exact softmax runs between its SGEMMs.
 *
 * Contract
 *  - exp is computed in float by a Cephes-style kernel over 8 lanes (GCC/Clang
 *    vector extensions, vexp.c): Cody-Waite reduction by ln 2, degree-5
 *    polynomial, scale by 2^n through the exponent bits. Max relative error
 *    8e-8 measured over [-87, 88] (under 1 ulp; test_softmax asserts 2e-7).
 *    Arguments below -87 give exactly 0 (the true value is < 1.7e-38: against
 *    a sum >= 1 that is far below float resolution). NaN arguments are not
 *    propagated: sr_vexp_row_lse flags them instead.
 *  - Sums of exp are accumulated in double (8 lanes), so the only float
 *    rounding in a sum is that of each term (relative <= 2e-7).
 *  - Rows need no alignment; tails shorter than 8 are padded with -inf, so
 *    every element goes through the same arithmetic wherever it sits.
 *  - The polynomial uses FMA when the target has it (-march=native on x86-64
 *    with FMA), plain multiply-add otherwise: the last bit can differ
 *    between such builds, the error bound above holds for both.
 * Pure functions over caller arrays; no allocation, no globals.
 */
#ifndef SR_NN_VEXP_H
#define SR_NN_VEXP_H

#include <stdint.h>

/* One pass over row[0..n): *shift holds the running maximum on entry (-inf
 * to start) and max(*shift, row) on return; returns sum_j exp(row[j] -
 * *shift) accumulated in double. The shift is raised lazily (accumulators
 * rescaled) when a vector of 8 exceeds it, which after the first few
 * vectors of a catalogue is rare, so there is no separate max pass. Sets
 * *bad = 1 (and leaves it otherwise) when the row holds a NaN or +inf. */
double sr_vexp_row_lse(const float *row, int64_t n, float *shift, int *bad);

/* row[j] = exp(row[j] - shift) * scale, in place. Requires row[j] - shift
 * <= 88 (the softmax passes the global maximum, so it is <= 0); larger
 * arguments are not clamped here, to keep the pass short. */
void sr_vexp_row_scale(float *row, int64_t n, float shift, float scale);

/* y[j] = exp(x[j]) with the same kernel (tests; x and y may alias). */
void sr_vexp_array(const float *x, float *y, int64_t n);

#endif
