/* softmax_fused_kern.h: body of the fused kernels, included once per ISA by
 * softmax_fused.c with VL (floats a vector), NRV (vectors per item panel),
 * MRF / MRB (queries per forward / backward block), TGT (target attribute),
 * FN(name) and the vector helpers defined. Not a public header.
 *
 * KBF16 defined (AVX-512 only): the logit products take bf16 pairs along d
 * (vdpbf16ps, fp32 accumulation), V packed as pairs with items fastest and
 * each query block rounded once per tile; P is rounded to bf16 in registers
 * and the backward's dQ += P V and dV = P^T Q take bf16 pairs too (along
 * items, resp. queries). exp, its sums, the max and accumulations stay as in
 * the fp32 instances. */

#define NR (NRV * VL)
#ifdef KBF16
typedef uint32_t FN(qt); /* two bf16 (k even in the low half, k + 1 high) */
#define QSTEP 2          /* components of d per product step */
#define vq __m512i
#define QLOAD(p) _mm512_loadu_si512((const void *)(p))
#define QSET1(x) _mm512_set1_epi32((int)(x))
#define QDOT(acc, a, b) _mm512_dpbf16_ps((acc), (__m512bh)(a), (__m512bh)(b))
#define QBUF(name, MR) FN(qt) name[(MR) * SR_FUSED_D_MAX / 2] __attribute__((aligned(64)))
#else
typedef float FN(qt);
#define QSTEP 1
#define vq vf
#define QLOAD(p) VLOAD(p)
#define QSET1(x) VSET1(x)
#define QDOT(acc, a, b) VFMA((a), (b), (acc))
#define QBUF(name, MR) FN(qt) name[1]
#endif

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

#ifndef KBF16
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

/* The query block in the product layout: fp32 rows as they are. */
static inline TGT const float *FN(prep_q)(const float *q, int mr, int64_t d, float *buf)
{
    (void)mr, (void)d, (void)buf;
    return q;
}
#else
/* 16 floats -> 16 bf16 (round to nearest even), zero-extended to 32 bits. */
static inline TGT __m512i FN(bf16x16)(const float *x)
{
    return _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x)));
}

/* One row of d floats -> d / 2 bf16 pairs along d. */
static inline TGT void FN(round_row)(const float *x, int64_t d, uint32_t *dst)
{
    for (int64_t k = 0; k < d; k += 16)
        _mm256_storeu_si256((__m256i *)(void *)(dst + k / 2), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + k)));
}

/* dst[k] = (bf16 a[k], bf16 b[k]) for k < d; b NULL: zero high halves. */
static inline TGT void FN(pair_rows)(const float *a, const float *b, int64_t d, uint32_t *dst)
{
    for (int64_t k = 0; k < d; k += 16) {
        __m512i hi = b ? _mm512_slli_epi32(FN(bf16x16)(b + k), 16) : _mm512_setzero_si512();
        _mm512_storeu_si512((void *)(dst + k), _mm512_or_si512(FN(bf16x16)(a + k), hi));
    }
}

/* V rows [j0, j0 + nj) -> logit panels of d / 2 pairs x NR items (items
 * fastest), then, from roundup(nj, NR) * d / 2 on, dQ panels of NR / 2 item
 * pairs x d; zero-padded. Same bytes as the fp32 pack. */
static TGT void FN(pack)(const float *v, int64_t j0, int64_t nj, int64_t d, uint32_t *pack)
{
    const int64_t dh = d / 2;
    uint32_t *vt = pack + (nj + NR - 1) / NR * NR * dh, row[SR_FUSED_D_MAX / 2];
    for (int64_t p0 = 0; p0 < nj; p0 += NR) {
        uint32_t *dst = pack + p0 * dh;
        for (int64_t jj = 0; jj < NR; jj++) {
            if (p0 + jj < nj) FN(round_row)(v + (j0 + p0 + jj) * d, d, row);
            else memset(row, 0, sizeof(uint32_t) * (size_t)dh);
            for (int64_t k = 0; k < dh; k++) dst[k * NR + jj] = row[k];
        }
        for (int64_t jp = 0; jp < NR / 2; jp++) {
            int64_t ja = p0 + 2 * jp;
            uint32_t *t = vt + (p0 / 2 + jp) * d;
            if (ja >= nj) memset(t, 0, sizeof(uint32_t) * (size_t)d);
            else FN(pair_rows)(v + (j0 + ja) * d, ja + 1 < nj ? v + (j0 + ja + 1) * d : NULL, d, t);
        }
    }
}

/* The query block in the product layout: bf16 pairs along d, rounded once
 * per block and tile (mr rows). */
static inline TGT const uint32_t *FN(prep_q)(const float *q, int mr, int64_t d, uint32_t *buf)
{
    for (int i = 0; i < mr; i++) FN(round_row)(q + i * d, d, buf + i * d / 2);
    return buf;
}
#endif

/* acc[i][c] = q_i . (panel column block c), i < MR. The k loop is the
 * register-tiled GEMM core: NRV vector loads and MR broadcasts per step of
 * QSTEP components (q: MR rows of d / QSTEP elements). */
#define LOGITS(MR, acc, q, panel, d)                                                                   \
    do {                                                                                               \
        const int64_t dk_ = (d) / QSTEP;                                                               \
        _Pragma("GCC unroll 16") for (int i_ = 0; i_ < (MR); i_++)                                     \
            _Pragma("GCC unroll 4") for (int c_ = 0; c_ < NRV; c_++) acc[i_][c_] = VZERO();           \
        for (int64_t k_ = 0; k_ < dk_; k_++) {                                                         \
            vq b_[NRV];                                                                                \
            _Pragma("GCC unroll 4") for (int c_ = 0; c_ < NRV; c_++) b_[c_] =                          \
                QLOAD((panel) + k_ * NR + c_ * VL);                                                    \
            _Pragma("GCC unroll 16") for (int i_ = 0; i_ < (MR); i_++)                                 \
            {                                                                                          \
                vq a_ = QSET1((q)[i_ * dk_ + k_]);                                                     \
                _Pragma("GCC unroll 4") for (int c_ = 0; c_ < NRV; c_++) acc[i_][c_] =                 \
                    QDOT(acc[i_][c_], a_, b_[c_]);                                                     \
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
static TGT void FN(fwd_tile)(const float *q, int64_t d, const FN(qt) *pack, int64_t j0, int64_t nt,
                             const int64_t *trow, int mr, FN(st) *st, float *tgt)
{
    QBUF(qk, MRF);
    const FN(qt) *qq = FN(prep_q)(q, MRF, d, qk);
    for (int64_t p0 = 0; p0 < nt; p0 += NR) {
        const int nj = nt - p0 < NR ? (int)(nt - p0) : NR;
        vf acc[MRF][NRV];
        LOGITS(MRF, acc, qq, pack + p0 * d / QSTEP, d);
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
                            const int64_t *trow, float *packf, sr_lse *part)
{
    FN(qt) *pack = (FN(qt) *)(void *)packf; /* the bf16 instance stores pairs */
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

#ifndef KBF16
/* Backward over one MRB-query block and one tile: P in registers, then
 * through a small L1 buffer (for broadcasts) into dQ and dV rows. */
static TGT void FN(bwd_tile)(const float *q, int64_t d, const FN(qt) *pack, const float *v, int64_t j0,
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

#else
#if NRV != 2 || MRB % 2
#error "the bf16 backward pairs two 16-lane P columns and an even number of queries"
#endif
/* P of one panel in bf16 (acc: logits in, P out): pb[i][jp] pairs along
 * items (dQ), pt[ip][j] pairs along queries (dV); items >= nj are zero so a
 * padded pair adds nothing (padded V is zero, but exp(-max) may overflow). */
static inline TGT void FN(form_p)(vf acc[MRB][NRV], const float *mx, const float *scale, const int64_t *trow,
                                  int64_t jbase, int nj, float inv_b, uint32_t *pb, uint32_t *pt)
{
    static const uint16_t ilv[2][32] __attribute__((aligned(64))) = { /* row 2ip in even halves, 2ip + 1 odd */
        {0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39, 8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47},
        {16, 48, 17, 49, 18, 50, 19, 51, 20, 52, 21, 53, 22, 54, 23, 55,
         24, 56, 25, 57, 26, 58, 27, 59, 28, 60, 29, 61, 30, 62, 31, 63}};
    __m512i row[MRB];
    _Pragma("GCC unroll 16") for (int i = 0; i < MRB; i++)
    {
        vf m = VSET1(mx[i]), sc = VSET1(scale[i]);
        int64_t tr = trow[i] - jbase;
        _Pragma("GCC unroll 4") for (int c = 0; c < NRV; c++)
        {
            int live = nj - c * VL; /* lanes of real items in this column block */
            __mmask16 keep = live >= VL ? (__mmask16)0xFFFF : live <= 0 ? 0 : (__mmask16)((1u << live) - 1);
            vf p = _mm512_maskz_mul_ps(keep, VEXP(VSUB(acc[i][c], m)), sc);
            if (tr >= c * VL && tr < c * VL + VL && tr < nj) /* owner only */
                p = _mm512_mask_sub_ps(p, (__mmask16)(1u << (tr - c * VL)), p, VSET1(inv_b));
            acc[i][c] = p;
        }
        row[i] = (__m512i)_mm512_cvtne2ps_pbh(acc[i][1], acc[i][0]); /* items 0..31 in order */
        _mm512_store_si512((void *)(pb + i * NR / 2), row[i]);
    }
    const __m512i lo = _mm512_load_si512((const void *)ilv[0]), hi = _mm512_load_si512((const void *)ilv[1]);
    _Pragma("GCC unroll 8") for (int ip = 0; ip < MRB / 2; ip++)
    {
        _mm512_store_si512((void *)(pt + ip * NR), _mm512_permutex2var_epi16(row[2 * ip], lo, row[2 * ip + 1]));
        _mm512_store_si512((void *)(pt + ip * NR + VL), _mm512_permutex2var_epi16(row[2 * ip], hi, row[2 * ip + 1]));
    }
}

/* dq (MRB x d) += P V over one panel: lanes along d, bf16 pairs of items. */
static inline TGT void FN(bwd_dq)(const uint32_t *pb, const uint32_t *vt, int nj, int64_t d, float *dq)
{
    const int njp = (nj + 1) / 2;
    for (int64_t kv = 0; kv < d / VL; kv++) {
        vf a[MRB];
        _Pragma("GCC unroll 16") for (int i = 0; i < MRB; i++) a[i] = VLOAD(dq + i * d + kv * VL);
        for (int jp = 0; jp < njp; jp++) {
            vq x = QLOAD(vt + jp * d + kv * VL);
            _Pragma("GCC unroll 16") for (int i = 0; i < MRB; i++) a[i] = QDOT(a[i], QSET1(pb[i * NR / 2 + jp]), x);
        }
        _Pragma("GCC unroll 16") for (int i = 0; i < MRB; i++) VSTORE(dq + i * d + kv * VL, a[i]);
    }
}

/* dv rows [0, nj) of the panel += P^T Q: lanes along d, bf16 pairs of queries. */
static inline TGT void FN(bwd_dv)(const uint32_t *pt, const uint32_t *qi, int nj, int64_t d, float *dr)
{
    for (int64_t kv = 0; kv < d / VL; kv++) {
        vq qv[MRB / 2];
        _Pragma("GCC unroll 8") for (int ip = 0; ip < MRB / 2; ip++) qv[ip] = QLOAD(qi + ip * d + kv * VL);
        for (int j = 0; j < nj; j++) {
            vf a = VLOAD(dr + j * d + kv * VL);
            _Pragma("GCC unroll 8") for (int ip = 0; ip < MRB / 2; ip++) a = QDOT(a, QSET1(pt[ip * NR + j]), qv[ip]);
            VSTORE(dr + j * d + kv * VL, a);
        }
    }
}

/* Backward over one MRB-query block and one tile, all three products on
 * bf16 pairs with fp32 accumulation. */
static TGT void FN(bwd_tile)(const float *q, int64_t d, const uint32_t *pack, const float *v, int64_t j0,
                             int64_t nt, const float *mx, const float *scale, const int64_t *trow, float inv_b,
                             float *dq, float *dv)
{
    (void)v; /* dQ reads the packed item pairs instead */
    uint32_t pb[MRB * NR / 2] __attribute__((aligned(64))), pt[MRB / 2 * NR] __attribute__((aligned(64)));
    uint32_t qi[MRB / 2 * SR_FUSED_D_MAX] __attribute__((aligned(64)));
    QBUF(qk, MRB);
    const uint32_t *qq = FN(prep_q)(q, MRB, d, qk), *vt = pack + (nt + NR - 1) / NR * NR * d / 2;
    if (dv)
        for (int ip = 0; ip < MRB / 2; ip++) FN(pair_rows)(q + 2 * ip * d, q + (2 * ip + 1) * d, d, qi + ip * d);
    for (int64_t p0 = 0; p0 < nt; p0 += NR) {
        const int nj = nt - p0 < NR ? (int)(nt - p0) : NR;
        vf acc[MRB][NRV];
        LOGITS(MRB, acc, qq, pack + p0 * d / 2, d);
        FN(form_p)(acc, mx, scale, trow, j0 + p0, nj, inv_b, pb, pt);
        if (dq) FN(bwd_dq)(pb, vt + p0 / 2 * d, nj, d, dq);
        if (dv) FN(bwd_dv)(pt, qi, nj, d, dv + p0 * d);
    }
}
#endif

static TGT void FN(backward)(const float *q, int64_t nq, int64_t d, const float *v, int64_t j_lo, int64_t j_hi,
                             const float *mx, const float *scale, const int64_t *trow, float inv_b, float *packf,
                             float *dq, float *dv)
{
    FN(qt) *pack = (FN(qt) *)(void *)packf;
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
#undef QSTEP
#undef vq
#undef QLOAD
#undef QSET1
#undef QDOT
#undef QBUF
