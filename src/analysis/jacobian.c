/* jacobian.c: power iteration on the prediction map's Jacobian over the
 * sharded catalogue (contract: jacobian.h). Per block of queries: one SGEMM
 * for the block's local logits, the map's global normaliser (softmax: max
 * and sum; sparse maps: the same threshold search as the loss, on dense
 * local logits), then the iteration with per-query all-reduces.
 */
#include "analysis/jacobian.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "comm/collectives.h"
#include "loss/sparsemap.h"

/* Start vector entry in [-1, 1) from (seed, query, global id): splitmix64. */
static double start_(uint64_t seed, int64_t i, int64_t id)
{
    uint64_t x = seed ^ ((uint64_t)i * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)id * 0xBF58476D1CE4E5B9ull);
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    return (double)(x >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

typedef struct jblk {
    int64_t nb, nl;
    float *z;          /* nb x nl logits */
    double *g, *x, *y; /* nb x nl */
    double *red;       /* nb x 6 */
    double *a, *sg;    /* nb: rankmax alpha; sum g (symmetric) */
    double *zy;        /* nb: rankmax target logit */
    int64_t *trow;     /* nb */
    int *done;
} jblk;

/* Map weights g (symmetric kinds) or gaps (rankmax) and supports. */
static sr_status prepare_(const sr_comm *c, const sr_jacobian_opts *o, jblk *B, int64_t *support, sr_error *err)
{
    const int64_t nb = B->nb, nl = B->nl;
    double *red = B->red;
    for (int64_t i = 0; i < nb; i++) {
        double m = -INFINITY, bad = 0.0;
        for (int64_t j = 0; j < nl; j++) {
            float zz = B->z[i * nl + j];
            bad += zz * 0.0f;
            m = zz > m ? zz : m;
        }
        red[i] = bad != bad ? INFINITY : m;
        red[nb + i] = B->trow[i] >= 0 ? B->z[i * nl + B->trow[i]] : -INFINITY;
    }
    SR_TRY(sr_comm_allreduce_max(c, red, 2 * nb, err));
    for (int64_t i = 0; i < nb; i++)
        if (!isfinite(red[i]) || (o->kind == SR_LOSS_RANKMAX && !isfinite(red[nb + i])))
            SR_FAIL(err, SR_ERR_NUMERIC, "jacobian: query %lld has non-finite logits", (long long)i);
    double *mx = malloc((size_t)nb * sizeof(double));
    if (!mx) SR_FAIL(err, SR_ERR_NOMEM, "jacobian: %lld doubles", (long long)nb);
    for (int64_t i = 0; i < nb; i++) {
        mx[i] = red[i];
        B->zy[i] = red[nb + i];
    }
    sr_status st = SR_OK;
    if (o->kind == SR_LOSS_SOFTMAX) {
        for (int64_t i = 0; i < nb; i++) {
            double s = 0.0, cnt = 0.0;
            for (int64_t j = 0; j < nl; j++) {
                double e = exp((double)B->z[i * nl + j] - mx[i]);
                B->g[i * nl + j] = e;
                s += e;
                cnt += e > 0.0;
            }
            red[2 * i] = s;
            red[2 * i + 1] = cnt;
        }
        st = sr_comm_allreduce_sum(c, red, 2 * nb, err);
        for (int64_t i = 0; st == SR_OK && i < nb; i++) {
            for (int64_t j = 0; j < nl; j++) B->g[i * nl + j] /= red[2 * i];
            B->sg[i] = 1.0;
            support[i] = (int64_t)red[2 * i + 1];
        }
    } else if (o->kind == SR_LOSS_RANKMAX) {
        sr_smap_params p = sr_smap_params_make(SR_LOSS_RANKMAX, 2.0, 0.0);
        for (int64_t i = 0; i < nb; i++) {
            sr_smap_stats s = {0, 0, 0, 0, 0, 0};
            sr_smap_stats_add(&p, B->zy[i], B->z + i * nl, nl, B->trow[i], &s);
            memcpy(red + i * SR_SMAP_NSTATS, &s, sizeof s);
        }
        st = sr_comm_allreduce_sum(c, red, nb * SR_SMAP_NSTATS, err);
        for (int64_t i = 0; st == SR_OK && i < nb; i++) {
            double gsum = red[i * SR_SMAP_NSTATS + 3], cnt = red[i * SR_SMAP_NSTATS + 2];
            B->a[i] = gsum > 0.0 ? 1.0 / gsum : 0.0;
            B->sg[i] = cnt; /* |A| */
            support[i] = gsum > 0.0 ? (int64_t)cnt : 1;
            for (int64_t j = 0; j < nl; j++) {
                double u = (double)B->z[i * nl + j] - B->zy[i];
                B->g[i * nl + j] = (j != B->trow[i] && u > 0.0) ? u : 0.0; /* gap on A */
            }
        }
    } else {
        sr_smap_params p = sr_smap_params_make(o->kind, o->alpha, o->thresh_tol);
        sr_smap_search *sr = malloc((size_t)nb * sizeof *sr);
        if (!sr) {
            free(mx);
            SR_FAIL(err, SR_ERR_NOMEM, "jacobian: search state");
        }
        for (int64_t i = 0; i < nb; i++) sr_smap_search_init(&sr[i], &p, mx[i], -INFINITY);
        int64_t active = nb;
        while (st == SR_OK && active > 0) {
            for (int64_t i = 0; i < nb; i++) {
                sr_smap_stats s = {0, 0, 0, 0, 0, 0};
                if (!sr[i].done) sr_smap_stats_add(&p, sr[i].x, B->z + i * nl, nl, -1, &s);
                memcpy(red + i * SR_SMAP_NSTATS, &s, sizeof s);
            }
            st = sr_comm_allreduce_sum(c, red, nb * SR_SMAP_NSTATS, err);
            active = 0;
            for (int64_t i = 0; st == SR_OK && i < nb; i++) {
                if (sr[i].done) continue;
                sr_smap_stats s;
                memcpy(&s, red + i * SR_SMAP_NSTATS, sizeof s);
                if (!sr_smap_search_next(&sr[i], &p, &s)) active++;
            }
        }
        for (int64_t i = 0; st == SR_OK && i < nb; i++) {
            double f = sr[i].fin.f, sg = 0.0;
            support[i] = (int64_t)sr[i].fin.c;
            for (int64_t j = 0; j < nl; j++) {
                double pj = sr_smap_phi(&p, (double)B->z[i * nl + j] - sr[i].tau) / f;
                double gj = pj > 0.0 ? (p.form == SR_SMAP_SPARSEMAX ? 1.0 : pow(pj, 2.0 - p.alpha)) : 0.0;
                B->g[i * nl + j] = gj;
                sg += gj;
            }
            red[i] = sg;
        }
        free(sr);
        if (st == SR_OK) st = sr_comm_allreduce_sum(c, red, nb, err);
        for (int64_t i = 0; st == SR_OK && i < nb; i++) B->sg[i] = red[i];
    }
    free(mx);
    return st;
}

/* Sum over ranks of k values per query: red[i*k + m]. */
static sr_status sums_(const sr_comm *c, double *red, int64_t nb, int64_t k, sr_error *err)
{
    return sr_comm_allreduce_sum(c, red, nb * k, err);
}

static sr_status iterate_(const sr_comm *c, const sr_jacobian_opts *o, jblk *B, double *norm, int64_t *iters,
                          sr_error *err)
{
    const int64_t nb = B->nb, nl = B->nl;
    const bool rank = o->kind == SR_LOSS_RANKMAX;
    double *red = B->red;
    /* Normalise the start vector. */
    for (int64_t i = 0; i < nb; i++) {
        double s = 0.0;
        for (int64_t j = 0; j < nl; j++) s += B->x[i * nl + j] * B->x[i * nl + j];
        red[i] = s;
        norm[i] = 0.0;
        B->done[i] = 0;
        if (iters) iters[i] = 0;
    }
    SR_TRY(sums_(c, red, nb, 1, err));
    for (int64_t i = 0; i < nb; i++) {
        double s = red[i] > 0.0 ? 1.0 / sqrt(red[i]) : 0.0;
        for (int64_t j = 0; j < nl; j++) B->x[i * nl + j] *= s;
    }
    for (int64_t it = 1; it <= o->max_iter; it++) {
        int64_t open = 0;
        for (int64_t i = 0; i < nb; i++) open += !B->done[i];
        if (open == 0) break;
        /* First dot products of x. */
        for (int64_t i = 0; i < nb; i++) {
            const double *x = B->x + i * nl, *g = B->g + i * nl;
            double s0 = 0.0, s1 = 0.0;
            for (int64_t j = 0; j < nl; j++) {
                if (rank) {
                    if (g[j] > 0.0) s0 += x[j];
                } else {
                    s0 += g[j] * x[j];
                }
            }
            if (rank && B->trow[i] >= 0) s1 = x[B->trow[i]];
            red[2 * i] = s0;
            red[2 * i + 1] = s1;
        }
        SR_TRY(sums_(c, red, nb, 2, err));
        for (int64_t i = 0; i < nb; i++) {
            const double *x = B->x + i * nl, *g = B->g + i * nl;
            double *y = B->y + i * nl;
            if (rank) {
                /* y = J x = a (x_A - x_t 1_A) - a^2 gap (sum_A x - |A| x_t) */
                double a = B->a[i], sa = red[2 * i], xt = red[2 * i + 1], na = B->sg[i];
                for (int64_t j = 0; j < nl; j++)
                    y[j] = g[j] > 0.0 ? a * (x[j] - xt) - a * a * g[j] * (sa - na * xt) : 0.0;
            } else {
                double k = B->sg[i] > 0.0 ? red[2 * i] / B->sg[i] : 0.0;
                for (int64_t j = 0; j < nl; j++) y[j] = g[j] * x[j] - g[j] * k;
            }
        }
        if (rank) {
            /* w = J^T y: on A a y_j - a^2 (gap.y); at t -a sum_A y + a^2 (gap.y) |A| */
            for (int64_t i = 0; i < nb; i++) {
                const double *y = B->y + i * nl, *g = B->g + i * nl;
                double s0 = 0.0, s1 = 0.0;
                for (int64_t j = 0; j < nl; j++) {
                    s0 += y[j];
                    s1 += g[j] * y[j];
                }
                red[2 * i] = s0;
                red[2 * i + 1] = s1;
            }
            SR_TRY(sums_(c, red, nb, 2, err));
            for (int64_t i = 0; i < nb; i++) {
                double *y = B->y + i * nl;
                const double *g = B->g + i * nl;
                double a = B->a[i], sy = red[2 * i], gy = red[2 * i + 1], na = B->sg[i];
                for (int64_t j = 0; j < nl; j++) y[j] = g[j] > 0.0 ? a * y[j] - a * a * gy : 0.0;
                if (B->trow[i] >= 0) y[B->trow[i]] = -a * sy + a * a * gy * na;
            }
        }
        for (int64_t i = 0; i < nb; i++) {
            const double *y = B->y + i * nl;
            double s = 0.0;
            for (int64_t j = 0; j < nl; j++) s += y[j] * y[j];
            red[i] = s;
        }
        SR_TRY(sums_(c, red, nb, 1, err));
        for (int64_t i = 0; i < nb; i++) {
            if (B->done[i]) continue;
            double ny = sqrt(red[i]);
            double est = rank ? sqrt(ny) : ny; /* rankmax iterates J^T J */
            if (iters) iters[i] = it;
            if (!(ny > 0.0)) {
                norm[i] = 0.0;
                B->done[i] = 1;
                continue;
            }
            if (fabs(est - norm[i]) <= o->tol * est) B->done[i] = 1;
            norm[i] = est;
            double *x = B->x + i * nl;
            const double *y = B->y + i * nl;
            for (int64_t j = 0; j < nl; j++) x[j] = y[j] / ny;
        }
    }
    return SR_OK;
}

sr_status sr_jacobian_norms(const sr_comm *c, const float *q, int64_t b, int64_t d, const float *v,
                            int64_t n_local, const sr_shard *shard, const int64_t *targets,
                            const sr_jacobian_opts *o, double *norm, int64_t *support, int64_t *iters,
                            sr_error *err)
{
    if (o->kind != SR_LOSS_SOFTMAX && o->kind != SR_LOSS_SPARSEMAX && o->kind != SR_LOSS_ENTMAX &&
        o->kind != SR_LOSS_RANKMAX)
        SR_FAIL(err, SR_ERR_CONFIG, "jacobian: loss %s has no prediction-map Jacobian here",
                sr_loss_kind_name(o->kind));
    if (o->kind == SR_LOSS_ENTMAX && !(o->alpha > 1.0))
        SR_FAIL(err, SR_ERR_CONFIG, "jacobian: entmax alpha %g must be > 1", o->alpha);
    if (o->kind == SR_LOSS_RANKMAX && (o->k != 1 || !targets))
        SR_FAIL(err, SR_ERR_CONFIG, "jacobian: rankmax needs k = 1 (got %lld) and the targets", (long long)o->k);
    if (b < 1 || d < 1 || d > INT_MAX || o->max_iter < 1 || shard->p != c->size ||
        n_local != sr_shard_count(shard, c->rank))
        SR_FAIL(err, SR_ERR_INTERNAL, "jacobian: batch %lld, dim %lld, iterations %lld, %lld local rows",
                (long long)b, (long long)d, (long long)o->max_iter, (long long)n_local);
    for (int64_t i = 0; targets && i < b; i++)
        if (targets[i] < 0 || targets[i] >= shard->n)
            SR_FAIL(err, SR_ERR_DATA, "jacobian: target %lld of query %lld out of range", (long long)targets[i],
                    (long long)i);
    /* Block size from the largest shard, so every rank takes the same steps. */
    int64_t nmax = 1;
    for (int r = 0; r < shard->p; r++) nmax = sr_shard_count(shard, r) > nmax ? sr_shard_count(shard, r) : nmax;
    size_t budget = o->mem_budget ? o->mem_budget : ((size_t)256 << 20);
    int64_t qb = (int64_t)(budget / ((size_t)nmax * (sizeof(float) + 3 * sizeof(double)) + 1));
    qb = qb < 1 ? 1 : (qb > b ? b : qb);
    if (qb > INT_MAX) qb = INT_MAX;
    const size_t nl1 = (size_t)n_local + 1, Q = (size_t)qb;
    jblk B;
    memset(&B, 0, sizeof B);
    sr_error e2;
    sr_error_clear(&e2);
    B.z = sr_mem_calloc(o->mem, Q * nl1, sizeof(float), "jacobian logits", &e2);
    B.g = sr_mem_calloc(o->mem, Q * nl1, sizeof(double), "jacobian weights", &e2);
    B.x = sr_mem_calloc(o->mem, Q * nl1, sizeof(double), "jacobian x", &e2);
    B.y = sr_mem_calloc(o->mem, Q * nl1, sizeof(double), "jacobian y", &e2);
    B.red = sr_mem_calloc(o->mem, Q * SR_SMAP_NSTATS, sizeof(double), "jacobian reduce", &e2);
    B.a = sr_mem_calloc(o->mem, Q, sizeof(double), "jacobian alpha", &e2);
    B.sg = sr_mem_calloc(o->mem, Q, sizeof(double), "jacobian sums", &e2);
    B.zy = sr_mem_calloc(o->mem, Q, sizeof(double), "jacobian target logits", &e2);
    B.trow = sr_mem_calloc(o->mem, Q, sizeof(int64_t), "jacobian target rows", &e2);
    B.done = sr_mem_calloc(o->mem, Q, sizeof(int), "jacobian flags", &e2);
    int ok = B.z && B.g && B.x && B.y && B.red && B.a && B.sg && B.zy && B.trow && B.done;
    /* Out of memory may hit one rank only: agree before the first collective. */
    double okd = ok ? 0.0 : 1.0;
    sr_status st = sr_comm_allreduce_max(c, &okd, 1, err);
    if (st == SR_OK && okd != 0.0) {
        if (!ok && err) *err = e2;
        st = sr_error_set(err, SR_ERR_NOMEM, __FILE__, __LINE__, "jacobian: out of memory on some rank (%zu bytes)",
                          budget);
    }
    for (int64_t i0 = 0; st == SR_OK && i0 < b; i0 += qb) {
        B.nb = b - i0 < qb ? b - i0 : qb;
        B.nl = n_local;
        if (n_local > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B.nb, (int)n_local, (int)d, 1.0f, q + i0 * d,
                        (int)d, v, (int)d, 0.0f, B.z, (int)n_local);
        for (int64_t i = 0; i < B.nb; i++) {
            int64_t t = targets ? targets[i0 + i] : -1;
            B.trow[i] = t >= 0 && sr_shard_owner(shard, t) == c->rank ? sr_shard_local(shard, t) : -1;
        }
        st = prepare_(c, o, &B, support + i0, err);
        if (st != SR_OK) break;
        for (int64_t i = 0; i < B.nb; i++)
            for (int64_t j = 0; j < n_local; j++) {
                const double gj = B.g[i * n_local + j];
                int live = o->kind == SR_LOSS_RANKMAX ? (gj > 0.0 || j == B.trow[i]) : gj > 0.0;
                B.x[i * n_local + j] = live ? start_(o->seed, i0 + i, sr_shard_global(shard, c->rank, j)) : 0.0;
            }
        st = iterate_(c, o, &B, norm + i0, iters ? iters + i0 : NULL, err);
    }
    sr_mem_free(o->mem, B.z);
    sr_mem_free(o->mem, B.g);
    sr_mem_free(o->mem, B.x);
    sr_mem_free(o->mem, B.y);
    sr_mem_free(o->mem, B.red);
    sr_mem_free(o->mem, B.a);
    sr_mem_free(o->mem, B.sg);
    sr_mem_free(o->mem, B.zy);
    sr_mem_free(o->mem, B.trow);
    sr_mem_free(o->mem, B.done);
    return st;
}

sr_status sr_jacobian_dense_ref(sr_loss_kind kind, double alpha, const double *z, int64_t n, int64_t target,
                                double *J, sr_error *err)
{
    double *p = malloc((size_t)n * sizeof(double)), *g = malloc((size_t)n * sizeof(double));
    if (!p || !g) {
        free(p);
        free(g);
        SR_FAIL(err, SR_ERR_NOMEM, "jacobian reference: %lld doubles", (long long)n);
    }
    memset(J, 0, (size_t)(n * n) * sizeof(double));
    sr_status st = SR_OK;
    if (kind == SR_LOSS_SOFTMAX) {
        double m = -INFINITY, s = 0.0;
        for (int64_t j = 0; j < n; j++) m = fmax(m, z[j]);
        for (int64_t j = 0; j < n; j++) s += (p[j] = exp(z[j] - m));
        for (int64_t j = 0; j < n; j++) p[j] /= s;
        for (int64_t j = 0; j < n; j++)
            for (int64_t k = 0; k < n; k++) J[j * n + k] = (j == k ? p[j] : 0.0) - p[j] * p[k];
    } else if (kind == SR_LOSS_RANKMAX) {
        double zy = z[target], G = 0.0, na = 0.0;
        for (int64_t j = 0; j < n; j++) {
            g[j] = j != target && z[j] > zy ? z[j] - zy : 0.0;
            G += g[j];
            na += g[j] > 0.0;
        }
        double a = G > 0.0 ? 1.0 / G : 0.0;
        for (int64_t j = 0; G > 0.0 && j < n; j++) {
            if (!(g[j] > 0.0)) continue;
            /* dp_j/dz_k = a ([j==k] - [k==t]) - a^2 gap_j ([k in A] - |A| [k==t]) */
            for (int64_t k = 0; k < n; k++) {
                double inA = g[k] > 0.0 ? 1.0 : 0.0, ist = k == target ? 1.0 : 0.0;
                J[j * n + k] = a * ((j == k ? 1.0 : 0.0) - ist) - a * a * g[j] * (inA - na * ist);
            }
        }
    } else {
        sr_smap_params prm = sr_smap_params_make(kind, alpha, 1e-14);
        st = sr_sparsemap_ref_map(&prm, z, n, target, p, NULL, NULL, NULL, NULL, err);
        double sg = 0.0;
        for (int64_t j = 0; st == SR_OK && j < n; j++)
            sg += (g[j] = p[j] > 0.0 ? (prm.form == SR_SMAP_SPARSEMAX ? 1.0 : pow(p[j], 2.0 - prm.alpha)) : 0.0);
        for (int64_t j = 0; st == SR_OK && j < n; j++)
            for (int64_t k = 0; k < n; k++) J[j * n + k] = (j == k ? g[j] : 0.0) - g[j] * g[k] / sg;
    }
    free(p);
    free(g);
    return st;
}
