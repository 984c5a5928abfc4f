/* lse_bias.c: exact log Z and the SSM / NCE estimates over the sharded
 * catalogue (lse_bias.h). */
#include "analysis/lse_bias.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "comm/collectives.h"
#include "loss/softmax.h"

#define NCE_ITERS 50
#define STEP_POS ((int64_t)1 << 31)
#define STEP_NOISE (((int64_t)1 << 31) + ((int64_t)1 << 24))

static double sig_(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

/* One safeguarded Newton step on the decreasing J'(c) = g (derivative gp). */
static void nce_step_(double *c, double *lo, double *hi, double g, double gp)
{
    if (g > 0) *lo = *c;
    else *hi = *c;
    double cn = gp < 0 ? *c - g / gp : NAN;
    *c = cn > *lo && cn < *hi ? cn : 0.5 * (*lo + *hi);
}

double sr_lse_ssm_estimate(const double *s, const double *logq, int64_t k)
{
    double mx = -INFINITY, sum = 0;
    for (int64_t i = 0; i < k; i++) mx = fmax(mx, s[i] - logq[i]);
    for (int64_t i = 0; i < k; i++) sum += exp(s[i] - logq[i] - mx);
    return mx + log(sum) - log((double)k);
}

double sr_lse_nce_estimate(double ux, const double *u, int64_t k)
{
    double lo = ux, hi = ux;
    for (int64_t i = 0; i < k; i++) {
        lo = fmin(lo, u[i]);
        hi = fmax(hi, u[i]);
    }
    hi += log((double)k);
    double c = 0.5 * (lo + hi);
    for (int it = 0; it < NCE_ITERS; it++) {
        double f = 0, fp = 0;
        for (int64_t i = 0; i < k; i++) {
            double p = sig_(u[i] - c);
            f += p;
            fp += p * (1 - p);
        }
        double px = sig_(c - ux);
        nce_step_(&c, &lo, &hi, f - px, -fp - px * (1 - px));
    }
    return c;
}

/* Log-sum-exp of the negatives' u, without those equal to the target t when
 * hits are removed (the empty triple when none is left). */
static sr_lse neg_lse_(const double *u, const int64_t *id, int64_t n, int64_t t, bool remove_hits)
{
    sr_lse l = sr_lse_empty();
    for (int64_t e = 0; e < n; e++)
        if (!(remove_hits && id[e] == t)) l.max = fmax(l.max, u[e]);
    for (int64_t e = 0; e < n; e++)
        if (!(remove_hits && id[e] == t)) l.sum += exp(u[e] - l.max);
    return l;
}

static double logaddexp_(double a, double b)
{
    double m = fmax(a, b);
    return m == -INFINITY ? m : m + log(exp(a - m) + exp(b - m));
}

double sr_lse_ssm_logd(double st, const double *u, const int64_t *id, int64_t n, int64_t t, bool remove_hits)
{
    sr_lse l = neg_lse_(u, id, n, t, remove_hits);
    return logaddexp_(st, sr_lse_value(&l));
}

double sr_lse_ssm_grad(double st, double logd, const double *u, const int64_t *id, int64_t n, int64_t t,
                       bool remove_hits, double *w)
{
    for (int64_t e = 0; e < n; e++) w[e] = remove_hits && id[e] == t ? 0.0 : exp(u[e] - logd);
    return exp(st - logd);
}

double sr_lse_nce_grad(double s, double logkq, double logz, bool remove_hits)
{
    double sg = sig_(s - logkq), p = exp(s - logz);
    return exp(logkq) * sg * (remove_hits ? 1.0 - p : 1.0) - p * (1.0 - sg);
}

double sr_lse_nce_grad_limit(double s, double logz, bool remove_hits)
{
    double p = exp(s - logz);
    return exp(s) * (remove_hits ? 1.0 - p : 1.0) - p;
}

double sr_lse_grad_accum(double *sum, double *tmp, const int64_t *rows, const double *w, int64_t n)
{
    double sq = 0;
    for (int64_t e = 0; e < n; e++) tmp[rows[e]] += w[e];
    for (int64_t e = 0; e < n; e++) {
        double g = tmp[rows[e]];
        if (g == 0.0) continue; /* a repeat already folded in (or a zero weight) */
        sq += g * g;
        sum[rows[e]] += g;
        tmp[rows[e]] = 0.0;
    }
    return sq;
}

double sr_lse_sqnorm_unbiased(double sq_of_sum, double sum_of_sq, int64_t reps)
{
    return (sq_of_sum - sum_of_sq) / ((double)reps * (double)(reps - 1));
}

double sr_lse_sqnorm_unbiased_cv(double sq_of_sum, double sum_of_sq, double sum_dot, double pp, int64_t reps)
{
    return sr_lse_sqnorm_unbiased(sq_of_sum, sum_of_sq, reps) - 2.0 * sum_dot / (double)reps + pp;
}

typedef struct scratch_ {
    sr_softmax_ws *ws;
    int64_t *zero, *rows;
    double *frac, *pos, *lq, *mm, *fs, *cc, *lo, *hi, *acc, *u, *wt, *gsum, *gtmp, *gfs;
    int64_t *gidx;
    sr_lse *lse;
    float *vc, *z, *sl;
} scratch_;

static void scratch_free_(scratch_ *s, sr_mem *mem)
{
    sr_softmax_ws_destroy(&s->ws);
    void *bufs[] = {s->zero, s->rows, s->frac, s->pos, s->lq, s->mm, s->fs,   s->cc,   s->lo, s->hi,
                    s->acc,  s->u,    s->wt,   s->gsum, s->lse, s->vc, s->z, s->sl, s->gtmp, s->gidx, s->gfs};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sr_mem_free(mem, bufs[i]);
}

/* Buffers of both analyses; nacc doubles of moments, and with groups > 0
 * (the gradient bias) the per-query, per-group running sums of the SSM
 * gradients over the shard (b x n_local x groups) and their b (1 + 3 groups)
 * reduced sums. */
static sr_status scratch_alloc_(scratch_ *w, int64_t b, int64_t d, int64_t kmax, int64_t nl, int p, int64_t nacc,
                                int64_t groups, sr_mem *mem, sr_error *err)
{
    memset(w, 0, sizeof *w);
    sr_status st = sr_softmax_ws_create(&w->ws, b, 4096, mem, err);
    if (st != SR_OK) return st;
    w->zero = sr_mem_calloc(mem, (size_t)b, sizeof(int64_t), "lse-bias targets", err);
    w->rows = sr_mem_calloc(mem, (size_t)kmax, sizeof(int64_t), "lse-bias sample", err);
    w->frac = sr_mem_calloc(mem, (size_t)(b * p), sizeof(double), "lse-bias shard shares", err);
    w->pos = sr_mem_calloc(mem, (size_t)(3 * b), sizeof(double), "lse-bias positives", err);
    w->lq = sr_mem_calloc(mem, (size_t)kmax, sizeof(double), "lse-bias log counts", err);
    w->mm = sr_mem_calloc(mem, (size_t)(2 * b), sizeof(double), "lse-bias brackets", err);
    w->fs = sr_mem_calloc(mem, (size_t)(2 * b), sizeof(double), "lse-bias NCE sums", err); /* f, f' per query */
    w->cc = sr_mem_calloc(mem, (size_t)b, sizeof(double), "lse-bias c", err);
    w->lo = sr_mem_calloc(mem, (size_t)b, sizeof(double), "lse-bias lo", err);
    w->hi = sr_mem_calloc(mem, (size_t)b, sizeof(double), "lse-bias hi", err);
    w->acc = sr_mem_calloc(mem, (size_t)nacc, sizeof(double), "lse-bias moments", err);
    w->lse = sr_mem_calloc(mem, (size_t)b, sizeof(sr_lse), "lse-bias lse", err);
    w->vc = sr_mem_calloc(mem, (size_t)(kmax * d), sizeof(float), "lse-bias rows", err);
    w->z = sr_mem_calloc(mem, (size_t)(b * kmax), sizeof(float), "lse-bias scores", err);
    w->sl = sr_mem_calloc(mem, (size_t)(nl + 1), sizeof(float), "lse-bias shard scores", err);
    bool ok = w->zero && w->rows && w->frac && w->pos && w->lq && w->mm && w->fs && w->cc && w->lo && w->hi &&
              w->acc && w->lse && w->vc && w->z && w->sl;
    if (ok && groups > 0) {
        w->u = sr_mem_calloc(mem, (size_t)kmax, sizeof(double), "grad-bias logits", err);
        w->wt = sr_mem_calloc(mem, (size_t)kmax + 1, sizeof(double), "grad-bias weights", err);
        w->gsum = sr_mem_calloc(mem, (size_t)(b * nl * groups + 1), sizeof(double), "grad-bias gradient sums", err);
        w->gfs = sr_mem_calloc(mem, (size_t)(b * (1 + 3 * groups)), sizeof(double), "grad-bias sums", err);
        w->gtmp = sr_mem_calloc(mem, (size_t)nl + 1, sizeof(double), "grad-bias gradient", err);
        w->gidx = sr_mem_calloc(mem, (size_t)kmax + 1, sizeof(int64_t), "grad-bias rows", err);
        ok = w->u && w->wt && w->gsum && w->gtmp && w->gidx && w->gfs;
    }
    if (!ok) {
        scratch_free_(w, mem);
        return err ? err->code : SR_ERR_NOMEM;
    }
    return SR_OK;
}

/* Exact log Z per query into lz[b] and every shard's share of Z into frac. */
static sr_status exact_logz_(const sr_comm *c, const sr_shard *items, const float *q, int64_t b, int64_t d,
                             const float *v, int64_t nl, scratch_ *w, double *lz, sr_error *err)
{
    const int p = c->size;
    SR_TRY(sr_softmax_partial(q, b, d, v, nl, items, c->rank, w->zero, w->ws, w->lse, err));
    for (int64_t i = 0; i < b; i++) w->mm[i] = sr_lse_value(&w->lse[i]);
    SR_TRY(sr_comm_allreduce_lse(c, w->lse, b, err));
    memset(w->frac, 0, (size_t)(b * p) * sizeof(double));
    for (int64_t i = 0; i < b; i++) {
        lz[i] = sr_lse_value(&w->lse[i]);
        if (!isfinite(lz[i]))
            return sr_error_set(err, SR_ERR_NUMERIC, __FILE__, __LINE__, "lse-bias: log Z of query %lld is %g",
                                (long long)i, lz[i]);
        w->frac[i * p + c->rank] = isfinite(w->mm[i]) ? exp(w->mm[i] - lz[i]) : 0.0;
    }
    return sr_comm_allreduce_sum(c, w->frac, b * p, err);
}

/* Positive draws of repetition r: pos[3i] = s_x, pos[3i+1] = log Q(x),
 * pos[3i+2] = x (global id). */
static sr_status draw_positives_(const sr_comm *c, const sr_shard *items, const sr_sampler *smp, const float *q,
                                 int64_t b, int64_t d, const float *v, int64_t nl, uint64_t seed, int64_t r,
                                 scratch_ *w, sr_error *err)
{
    sr_rng ss;
    sr_sampler_shared_stream(&ss, seed, STEP_POS + r);
    memset(w->pos, 0, (size_t)(3 * b) * sizeof(double));
    for (int64_t i = 0; i < b; i++) {
        double u1 = sr_rng_uniform(&ss), u2 = sr_rng_uniform(&ss);
        int owner = -1;
        double cum = 0;
        for (int p = 0; p < c->size; p++) {
            double f = w->frac[i * c->size + p];
            if (f <= 0) continue;
            owner = p; /* the last shard with mass catches rounding */
            cum += f;
            if (u1 < cum) break;
        }
        if (owner != c->rank) continue;
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)nl, (int)d, 1.0f, v, (int)d, q + i * d, 1, 0.0f, w->sl, 1);
        double mx = -INFINITY, tot = 0;
        for (int64_t j = 0; j < nl; j++) mx = fmax(mx, w->sl[j]);
        for (int64_t j = 0; j < nl; j++) tot += exp(w->sl[j] - mx);
        double goal = u2 * tot, run = 0;
        int64_t x = nl - 1;
        for (int64_t j = 0; j < nl; j++) {
            run += exp(w->sl[j] - mx);
            if (goal < run) {
                x = j;
                break;
            }
        }
        w->pos[3 * i] = w->sl[x];
        w->pos[3 * i + 1] = sr_sampler_logq(smp, x);
        w->pos[3 * i + 2] = (double)sr_shard_global(items, c->rank, x);
    }
    return sr_comm_allreduce_sum(c, w->pos, 3 * b, err);
}

/* Noise sample (k, repetition r, index ki) as in training: this rank's quota
 * kr into rows, lq = log(k Q), z = the b x kr float logits. Returns kr. */
static int64_t draw_noise_(const sr_comm *c, const sr_sampler *smp, const float *q, int64_t b, int64_t d,
                           const float *v, int64_t k, int64_t ki, int64_t nk, uint64_t seed, int64_t r, scratch_ *w)
{
    const double logk = log((double)k);
    sr_rng ss, rs;
    sr_sampler_shared_stream(&ss, seed, STEP_NOISE + r * nk + ki);
    sr_sampler_stream(&rs, seed, c->rank, STEP_NOISE + r * nk + ki);
    int64_t kr = sr_sampler_quotas(smp, k, sr_rng_uniform(&ss), NULL);
    sr_sampler_draw(smp, kr, &rs, w->rows);
    for (int64_t e = 0; e < kr; e++) {
        memcpy(w->vc + e * d, v + w->rows[e] * d, (size_t)d * sizeof(float));
        w->lq[e] = logk + sr_sampler_logq(smp, w->rows[e]);
    }
    if (kr > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b, (int)kr, (int)d, 1.0f, q, (int)d, w->vc, (int)d,
                    0.0f, w->z, (int)kr);
    return kr;
}

static sr_status check_args_(const sr_comm *c, const sr_shard *items, int64_t b, int64_t d, const int64_t *ks,
                             int64_t nk, int64_t reps, int64_t min_reps, int64_t *kmax, sr_error *err)
{
    if (b < 1 || d < 1 || nk < 1 || reps < min_reps || items->p != c->size)
        SR_FAIL(err, SR_ERR_INTERNAL, "lse-bias: batch %lld, dim %lld, %lld k values, %lld repetitions (>= %lld)",
                (long long)b, (long long)d, (long long)nk, (long long)reps, (long long)min_reps);
    *kmax = 0;
    for (int64_t i = 0; i < nk; i++) {
        if (ks[i] < 1) SR_FAIL(err, SR_ERR_CONFIG, "lse-bias: sample size %lld (>= 1)", (long long)ks[i]);
        *kmax = ks[i] > *kmax ? ks[i] : *kmax;
    }
    return SR_OK;
}

sr_status sr_lse_bias_run(const sr_comm *c, const sr_shard *items, const sr_sampler *smp, const float *q,
                          int64_t b, int64_t d, const float *v, const int64_t *ks, int64_t nk, int64_t reps,
                          uint64_t seed, sr_mem *mem, double *logz, sr_lse_bias_row *rows, sr_error *err)
{
    int64_t kmax;
    SR_TRY(check_args_(c, items, b, d, ks, nk, reps, 1, &kmax, err));
    const int64_t nl = sr_shard_count(items, c->rank);
    scratch_ w;
    SR_TRY(scratch_alloc_(&w, b, d, kmax, nl, c->size, 4 * nk * b, 0, mem, err));
    sr_status st;
    /* cc becomes the NCE iterate below: keep log Z apart. */
    double *lzv = sr_mem_calloc(mem, (size_t)b, sizeof(double), "lse-bias log Z", err);
    if (!lzv) {
        scratch_free_(&w, mem);
        return err ? err->code : SR_ERR_NOMEM;
    }
    st = exact_logz_(c, items, q, b, d, v, nl, &w, lzv, err);
    if (st == SR_OK && logz) memcpy(logz, lzv, (size_t)b * sizeof(double));
    for (int64_t r = 0; r < reps && st == SR_OK; r++) {
        if (st == SR_OK) st = draw_positives_(c, items, smp, q, b, d, v, nl, seed, r, &w, err);
        for (int64_t ki = 0; ki < nk && st == SR_OK; ki++) {
            const int64_t k = ks[ki];
            const double logk = log((double)k);
            const int64_t kr = draw_noise_(c, smp, q, b, d, v, k, ki, nk, seed, r, &w);
            /* SSM: logsumexp of u over the whole sample. */
            for (int64_t i = 0; i < b; i++) {
                double mx = -INFINITY, s = 0, mn = INFINITY;
                for (int64_t e = 0; e < kr; e++) {
                    double u = (double)w.z[i * kr + e] - w.lq[e];
                    mx = fmax(mx, u);
                    mn = fmin(mn, u);
                }
                for (int64_t e = 0; e < kr; e++) s += exp((double)w.z[i * kr + e] - w.lq[e] - mx);
                w.lse[i] = (sr_lse){mx, s, 0.0};
                w.mm[2 * i] = mx;
                w.mm[2 * i + 1] = -mn;
            }
            if ((st = sr_comm_allreduce_lse(c, w.lse, b, err)) != SR_OK) break;
            if ((st = sr_comm_allreduce_max(c, w.mm, 2 * b, err)) != SR_OK) break;
            /* NCE: safeguarded Newton on J'(c), sums all-reduced each step. */
            for (int64_t i = 0; i < b; i++) {
                double ux = w.pos[3 * i] - logk - w.pos[3 * i + 1];
                w.lo[i] = fmin(ux, -w.mm[2 * i + 1]);
                w.hi[i] = fmax(ux, w.mm[2 * i]) + logk;
                w.cc[i] = 0.5 * (w.lo[i] + w.hi[i]);
            }
            for (int it = 0; it < NCE_ITERS && st == SR_OK; it++) {
                for (int64_t i = 0; i < b; i++) {
                    double f = 0, fp = 0;
                    for (int64_t e = 0; e < kr; e++) {
                        double pr = sig_((double)w.z[i * kr + e] - w.lq[e] - w.cc[i]);
                        f += pr;
                        fp += pr * (1 - pr);
                    }
                    w.fs[2 * i] = f;
                    w.fs[2 * i + 1] = fp;
                }
                if ((st = sr_comm_allreduce_sum(c, w.fs, 2 * b, err)) != SR_OK) break;
                for (int64_t i = 0; i < b; i++) {
                    double ux = w.pos[3 * i] - logk - w.pos[3 * i + 1];
                    double px = sig_(w.cc[i] - ux);
                    nce_step_(&w.cc[i], &w.lo[i], &w.hi[i], w.fs[2 * i] - px, -w.fs[2 * i + 1] - px * (1 - px));
                }
            }
            if (st != SR_OK) break;
            for (int64_t i = 0; i < b; i++) {
                double ds = sr_lse_value(&w.lse[i]) - lzv[i], dn = w.cc[i] - lzv[i];
                double *a = w.acc + 4 * (ki * b + i);
                a[0] += ds;
                a[1] += ds * ds;
                a[2] += dn;
                a[3] += dn * dn;
            }
        }
    }
    sr_mem_free(mem, lzv);
    if (st != SR_OK) goto out;
    for (int64_t ki = 0; ki < nk; ki++) {
        sr_lse_bias_row *row = &rows[ki];
        memset(row, 0, sizeof *row);
        row->k = ks[ki];
        for (int64_t i = 0; i < b; i++) {
            const double *a = w.acc + 4 * (ki * b + i);
            double ms = a[0] / reps, m2s = a[1] / reps, mn = a[2] / reps, m2n = a[3] / reps;
            row->ssm_bias += ms / b;
            row->ssm_var += (m2s - ms * ms) / b;
            row->ssm_mse += m2s / b;
            row->nce_bias += mn / b;
            row->nce_var += (m2n - mn * mn) / b;
            row->nce_mse += m2n / b;
        }
    }
out:
    scratch_free_(&w, mem);
    return st;
}

/* NCE pass (exact): per query i, acc[i * m] = ||p||^2, [+1] = ||k -> inf
 * limit||^2, [+2 + 2 ki] = ||E g_nce||^2 at k_ki, [+3 + 2 ki] the same on the
 * self-normalised logits s - log Z; m = 2 + 2 nk. Blocks of at most kmax
 * items through w->z, then one all-reduce. */
static sr_status nce_pass_(const sr_comm *c, const sr_sampler *smp, const float *q, int64_t b, int64_t d,
                           const float *v, int64_t nl, const int64_t *ks, int64_t nk, int64_t kmax, bool rh,
                           const double *lz, scratch_ *w, sr_error *err)
{
    const int64_t m = 2 + 2 * nk;
    memset(w->acc, 0, (size_t)(b * m) * sizeof(double));
    for (int64_t j0 = 0; j0 < nl; j0 += kmax) {
        const int64_t nb = nl - j0 < kmax ? nl - j0 : kmax;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b, (int)nb, (int)d, 1.0f, q, (int)d, v + j0 * d,
                    (int)d, 0.0f, w->z, (int)nb);
        for (int64_t i = 0; i < b; i++) {
            double *a = w->acc + i * m;
            for (int64_t j = 0; j < nb; j++) {
                const double s = w->z[i * nb + j], pj = exp(s - lz[i]), lq = sr_sampler_logq(smp, j0 + j);
                const double gl = sr_lse_nce_grad_limit(s, lz[i], rh);
                a[0] += pj * pj;
                a[1] += gl * gl;
                for (int64_t ki = 0; ki < nk; ki++) {
                    const double lkq = log((double)ks[ki]) + lq;
                    const double g = sr_lse_nce_grad(s, lkq, lz[i], rh), gs = sr_lse_nce_grad(s - lz[i], lkq, 0.0, rh);
                    a[2 + 2 * ki] += g * g;
                    a[3 + 2 * ki] += gs * gs;
                }
            }
        }
    }
    return sr_comm_allreduce_sum(c, w->acc, b * m, err);
}

/* SSM at k = ks[ki]: R repetitions of (positive, noise sample); each
 * query's sampled distribution a_r = g_r + e_y (sparse) is folded into the
 * running sum A_g over the shard of its group g = r % G; then, per query i
 * (m = 1 + 3 G entries, all-reduced): gfs[i m] = ||sum_g A_g||^2 and, per g,
 * gfs[i m + 1 + 3g ...] = ||A_g||^2, sum_r ||a_r||^2, sum_r a_r . p. */
static sr_status ssm_pass_(const sr_comm *c, const sr_shard *items, const sr_sampler *smp, const float *q, int64_t b,
                           int64_t d, const float *v, int64_t nl, const int64_t *ks, int64_t nk, int64_t ki,
                           int64_t reps, int64_t ng, bool rh, uint64_t seed, const double *lz, scratch_ *w,
                           sr_error *err)
{
    const int64_t m = 1 + 3 * ng;
    memset(w->gsum, 0, (size_t)(b * nl * ng) * sizeof(double));
    memset(w->gfs, 0, (size_t)(b * m) * sizeof(double));
    for (int64_t r = 0; r < reps; r++) {
        const int64_t g = r % ng;
        SR_TRY(draw_positives_(c, items, smp, q, b, d, v, nl, seed, r, w, err));
        const int64_t kr = draw_noise_(c, smp, q, b, d, v, ks[ki], ki, nk, seed, r, w);
        for (int64_t i = 0; i < b; i++) {
            const int64_t t = (int64_t)w->pos[3 * i + 2];
            const int64_t tl = sr_shard_owner(items, t) == c->rank ? sr_shard_local(items, t) : -1;
            for (int64_t e = 0; e < kr; e++) w->u[e] = (double)w->z[i * kr + e] - w->lq[e];
            w->lse[i] = neg_lse_(w->u, w->rows, kr, tl, rh);
        }
        SR_TRY(sr_comm_allreduce_lse(c, w->lse, b, err));
        for (int64_t i = 0; i < b; i++) {
            const int64_t t = (int64_t)w->pos[3 * i + 2];
            const int64_t tl = sr_shard_owner(items, t) == c->rank ? sr_shard_local(items, t) : -1;
            const double st = w->pos[3 * i], logd = logaddexp_(st, sr_lse_value(&w->lse[i]));
            for (int64_t e = 0; e < kr; e++) w->u[e] = (double)w->z[i * kr + e] - w->lq[e];
            const double at = sr_lse_ssm_grad(st, logd, w->u, w->rows, kr, tl, rh, w->wt);
            double dot = 0;
            for (int64_t e = 0; e < kr; e++) dot += w->wt[e] * exp((double)w->z[i * kr + e] - lz[i]);
            memcpy(w->gidx, w->rows, (size_t)kr * sizeof(int64_t));
            int64_t n = kr;
            if (tl >= 0) { /* the target's term lives on its owner */
                w->gidx[n] = tl;
                w->wt[n++] = at;
                dot += at * exp(st - lz[i]);
            }
            double *f = w->gfs + i * m + 1 + 3 * g;
            f[1] += sr_lse_grad_accum(w->gsum + (i * ng + g) * nl, w->gtmp, w->gidx, w->wt, n);
            f[2] += dot;
        }
    }
    for (int64_t i = 0; i < b; i++) {
        double *f = w->gfs + i * m;
        for (int64_t j = 0; j < nl; j++) {
            double tot = 0;
            for (int64_t g = 0; g < ng; g++) {
                const double a = w->gsum[(i * ng + g) * nl + j];
                tot += a;
                f[1 + 3 * g] += a * a;
            }
            f[0] += tot * tot;
        }
    }
    return sr_comm_allreduce_sum(c, w->gfs, b * m, err);
}

int64_t sr_lse_grad_groups(int64_t reps) { return reps / 2 < 5 ? reps / 2 : 5; }

double sr_lse_group_se(const double *est, int64_t groups)
{
    if (groups < 2) return NAN;
    double mean = 0, ss = 0;
    for (int64_t g = 0; g < groups; g++) mean += est[g] / (double)groups;
    for (int64_t g = 0; g < groups; g++) ss += (est[g] - mean) * (est[g] - mean);
    return sqrt(ss / (double)(groups - 1) / (double)groups);
}

sr_status sr_lse_grad_bias_run(const sr_comm *c, const sr_shard *items, const sr_sampler *smp, const float *q,
                               int64_t b, int64_t d, const float *v, const int64_t *ks, int64_t nk, int64_t reps,
                               int64_t groups, bool remove_hits, uint64_t seed, sr_mem *mem,
                               sr_lse_grad_summary *sum, sr_lse_grad_row *rows, sr_error *err)
{
    int64_t kmax;
    SR_TRY(check_args_(c, items, b, d, ks, nk, reps, 2, &kmax, err));
    const int64_t ng = groups == 0 ? sr_lse_grad_groups(reps) : groups;
    if (ng < 1 || ng > reps / 2 || ng > SR_LSE_MAX_GROUPS)
        SR_FAIL(err, SR_ERR_INTERNAL, "lse-bias: %lld groups of %lld repetitions (1..%d, >= 2 repetitions each)",
                (long long)ng, (long long)reps, SR_LSE_MAX_GROUPS);
    const int64_t nl = sr_shard_count(items, c->rank), m = 2 + 2 * nk, mg = 1 + 3 * ng;
    scratch_ w;
    SR_TRY(scratch_alloc_(&w, b, d, kmax, nl, c->size, b * m, ng, mem, err));
    double *lz = w.cc; /* the NCE iterate of sr_lse_bias_run is not used here */
    sr_status st = exact_logz_(c, items, q, b, d, v, nl, &w, lz, err);
    if (st == SR_OK) st = nce_pass_(c, smp, q, b, d, v, nl, ks, nk, kmax, remove_hits, lz, &w, err);
    if (st == SR_OK) {
        memset(sum, 0, sizeof *sum);
        for (int64_t i = 0; i < b; i++) {
            sum->mean_logz += lz[i] / (double)b;
            sum->grad_ms += (1.0 - w.acc[i * m]) / (double)b; /* E||p - e_y||^2 = 1 - ||p||^2 */
            sum->nce_lim_rel2 += w.acc[i * m + 1] / (double)b;
        }
        sum->nce_lim_rel2 /= sum->grad_ms;
        for (int64_t ki = 0; ki < nk; ki++) {
            memset(&rows[ki], 0, sizeof rows[ki]);
            rows[ki].k = ks[ki];
            for (int64_t i = 0; i < b; i++) {
                rows[ki].nce_rel2 += w.acc[i * m + 2 + 2 * ki] / (double)b / sum->grad_ms;
                rows[ki].nce_sn_rel2 += w.acc[i * m + 3 + 2 * ki] / (double)b / sum->grad_ms;
            }
        }
    }
    for (int64_t ki = 0; ki < nk && st == SR_OK; ki++) {
        st = ssm_pass_(c, items, smp, q, b, d, v, nl, ks, nk, ki, reps, ng, remove_hits, seed, lz, &w, err);
        if (st != SR_OK) break;
        double me = 0, mn = 0, eg[SR_LSE_MAX_GROUPS] = {0};
        const double rr = (double)reps;
        for (int64_t i = 0; i < b; i++) {
            const double *f = w.gfs + i * mg, pp = w.acc[i * m];
            double ssq = 0, dot = 0;
            for (int64_t g = 0; g < ng; g++) {
                const double *fg = f + 1 + 3 * g;
                const int64_t rg = reps / ng + (g < reps % ng);
                eg[g] += sr_lse_sqnorm_unbiased_cv(fg[0], fg[1], fg[2], pp, rg) / (double)b;
                ssq += fg[1];
                dot += fg[2];
            }
            me += sr_lse_sqnorm_unbiased_cv(f[0], ssq, dot, pp, reps) / (double)b;
            mn += (f[0] / (rr * rr) - 2.0 * dot / rr + pp) / (double)b; /* ||mean_r a_r - p||^2 */
        }
        rows[ki].ssm_rel2 = me / sum->grad_ms;
        rows[ki].ssm_rel2_se = sr_lse_group_se(eg, ng) / sum->grad_ms;
        rows[ki].ssm_naive_rel2 = mn / sum->grad_ms;
    }
    scratch_free_(&w, mem);
    return st;
}
