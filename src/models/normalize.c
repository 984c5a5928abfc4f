/* normalize.c: row normalisation and its Jacobian-vector product. */
#include "models/normalize.h"

#include <math.h>

void sr_rows_normalize(const float *x, int64_t n, int64_t d, float scale, float *y, float *inv_norm)
{
    for (int64_t r = 0; r < n; r++) {
        const float *xr = x + r * d;
        double ss = 0;
        for (int64_t j = 0; j < d; j++) ss += (double)xr[j] * xr[j];
        float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
        inv_norm[r] = inv;
        float f = scale * inv;
        float *yr = y + r * d;
        for (int64_t j = 0; j < d; j++) yr[j] = f * xr[j];
    }
}

void sr_rows_normalize_backward(const float *y, const float *inv_norm, int64_t n, int64_t d,
                                float scale, float *g)
{
    for (int64_t r = 0; r < n; r++) {
        const float *yr = y + r * d;
        float *gr = g + r * d;
        if (inv_norm[r] == 0.0f) {
            for (int64_t j = 0; j < d; j++) gr[j] = 0.0f;
            continue;
        }
        /* y = scale * x_hat, so x_hat . g = (y . g) / scale. */
        double dot = 0;
        for (int64_t j = 0; j < d; j++) dot += (double)yr[j] * gr[j];
        float c = (float)(dot / ((double)scale * scale));
        float f = scale * inv_norm[r];
        for (int64_t j = 0; j < d; j++) gr[j] = f * (gr[j] - c * yr[j]);
    }
}
