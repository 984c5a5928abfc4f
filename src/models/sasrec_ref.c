/* sasrec_ref.c: the float64 twin of sasrec.c. Textbook loops over one
 * sequence at a time, every intermediate kept per layer, no BLAS, no tiling,
 * no skipped prefix: what the fast path must agree with (tests) and what the
 * finite-difference checks differentiate. Same model and dropout flags as
 * sasrec.h documents. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/sasrec.h"

typedef struct ref_layer {
    double *x_in, *xh1, *rs1, *a1, *qkv, *p, *pd, *ctx, *xmid, *xh2, *rs2, *a2, *z, *f, *fo;
    uint8_t *kp, *kf, *ko; /* dropout keep flags: probs, relu, ffn out */
} ref_layer;

static double *dalloc(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }

/* y = LN(x) row by row: xh = (x - mean) * rstd, y = xh * g + b. */
static void ref_ln(const double *x, const double *g, const double *b, int64_t rows, int64_t d,
                   double *xh, double *rs, double *y)
{
    for (int64_t r = 0; r < rows; r++) {
        const double *xr = x + r * d;
        double mu = 0, var = 0;
        for (int64_t k = 0; k < d; k++) mu += xr[k];
        mu /= (double)d;
        for (int64_t k = 0; k < d; k++) var += (xr[k] - mu) * (xr[k] - mu);
        var /= (double)d;
        rs[r] = 1.0 / sqrt(var + SR_SASREC_LN_EPS);
        for (int64_t k = 0; k < d; k++) {
            xh[r * d + k] = (xr[k] - mu) * rs[r];
            y[r * d + k] = xh[r * d + k] * g[k] + b[k];
        }
    }
}

/* dx = dLN(dy); dg += dy * xh, db += dy. */
static void ref_ln_back(const double *dy, const double *xh, const double *rs, const double *g,
                        int64_t rows, int64_t d, double *dx, double *dg, double *db)
{
    for (int64_t r = 0; r < rows; r++) {
        double m1 = 0, m2 = 0;
        for (int64_t k = 0; k < d; k++) {
            double t = dy[r * d + k] * g[k];
            m1 += t;
            m2 += t * xh[r * d + k];
            dg[k] += dy[r * d + k] * xh[r * d + k];
            db[k] += dy[r * d + k];
        }
        m1 /= (double)d;
        m2 /= (double)d;
        for (int64_t k = 0; k < d; k++)
            dx[r * d + k] = rs[r] * (dy[r * d + k] * g[k] - m1 - xh[r * d + k] * m2);
    }
}

/* y (rows x m) = x (rows x k) W (k x m) + b. */
static void ref_lin(const double *x, const double *W, const double *b, int64_t rows, int64_t k,
                    int64_t m, double *y)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < m; j++) {
            double acc = b[j];
            for (int64_t i = 0; i < k; i++) acc += x[r * k + i] * W[i * m + j];
            y[r * m + j] = acc;
        }
}

/* Backward of ref_lin: dW += x^T dy, db += colsum(dy), dx = dy W^T (dx may be NULL). */
static void ref_lin_back(const double *x, const double *W, const double *dy, int64_t rows,
                         int64_t k, int64_t m, double *dx, double *dW, double *db)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < m; j++) {
            double g = dy[r * m + j];
            db[j] += g;
            for (int64_t i = 0; i < k; i++) dW[i * m + j] += x[r * k + i] * g;
        }
    if (!dx) return;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < k; i++) {
            double acc = 0;
            for (int64_t j = 0; j < m; j++) acc += dy[r * m + j] * W[i * m + j];
            dx[r * k + i] = acc;
        }
}

void sr_sasrec_ref(const sr_sasrec_layout *lay, const double *w, const double *x,
                   const uint8_t *valid, int64_t n, int64_t first, double dropout, uint64_t seed,
                   int64_t step, double *h, const double *dh, double *dw, double *dx)
{
    const int64_t d = lay->d, L = lay->max_len, H = lay->heads, dhd = d / H, NL = lay->layers;
    const int64_t rows = n * L;
    const bool drop = dropout > 0;
    const double keep_scale = drop ? 1.0 / (1.0 - dropout) : 1.0, sq = sqrt((double)d);
    const double att_scale = 1.0 / sqrt((double)dhd);
    ref_layer *ly = calloc((size_t)NL, sizeof *ly);
    double *x0 = dalloc(rows * d), *xf = dalloc(rows * d), *xhf = dalloc(rows * d), *rsf = dalloc(rows);
    uint8_t *k0 = calloc((size_t)(rows * d), 1);
    /* Flags for one sequence at a time, in the element numbering of sasrec.h. */
    for (int64_t s = 0; s < n; s++) {
        int64_t gs = first + s;
        if (drop) sr_sasrec_keep(seed, step, 0, gs * L * d, L * d, dropout, k0 + s * L * d);
        for (int64_t i = 0; i < L; i++)
            for (int64_t k = 0; k < d; k++) {
                int64_t e = (s * L + i) * d + k;
                double v = sq * x[e] + w[lay->pos + i * d + k];
                if (drop) v *= k0[e] * keep_scale;
                x0[e] = valid[s * L + i] ? v : 0.0;
            }
    }
    const double *cur = x0;
    for (int64_t l = 0; l < NL; l++) {
        const sr_sasrec_layer_off *o = &lay->layer[l];
        ref_layer *R = &ly[l];
        R->x_in = dalloc(rows * d);
        memcpy(R->x_in, cur, (size_t)(rows * d) * sizeof(double));
        R->xh1 = dalloc(rows * d), R->rs1 = dalloc(rows), R->a1 = dalloc(rows * d);
        R->qkv = dalloc(rows * 3 * d), R->p = dalloc(n * H * L * L), R->pd = dalloc(n * H * L * L);
        R->ctx = dalloc(rows * d), R->xmid = dalloc(rows * d), R->xh2 = dalloc(rows * d);
        R->rs2 = dalloc(rows), R->a2 = dalloc(rows * d), R->z = dalloc(rows * d), R->f = dalloc(rows * d);
        R->fo = dalloc(rows * d);
        R->kp = calloc((size_t)(n * H * L * L), 1);
        R->kf = calloc((size_t)(rows * d), 1);
        R->ko = calloc((size_t)(rows * d), 1);
        ref_ln(R->x_in, w + o->ln1_g, w + o->ln1_b, rows, d, R->xh1, R->rs1, R->a1);
        ref_lin(R->a1, w + o->wqkv, w + o->bqkv, rows, d, 3 * d, R->qkv);
        for (int64_t s = 0; s < n; s++)
            for (int64_t hh = 0; hh < H; hh++) {
                int64_t base = (s * H + hh) * L * L;
                if (drop)
                    sr_sasrec_keep(seed, step, (int)(1 + 3 * l), ((first + s) * H + hh) * L * L, L * L,
                                   dropout, R->kp + base);
                for (int64_t i = 0; i < L; i++) {
                    double *pr = R->p + base + i * L;
                    if (!valid[s * L + i]) continue; /* padding query: attends to nothing */
                    double mx = -INFINITY;
                    for (int64_t j = 0; j <= i; j++) {
                        if (!valid[s * L + j]) continue;
                        double acc = 0;
                        for (int64_t k = 0; k < dhd; k++)
                            acc += R->qkv[(s * L + i) * 3 * d + hh * dhd + k] *
                                   R->qkv[(s * L + j) * 3 * d + d + hh * dhd + k];
                        pr[j] = acc * att_scale;
                        if (pr[j] > mx) mx = pr[j];
                    }
                    double sum = 0;
                    for (int64_t j = 0; j <= i; j++)
                        if (valid[s * L + j]) sum += (pr[j] = exp(pr[j] - mx));
                    for (int64_t j = 0; j <= i; j++) {
                        if (valid[s * L + j]) pr[j] /= sum;
                        R->pd[base + i * L + j] = pr[j] * (drop ? R->kp[base + i * L + j] * keep_scale : 1.0);
                    }
                    for (int64_t k = 0; k < dhd; k++) {
                        double acc = 0;
                        for (int64_t j = 0; j <= i; j++)
                            acc += R->pd[base + i * L + j] * R->qkv[(s * L + j) * 3 * d + 2 * d + hh * dhd + k];
                        R->ctx[(s * L + i) * d + hh * dhd + k] = acc;
                    }
                }
            }
        ref_lin(R->ctx, w + o->wo, w + o->bo, rows, d, d, R->xmid);
        for (int64_t e = 0; e < rows * d; e++) R->xmid[e] += R->x_in[e];
        ref_ln(R->xmid, w + o->ln2_g, w + o->ln2_b, rows, d, R->xh2, R->rs2, R->a2);
        ref_lin(R->a2, w + o->w1, w + o->b1, rows, d, d, R->z);
        for (int64_t s = 0; s < n && drop; s++) {
            sr_sasrec_keep(seed, step, (int)(2 + 3 * l), (first + s) * L * d, L * d, dropout, R->kf + s * L * d);
            sr_sasrec_keep(seed, step, (int)(3 + 3 * l), (first + s) * L * d, L * d, dropout, R->ko + s * L * d);
        }
        for (int64_t e = 0; e < rows * d; e++)
            R->f[e] = (R->z[e] > 0 ? R->z[e] : 0.0) * (drop ? R->kf[e] * keep_scale : 1.0);
        ref_lin(R->f, w + o->w2, w + o->b2, rows, d, d, R->fo);
        for (int64_t e = 0; e < rows * d; e++)
            xf[e] = R->xmid[e] + R->fo[e] * (drop ? R->ko[e] * keep_scale : 1.0);
        cur = xf; /* the next layer copies it into its own x_in before overwriting xf */
    }
    ref_ln(cur, w + lay->lnf_g, w + lay->lnf_b, rows, d, xhf, rsf, h);
    for (int64_t r = 0; r < rows; r++)
        if (!valid[r]) memset(h + r * d, 0, (size_t)d * sizeof(double));
    if (dh) {
        double *g = dalloc(rows * d), *t = dalloc(rows * d), *dqkv = dalloc(rows * 3 * d);
        double *dctx = dalloc(rows * d), *dp = dalloc(L);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t k = 0; k < d; k++) t[r * d + k] = valid[r] ? dh[r * d + k] : 0.0;
        ref_ln_back(t, xhf, rsf, w + lay->lnf_g, rows, d, g, dw + lay->lnf_g, dw + lay->lnf_b);
        for (int64_t l = NL - 1; l >= 0; l--) {
            const sr_sasrec_layer_off *o = &lay->layer[l];
            ref_layer *R = &ly[l];
            /* feed-forward: x = xmid + drop(W2 drop(relu(W1 a2))) */
            for (int64_t e = 0; e < rows * d; e++) t[e] = g[e] * (drop ? R->ko[e] * keep_scale : 1.0);
            double *df = dalloc(rows * d), *da = dalloc(rows * d);
            ref_lin_back(R->f, w + o->w2, t, rows, d, d, df, dw + o->w2, dw + o->b2);
            for (int64_t e = 0; e < rows * d; e++)
                df[e] = R->z[e] > 0 ? df[e] * (drop ? R->kf[e] * keep_scale : 1.0) : 0.0;
            ref_lin_back(R->a2, w + o->w1, df, rows, d, d, da, dw + o->w1, dw + o->b1);
            ref_ln_back(da, R->xh2, R->rs2, w + o->ln2_g, rows, d, t, dw + o->ln2_g, dw + o->ln2_b);
            for (int64_t e = 0; e < rows * d; e++) g[e] += t[e]; /* g = dL/dxmid */
            /* attention: xmid = x_in + ctx Wo + bo */
            ref_lin_back(R->ctx, w + o->wo, g, rows, d, d, dctx, dw + o->wo, dw + o->bo);
            memset(dqkv, 0, (size_t)(rows * 3 * d) * sizeof(double));
            for (int64_t s = 0; s < n; s++)
                for (int64_t hh = 0; hh < H; hh++) {
                    int64_t base = (s * H + hh) * L * L;
                    for (int64_t i = 0; i < L; i++) {
                        if (!valid[s * L + i]) continue;
                        const double *dci = dctx + (s * L + i) * d + hh * dhd;
                        double dot = 0;
                        for (int64_t j = 0; j <= i; j++) {
                            const double *vj = R->qkv + (s * L + j) * 3 * d + 2 * d + hh * dhd;
                            double acc = 0;
                            for (int64_t k = 0; k < dhd; k++) acc += dci[k] * vj[k];
                            dp[j] = acc * (drop ? R->kp[base + i * L + j] * keep_scale : 1.0);
                            dot += dp[j] * R->p[base + i * L + j];
                            double pdij = R->pd[base + i * L + j];
                            for (int64_t k = 0; k < dhd; k++)
                                dqkv[(s * L + j) * 3 * d + 2 * d + hh * dhd + k] += pdij * dci[k];
                        }
                        for (int64_t j = 0; j <= i; j++) {
                            double ds = R->p[base + i * L + j] * (dp[j] - dot) * att_scale;
                            for (int64_t k = 0; k < dhd; k++) {
                                dqkv[(s * L + i) * 3 * d + hh * dhd + k] +=
                                    ds * R->qkv[(s * L + j) * 3 * d + d + hh * dhd + k];
                                dqkv[(s * L + j) * 3 * d + d + hh * dhd + k] +=
                                    ds * R->qkv[(s * L + i) * 3 * d + hh * dhd + k];
                            }
                        }
                    }
                }
            ref_lin_back(R->a1, w + o->wqkv, dqkv, rows, d, 3 * d, da, dw + o->wqkv, dw + o->bqkv);
            ref_ln_back(da, R->xh1, R->rs1, w + o->ln1_g, rows, d, t, dw + o->ln1_g, dw + o->ln1_b);
            for (int64_t e = 0; e < rows * d; e++) g[e] += t[e]; /* g = dL/dx_in */
            free(df);
            free(da);
        }
        for (int64_t r = 0; r < rows; r++) {
            int64_t i = r % L;
            for (int64_t k = 0; k < d; k++) {
                double gv = valid[r] ? g[r * d + k] * (drop ? k0[r * d + k] * keep_scale : 1.0) : 0.0;
                dw[lay->pos + i * d + k] += gv;
                dx[r * d + k] = sq * gv;
            }
        }
        free(g), free(t), free(dqkv), free(dctx), free(dp);
    }
    for (int64_t l = 0; l < NL; l++) {
        ref_layer *R = &ly[l];
        free(R->x_in), free(R->xh1), free(R->rs1), free(R->a1), free(R->qkv), free(R->p), free(R->pd);
        free(R->ctx), free(R->xmid), free(R->xh2), free(R->rs2), free(R->a2), free(R->z), free(R->f);
        free(R->fo), free(R->kp), free(R->kf), free(R->ko);
    }
    free(ly), free(x0), free(xf), free(xhf), free(rsf), free(k0);
}
