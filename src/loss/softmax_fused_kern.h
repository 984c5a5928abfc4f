/* softmax_fused_kern.h: body of the fused kernels, included once per ISA by
 * softmax_fused.c with VL (floats a vector), NRV (vectors per item panel),
 * MRF / MRB (queries per forward / backward block), TGT (target attribute),
 * FN(name) and the vector helpers defined. Not a public header. */

#define NR (NRV * VL)

/* exp(x) for x <= 88 (vexp.c's kernel: Cody-Waite by ln 2, degree-5
 * polynomial, 2^n through the exponent bits); x < -87, -inf, NaN give 0. */
static inline TGT vf FN(vexp)(vf x)
{
    const vf magic = VSET1(12582912.0f); /* 1.5 * 2^23: t - magic is round(x / ln 2) */
    vkeep keep = VKEEP(x, VSET1(-87.0f));
    vf t = VFMA(x, VSET1(1.44269504088896341f), magic);
    vf n = VSUB(t, magic);
    vi ni = VSUBI(VCASTI(t), VCASTI(magic));
    vf r = VFMA(n, VSET1(-0.693359375f), x);
    r = VFMA(n, VSET1(2.12194440e-4f), r);
    vf p = VSET1(1.9875691500e-4f);
    p = VFMA(p, r, VSET1(1.3981999507e-3f));
    p = VFMA(p, r, VSET1(8.3334519073e-3f));
    p = VFMA(p, r, VSET1(4.1665795894e-2f));
    p = VFMA(p, r, VSET1(1.6666665459e-1f));
    p = VFMA(p, r, VSET1(5.0000001201e-1f));
    vf y = VADD(VFMA(p, VMUL(r, r), r), VSET1(1.0f));
    return VAPPLY(keep, VCASTF(VADDI(VCASTI(y), VSHL23(ni))));
}

/* V rows [j0, j0 + nj) -> panels of d x NR (item fastest), zero-padded. */
static TGT void FN(pack)(const float *v, int64_t j0, int64_t nj, int64_t d, float *pack)
{
    for (int64_t p0 = 0; p0 < nj; p0 += NR) {
        float *dst = pack + p0 * d;
        int64_t w = nj - p0 < NR ? nj - p0 : NR;
        for (int64_t jj = 0; jj < w; jj++) {
            const float *src = v + (j0 + p0 + jj) * d;
            for (int64_t k = 0; k < d; k++) dst[k * NR + jj] = src[k];
        }
        for (int64_t jj = w; jj < NR; jj++)
            for (int64_t k = 0; k < d; k++) dst[k * NR + jj] = 0.0f;
    }
}

/* acc[i][c] = q_i . (panel column block c), i < MR. The k loop is the
 * register-tiled GEMM core: NRV vector loads and MR broadcasts per k. */
#define LOGITS(MR, acc, q, panel, d)                                                                   \
    do {                                                                                               \
        _Pragma("GCC unroll 16") for (int i_ = 0; i_ < (MR); i_++)                                     \
            _Pragma("GCC unroll 4") for (int c_ = 0; c_ < NRV; c_++) acc[i_][c_] = VZERO();           \
        for (int64_t k_ = 0; k_ < (d); k_++) {                                                         \
            vf b_[NRV];                                                                                \
            _Pragma("GCC unroll 4") for (int c_ = 0; c_ < NRV; c_++) b_[c_] =                          \
                VLOAD((panel) + k_ * NR + c_ * VL);                                                    \
            _Pragma("GCC unroll 16") for (int i_ = 0; i_ < (MR); i_++)                                 \
            {                                                                                          \
                vf a_ = VSET1((q)[i_ * (d) + k_]);                                                     \
                _Pragma("GCC unroll 4") for (int c_ = 0; c_ < NRV; c_++) acc[i_][c_] =                 \
                    VFMA(a_, b_[c_], acc[i_][c_]);                                                     \
            }                                                                                          \
        }                                                                                              \
    } while (0)

/* Running state of one query over a tile: shift m (a float logit or -inf)
 * and sum of exp(z - m) in double, per lane. */
typedef struct FN(st) {
    vd lo, hi;
    float m;
    int bad;
} FN(st);

/* Raise s->m to the max of the row's lanes (rare after the first panels);
 * NaN lanes set bad. */
static TGT void FN(raise)(FN(st) *s, const vf *x)
{
    float t[NR];
    for (int c = 0; c < NRV; c++) VSTORE(t + c * VL, x[c]);
    float hm = s->m;
    for (int j = 0; j < NR; j++) {
        if (t[j] != t[j]) s->bad = 1;
        else if (t[j] > hm) hm = t[j];
    }
    if (hm > s->m) {
        double f = exp((double)s->m - (double)hm); /* 0 when m == -inf */
        s->lo = VDMUL(s->lo, f);
        s->hi = VDMUL(s->hi, f);
        s->m = hm;
    }
}

/* Forward over one MRF-query block (q rows, state st) and one tile. */
static TGT void FN(fwd_tile)(const float *q, int64_t d, const float *pack, int64_t j0, int64_t nt,
                             const int64_t *trow, int mr, FN(st) *st, float *tgt)
{
    for (int64_t p0 = 0; p0 < nt; p0 += NR) {
        const int nj = nt - p0 < NR ? (int)(nt - p0) : NR;
        vf acc[MRF][NRV];
        LOGITS(MRF, acc, q, pack + p0 * d, d);
        if (nj < NR) /* items past the shard's end: -inf, exp gives 0 */
            for (int i = 0; i < MRF; i++) {
                float t[NR];
                for (int c = 0; c < NRV; c++) VSTORE(t + c * VL, acc[i][c]);
                for (int j = nj; j < NR; j++) t[j] = -INFINITY;
                for (int c = 0; c < NRV; c++) acc[i][c] = VLOAD(t + c * VL);
            }
        _Pragma("GCC unroll 16") for (int i = 0; i < MRF; i++)
        {
            if (i >= mr) break;
            int64_t tr = trow[i] - (j0 + p0);
            if (tr >= 0 && tr < nj) { /* the same float that enters the sum */
                float t[NR];
                for (int c = 0; c < NRV; c++) VSTORE(t + c * VL, acc[i][c]);
                tgt[i] = t[tr];
            }
            vf m = VSET1(st[i].m);
            int up = 0;
            _Pragma("GCC unroll 4") for (int c = 0; c < NRV; c++) up |= ANY_NLE(acc[i][c], m);
            if (__builtin_expect(up, 0)) {
                FN(raise)(&st[i], acc[i]);
                m = VSET1(st[i].m);
            }
            vf e = VEXP(VSUB(acc[i][0], m));
            _Pragma("GCC unroll 4") for (int c = 1; c < NRV; c++) e = VADD(e, VEXP(VSUB(acc[i][c], m)));
            ACC_D(&st[i].lo, &st[i].hi, e);
        }
    }
}

static TGT void FN(forward)(const float *q, int64_t nq, int64_t d, const float *v, int64_t n,
                            const int64_t *trow, float *pack, sr_lse *part)
{
    const int64_t ntile = sr_fused_tile(d);
    float qpad[MRF * SR_FUSED_D_MAX];
    int64_t tpad[MRF];
    for (int64_t j0 = 0; j0 < n; j0 += ntile) {
        const int64_t nt = n - j0 < ntile ? n - j0 : ntile;
        FN(pack)(v, j0, nt, d, pack);
        for (int64_t i0 = 0; i0 < nq; i0 += MRF) {
            const int mr = nq - i0 < MRF ? (int)(nq - i0) : MRF;
            const float *qb = q + i0 * d;
            const int64_t *tb = trow + i0;
            if (mr < MRF) { /* the last block: zero rows, results dropped */
                memset(qpad, 0, sizeof(float) * (size_t)(MRF * d));
                memcpy(qpad, qb, sizeof(float) * (size_t)(mr * d));
                for (int i = 0; i < MRF; i++) tpad[i] = i < mr ? tb[i] : -1;
                qb = qpad;
                tb = tpad;
            }
            FN(st) st[MRF];
            float tgt[MRF];
            for (int i = 0; i < MRF; i++) {
                st[i].lo = VDZERO();
                st[i].hi = VDZERO();
                st[i].m = i < mr ? (float)part[i0 + i].max : 0.0f;
                st[i].bad = 0;
                tgt[i] = NAN;
            }
            FN(fwd_tile)(qb, d, pack, j0, nt, tb, mr, st, tgt);
            for (int i = 0; i < mr; i++) {
                sr_lse *t = &part[i0 + i];
                if (tb[i] >= j0 && tb[i] < j0 + nt) t->target = tgt[i];
                if (st[i].bad || (isinf(st[i].m) && st[i].m > 0)) {
                    t->sum = NAN; /* poison: the merged loss becomes NaN everywhere */
                    continue;
                }
                double s = HSUM_D(st[i].lo, st[i].hi); /* a poisoned t->sum stays NaN */
                t->sum = (t->sum == 0.0 ? 0.0 : t->sum * exp(t->max - (double)st[i].m)) + s;
                t->max = st[i].m;
            }
        }
    }
}

/* Backward over one MRB-query block and one tile: P in registers, then
 * through a small L1 buffer (for broadcasts) into dQ and dV rows. */
static TGT void FN(bwd_tile)(const float *q, int64_t d, const float *pack, const float *v, int64_t j0,
                             int64_t nt, const float *mx, const float *scale, const int64_t *trow, float inv_b,
                             float *dq, float *dv)
{
    float pb[MRB * NR] __attribute__((aligned(64)));
    const int64_t dvec = d / VL;
    for (int64_t p0 = 0; p0 < nt; p0 += NR) {
        const int nj = nt - p0 < NR ? (int)(nt - p0) : NR;
        vf acc[MRB][NRV];
        LOGITS(MRB, acc, q, pack + p0 * d, d);
        _Pragma("GCC unroll 16") for (int i = 0; i < MRB; i++)
        {
            vf m = VSET1(mx[i]), sc = VSET1(scale[i]);
            _Pragma("GCC unroll 4") for (int c = 0; c < NRV; c++)
                VSTORE(pb + i * NR + c * VL, VMUL(VEXP(VSUB(acc[i][c], m)), sc));
            int64_t tr = trow[i] - (j0 + p0);
            if (tr >= 0 && tr < nj) pb[i * NR + tr] -= inv_b; /* owner only */
        }
        const float *vr = v + (j0 + p0) * d;
        if (dq)
            for (int64_t kv = 0; kv < dvec; kv++) {
                vf a[MRB];
                _Pragma("GCC unroll 16") for (int i = 0; i < MRB; i++) a[i] = VLOAD(dq + i * d + kv * VL);
                for (int j = 0; j < nj; j++) {
                    vf x = VLOAD(vr + j * d + kv * VL);
                    _Pragma("GCC unroll 16") for (int i = 0; i < MRB; i++) a[i] =
                        VFMA(VSET1(pb[i * NR + j]), x, a[i]);
                }
                _Pragma("GCC unroll 16") for (int i = 0; i < MRB; i++) VSTORE(dq + i * d + kv * VL, a[i]);
            }
        if (dv) {
            float *dr = dv + p0 * d;
            for (int64_t kv = 0; kv < dvec; kv++) {
                vf qi[MRB];
                _Pragma("GCC unroll 16") for (int i = 0; i < MRB; i++) qi[i] = VLOAD(q + i * d + kv * VL);
                for (int j = 0; j < nj; j++) {
                    vf a = VLOAD(dr + j * d + kv * VL);
                    _Pragma("GCC unroll 16") for (int i = 0; i < MRB; i++) a =
                        VFMA(VSET1(pb[i * NR + j]), qi[i], a);
                    VSTORE(dr + j * d + kv * VL, a);
                }
            }
        }
    }
}

static TGT void FN(backward)(const float *q, int64_t nq, int64_t d, const float *v, int64_t j_lo, int64_t j_hi,
                             const float *mx, const float *scale, const int64_t *trow, float inv_b, float *pack,
                             float *dq, float *dv)
{
    const int64_t ntile = sr_fused_tile(d);
    float qpad[MRB * SR_FUSED_D_MAX], dqt[MRB * SR_FUSED_D_MAX];
    float mpad[MRB], spad[MRB];
    int64_t tpad[MRB];
    for (int64_t j0 = j_lo; j0 < j_hi; j0 += ntile) {
        const int64_t nt = j_hi - j0 < ntile ? j_hi - j0 : ntile;
        float *dvt = dv ? dv + (j0 - j_lo) * d : NULL;
        if (dvt) memset(dvt, 0, sizeof(float) * (size_t)(nt * d));
        FN(pack)(v, j0, nt, d, pack);
        for (int64_t i0 = 0; i0 < nq; i0 += MRB) {
            const int mr = nq - i0 < MRB ? (int)(nq - i0) : MRB;
            /* dQ of the tile in its own accumulator, then added: sums of
             * nt terms, then of n / nt, instead of one chain over the shard. */
            if (dq) memset(dqt, 0, sizeof(float) * (size_t)(MRB * d));
            if (mr == MRB) {
                FN(bwd_tile)(q + i0 * d, d, pack, v, j0, nt, mx + i0, scale + i0, trow + i0, inv_b,
                             dq ? dqt : NULL, dvt);
            } else { /* the last block: zero rows with scale 0 give P = 0 (no effect on dV) */
                memset(qpad, 0, sizeof(float) * (size_t)(MRB * d));
                memcpy(qpad, q + i0 * d, sizeof(float) * (size_t)(mr * d));
                for (int i = 0; i < MRB; i++) {
                    mpad[i] = i < mr ? mx[i0 + i] : 0.0f;
                    spad[i] = i < mr ? scale[i0 + i] : 0.0f;
                    tpad[i] = i < mr ? trow[i0 + i] : -1;
                }
                FN(bwd_tile)(qpad, d, pack, v, j0, nt, mpad, spad, tpad, inv_b, dq ? dqt : NULL, dvt);
            }
            if (dq)
                for (int64_t k = 0; k < mr * d; k += VL)
                    VSTORE(dq + i0 * d + k, VADD(VLOAD(dq + i0 * d + k), VLOAD(dqt + k)));
        }
    }
}

#undef NR
#undef LOGITS
