/* lse_bias.c: exact log Z and the SSM / NCE estimates over the sharded
 * catalogue (lse_bias.h). */
#include "loss/lse_bias.h"

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

typedef struct scratch_ {
    sr_softmax_ws *ws;
    int64_t *zero, *rows;
    double *frac, *pos, *lq, *mm, *fs, *cc, *lo, *hi, *acc;
    sr_lse *lse;
    float *vc, *z, *sl;
} scratch_;

static void scratch_free_(scratch_ *s, sr_mem *mem)
{
    sr_softmax_ws_destroy(&s->ws);
    void *bufs[] = {s->zero, s->rows, s->frac, s->pos, s->lq, s->mm, s->fs, s->cc,
                    s->lo,   s->hi,   s->acc,  s->lse, s->vc, s->z,  s->sl};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sr_mem_free(mem, bufs[i]);
}

/* Positive draws of repetition r: pos[2i] = s_x, pos[2i+1] = log Q(x). */
static sr_status draw_positives_(const sr_comm *c, const sr_sampler *smp, const float *q,
                                 int64_t b, int64_t d, const float *v, int64_t nl, uint64_t seed, int64_t r,
                                 scratch_ *w, sr_error *err)
{
    sr_rng ss;
    sr_sampler_shared_stream(&ss, seed, STEP_POS + r);
    memset(w->pos, 0, (size_t)(2 * b) * sizeof(double));
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
        w->pos[2 * i] = w->sl[x];
        w->pos[2 * i + 1] = sr_sampler_logq(smp, x);
    }
    return sr_comm_allreduce_sum(c, w->pos, 2 * b, err);
}

sr_status sr_lse_bias_run(const sr_comm *c, const sr_shard *items, const sr_sampler *smp, const float *q,
                          int64_t b, int64_t d, const float *v, const int64_t *ks, int64_t nk, int64_t reps,
                          uint64_t seed, sr_mem *mem, double *logz, sr_lse_bias_row *rows, sr_error *err)
{
    if (b < 1 || d < 1 || nk < 1 || reps < 1 || items->p != c->size)
        SR_FAIL(err, SR_ERR_INTERNAL, "lse-bias: batch %lld, dim %lld, %lld k values, %lld repetitions",
                (long long)b, (long long)d, (long long)nk, (long long)reps);
    int64_t kmax = 0;
    for (int64_t i = 0; i < nk; i++) {
        if (ks[i] < 1) SR_FAIL(err, SR_ERR_CONFIG, "lse-bias: sample size %lld (>= 1)", (long long)ks[i]);
        kmax = ks[i] > kmax ? ks[i] : kmax;
    }
    const int64_t nl = sr_shard_count(items, c->rank), p = c->size;
    scratch_ w;
    memset(&w, 0, sizeof w);
    sr_status st = sr_softmax_ws_create(&w.ws, b, 4096, mem, err);
    if (st != SR_OK) return st;
    w.zero = sr_mem_calloc(mem, (size_t)b, sizeof(int64_t), "lse-bias targets", err);
    w.rows = sr_mem_calloc(mem, (size_t)kmax, sizeof(int64_t), "lse-bias sample", err);
    w.frac = sr_mem_calloc(mem, (size_t)(b * p), sizeof(double), "lse-bias shard shares", err);
    w.pos = sr_mem_calloc(mem, (size_t)(2 * b), sizeof(double), "lse-bias positives", err);
    w.lq = sr_mem_calloc(mem, (size_t)kmax, sizeof(double), "lse-bias log counts", err);
    w.mm = sr_mem_calloc(mem, (size_t)(2 * b), sizeof(double), "lse-bias brackets", err);
    w.fs = sr_mem_calloc(mem, (size_t)(2 * b), sizeof(double), "lse-bias sums", err);
    w.cc = sr_mem_calloc(mem, (size_t)b, sizeof(double), "lse-bias c", err);
    w.lo = sr_mem_calloc(mem, (size_t)b, sizeof(double), "lse-bias lo", err);
    w.hi = sr_mem_calloc(mem, (size_t)b, sizeof(double), "lse-bias hi", err);
    w.acc = sr_mem_calloc(mem, (size_t)(4 * nk * b), sizeof(double), "lse-bias moments", err);
    w.lse = sr_mem_calloc(mem, (size_t)b, sizeof(sr_lse), "lse-bias lse", err);
    w.vc = sr_mem_calloc(mem, (size_t)(kmax * d), sizeof(float), "lse-bias rows", err);
    w.z = sr_mem_calloc(mem, (size_t)(b * kmax), sizeof(float), "lse-bias scores", err);
    w.sl = sr_mem_calloc(mem, (size_t)(nl + 1), sizeof(float), "lse-bias shard scores", err);
    if (!w.zero || !w.rows || !w.frac || !w.pos || !w.lq || !w.mm || !w.fs || !w.cc || !w.lo || !w.hi || !w.acc ||
        !w.lse || !w.vc || !w.z || !w.sl) {
        scratch_free_(&w, mem);
        return err ? err->code : SR_ERR_NOMEM;
    }
#define CHECK(x)                   \
    do {                           \
        st = (x);                  \
        if (st != SR_OK) goto out; \
    } while (0)
    /* Exact log Z and every shard's share of Z (for the positives). */
    CHECK(sr_softmax_partial(q, b, d, v, nl, items, c->rank, w.zero, w.ws, w.lse, err));
    double *lz = w.cc; /* log Z per query until copied to lzv */
    for (int64_t i = 0; i < b; i++) w.mm[i] = sr_lse_value(&w.lse[i]);
    CHECK(sr_comm_allreduce_lse(c, w.lse, b, err));
    for (int64_t i = 0; i < b; i++) {
        lz[i] = sr_lse_value(&w.lse[i]);
        if (!isfinite(lz[i])) {
            st = sr_error_set(err, SR_ERR_NUMERIC, __FILE__, __LINE__, "lse-bias: log Z of query %lld is %g",
                              (long long)i, lz[i]);
            goto out;
        }
        w.frac[i * p + c->rank] = isfinite(w.mm[i]) ? exp(w.mm[i] - lz[i]) : 0.0;
    }
    CHECK(sr_comm_allreduce_sum(c, w.frac, b * p, err));
    if (logz) memcpy(logz, lz, (size_t)b * sizeof(double));
    /* cc becomes the NCE iterate below: keep log Z apart. */
    double *lzv = sr_mem_calloc(mem, (size_t)b, sizeof(double), "lse-bias log Z", err);
    if (!lzv) {
        st = err ? err->code : SR_ERR_NOMEM;
        goto out;
    }
    memcpy(lzv, lz, (size_t)b * sizeof(double));
    for (int64_t r = 0; r < reps && st == SR_OK; r++) {
        st = draw_positives_(c, smp, q, b, d, v, nl, seed, r, &w, err);
        for (int64_t ki = 0; ki < nk && st == SR_OK; ki++) {
            const int64_t k = ks[ki];
            const double logk = log((double)k);
            sr_rng ss, rs;
            sr_sampler_shared_stream(&ss, seed, STEP_NOISE + r * nk + ki);
            sr_sampler_stream(&rs, seed, c->rank, STEP_NOISE + r * nk + ki);
            int64_t kr = sr_sampler_quotas(smp, k, sr_rng_uniform(&ss), NULL);
            sr_sampler_draw(smp, kr, &rs, w.rows);
            for (int64_t e = 0; e < kr; e++) {
                memcpy(w.vc + e * d, v + w.rows[e] * d, (size_t)d * sizeof(float));
                w.lq[e] = logk + sr_sampler_logq(smp, w.rows[e]);
            }
            if (kr > 0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b, (int)kr, (int)d, 1.0f, q, (int)d, w.vc,
                            (int)d, 0.0f, w.z, (int)kr);
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
                double ux = w.pos[2 * i] - logk - w.pos[2 * i + 1];
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
                    double ux = w.pos[2 * i] - logk - w.pos[2 * i + 1];
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
#undef CHECK
    scratch_free_(&w, mem);
    return st;
}
