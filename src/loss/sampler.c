/* sampler.c: Vose alias tables, systematic quotas, stratified uniform draws. */
#include "loss/sampler.h"

#include <math.h>

struct sr_sampler {
    sr_mem *mem;
    sr_proposal kind;
    int p, rank;
    int64_t n, n_local;
    double *cum;    /* p + 1: cumulative weight of ranks < r, cum[p] = W */
    double *logw;   /* n_local: log w_j (popularity only) */
    double logW;
    sr_alias alias; /* popularity only, over the local weights */
};

sr_status sr_alias_build(sr_alias *a, const double *w, int64_t n, sr_mem *mem, sr_error *err)
{
    a->n = 0;
    a->prob = NULL;
    a->alias = NULL;
    if (n < 1) SR_FAIL(err, SR_ERR_INTERNAL, "alias table over %lld weights", (long long)n);
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (!(w[i] >= 0.0) || !isfinite(w[i]))
            SR_FAIL(err, SR_ERR_DATA, "alias table: weight %lld is %g", (long long)i, w[i]);
        total += w[i];
    }
    if (!(total > 0.0)) SR_FAIL(err, SR_ERR_DATA, "alias table: weights sum to %g", total);
    a->prob = sr_mem_calloc(mem, (size_t)n, sizeof(double), "alias probabilities", err);
    a->alias = sr_mem_calloc(mem, (size_t)n, sizeof(int64_t), "alias columns", err);
    /* One work array: small indices grow from the front, large from the back. */
    int64_t *work = sr_mem_calloc(mem, (size_t)n, sizeof(int64_t), "alias worklist", err);
    if (!a->prob || !a->alias || !work) {
        sr_mem_free(mem, work);
        sr_alias_destroy(a, mem);
        return err ? err->code : SR_ERR_NOMEM;
    }
    int64_t ns = 0, nl = n;
    for (int64_t i = 0; i < n; i++) {
        a->prob[i] = w[i] * (double)n / total;
        a->alias[i] = i;
        if (a->prob[i] < 1.0) work[ns++] = i;
        else work[--nl] = i;
    }
    /* Vose: pair each small column with a large donor. */
    while (ns > 0 && nl < n) {
        int64_t s = work[--ns], l = work[nl];
        a->alias[s] = l;
        a->prob[l] = (a->prob[l] + a->prob[s]) - 1.0;
        if (a->prob[l] < 1.0) {
            nl++;
            work[ns++] = l;
        }
    }
    /* Leftovers are 1 up to rounding. */
    while (ns > 0) a->prob[work[--ns]] = 1.0;
    while (nl < n) a->prob[work[nl++]] = 1.0;
    sr_mem_free(mem, work);
    a->n = n;
    return SR_OK;
}

void sr_alias_destroy(sr_alias *a, sr_mem *mem)
{
    sr_mem_free(mem, a->prob);
    sr_mem_free(mem, a->alias);
    a->prob = NULL;
    a->alias = NULL;
    a->n = 0;
}

int64_t sr_alias_draw(const sr_alias *a, sr_rng *r)
{
    int64_t i = (int64_t)sr_rng_below(r, (uint64_t)a->n);
    /* 53-bit coin: a 32-bit one would bias small columns (the 1M-item case). */
    double coin = (double)(((uint64_t)sr_rng_u32(r) << 21) ^ (sr_rng_u32(r) >> 11)) * 0x1.0p-53;
    return coin < a->prob[i] ? i : a->alias[i];
}

sr_status sr_sampler_create(sr_sampler **out, const sr_shard *items, int rank, sr_proposal kind,
                            const int64_t *popularity, double beta, sr_mem *mem, sr_error *err)
{
    *out = NULL;
    if (rank < 0 || rank >= items->p || items->n < 1)
        SR_FAIL(err, SR_ERR_INTERNAL, "sampler: rank %d of %d, %lld items", rank, items->p,
                (long long)items->n);
    if (kind == SR_PROPOSAL_POPULARITY && (!popularity || !(beta >= 0.0 && beta <= 10.0)))
        SR_FAIL(err, SR_ERR_CONFIG, "sampler: popularity proposal needs counts and beta in [0, 10] (beta %g)",
                beta);
    sr_sampler *s = sr_mem_alloc(mem, sizeof *s, 1, "sampler", err);
    if (!s) return err ? err->code : SR_ERR_NOMEM;
    s->mem = mem;
    s->kind = kind;
    s->p = items->p;
    s->rank = rank;
    s->n = items->n;
    s->n_local = sr_shard_count(items, rank);
    s->cum = sr_mem_calloc(mem, (size_t)s->p + 1, sizeof(double), "sampler shard masses", err);
    if (!s->cum) goto fail;
    if (kind == SR_PROPOSAL_UNIFORM) {
        for (int r = 0; r < s->p; r++) s->cum[r + 1] = s->cum[r] + (double)sr_shard_count(items, r);
        s->logW = log((double)s->n);
    } else {
        double *mass = sr_mem_calloc(mem, (size_t)s->p, sizeof(double), "sampler masses", err);
        s->logw = sr_mem_calloc(mem, (size_t)s->n_local + 1, sizeof(double), "sampler log weights", err);
        double *wl = sr_mem_calloc(mem, (size_t)s->n_local + 1, sizeof(double), "sampler weights", err);
        if (!mass || !s->logw || !wl) {
            sr_mem_free(mem, mass);
            sr_mem_free(mem, wl);
            goto fail;
        }
        /* Per-shard masses summed in global id order: identical on every rank. */
        sr_status st = SR_OK;
        for (int64_t g = 0; g < s->n; g++) {
            if (popularity[g] < 0) {
                st = sr_error_set(err, SR_ERR_DATA, __FILE__, __LINE__,
                                  "sampler: popularity of item %lld is %lld", (long long)g,
                                  (long long)popularity[g]);
                break;
            }
            double w = pow((double)popularity[g] + 1.0, beta);
            int o = sr_shard_owner(items, g);
            mass[o] += w;
            if (o == rank) {
                int64_t j = sr_shard_local(items, g);
                wl[j] = w;
                s->logw[j] = log(w);
            }
        }
        for (int r = 0; r < s->p; r++) s->cum[r + 1] = s->cum[r] + mass[r];
        sr_mem_free(mem, mass);
        if (st == SR_OK && s->n_local > 0) st = sr_alias_build(&s->alias, wl, s->n_local, mem, err);
        sr_mem_free(mem, wl);
        if (st != SR_OK) {
            sr_sampler_destroy(&s);
            return st;
        }
        s->logW = log(s->cum[s->p]);
    }
    *out = s;
    return SR_OK;
fail:
    sr_sampler_destroy(&s);
    return err ? err->code : SR_ERR_NOMEM;
}

void sr_sampler_destroy(sr_sampler **sp)
{
    if (!sp || !*sp) return;
    sr_sampler *s = *sp;
    sr_alias_destroy(&s->alias, s->mem);
    sr_mem_free(s->mem, s->cum);
    sr_mem_free(s->mem, s->logw);
    sr_mem_free(s->mem, s);
    *sp = NULL;
}

sr_proposal sr_sampler_kind(const sr_sampler *s) { return s->kind; }
int64_t sr_sampler_n_local(const sr_sampler *s) { return s->n_local; }

/* B_r = floor(k C_r / W + u), clamped to [prev, k] against rounding. */
static int64_t bound_(const sr_sampler *s, int r, int64_t k, double u, int64_t prev)
{
    if (r == 0) return 0;
    double W = s->cum[s->p];
    if (s->cum[r] >= W) return k; /* trailing (empty) shards: exactly k */
    double x = (double)k * s->cum[r] / W;
    double fl = floor(x);
    int64_t b = (int64_t)fl + ((x - fl) + u >= 1.0 ? 1 : 0);
    if (b < prev) b = prev;
    return b > k ? k : b;
}

int64_t sr_sampler_quotas(const sr_sampler *s, int64_t k, double u, int64_t *quota)
{
    int64_t prev = 0, mine = 0;
    for (int r = 0; r < s->p; r++) {
        int64_t next = r + 1 == s->p ? k : bound_(s, r + 1, k, u, prev);
        if (quota) quota[r] = next - prev;
        if (r == s->rank) mine = next - prev;
        prev = next;
    }
    return mine;
}

double sr_sampler_logq(const sr_sampler *s, int64_t row)
{
    return s->kind == SR_PROPOSAL_UNIFORM ? -s->logW : s->logw[row] - s->logW;
}

void sr_sampler_draw(const sr_sampler *s, int64_t kr, sr_rng *r, int64_t *rows)
{
    if (kr <= 0 || s->n_local == 0) return;
    if (s->kind == SR_PROPOSAL_UNIFORM) {
        int64_t pos = 0;
        /* Whole passes: each item once per pass (zero variance). */
        for (int64_t pass = 0; pass < kr / s->n_local; pass++)
            for (int64_t j = 0; j < s->n_local; j++) rows[pos++] = j;
        while (pos < kr) rows[pos++] = (int64_t)sr_rng_below(r, (uint64_t)s->n_local);
        return;
    }
    for (int64_t i = 0; i < kr; i++) rows[i] = sr_alias_draw(&s->alias, r);
}

void sr_sampler_stream(sr_rng *r, uint64_t seed, int rank, int64_t step)
{
    sr_rng_init(r, seed, (uint32_t)rank, SR_STREAM_SAMPLER);
    sr_rng_seek(r, (uint64_t)step << 32);
}

void sr_sampler_shared_stream(sr_rng *r, uint64_t seed, int64_t step)
{
    sr_rng_init(r, seed, SR_SAMPLER_SHARED_RANK, SR_STREAM_SAMPLER);
    sr_rng_seek(r, (uint64_t)step << 32);
}
