/* eval_fused_kern.h: body of the fused top-K kernel, included once per ISA by
 * eval_fused.c with VL (floats a vector), NRV (vectors per item panel), MR
 * (queries per block), TGT (target attribute), FN(name) and the vector
 * helpers defined. Not a public header. */

#define NR (NRV * VL)

/* Items per packed tile: a multiple of NR near sr_fused_tile(d) (~128 KiB
 * of V, stays in L2 while every query block passes over it). */
static int64_t FN(tile)(int64_t d)
{
    int64_t nt = sr_fused_tile(d) / NR * NR;
    return nt < NR ? NR : nt;
}

/* One block of MR queries (q, MR x d, padded rows past mr) over the nt items
 * of a packed tile whose item 0 has global id gt. Scores in registers; a
 * query's lanes at or above its threshold (bits) go to fq_offer_. */
static TGT void FN(block)(const float *q, int64_t d, const float *pack, int64_t nt, int64_t gt, int64_t stride,
                          int mr, fq_ *st, int64_t k, const int64_t *excl)
{
    for (int64_t p0 = 0; p0 < nt; p0 += NR) {
        const int nj = nt - p0 < NR ? (int)(nt - p0) : NR;
        const float *panel = pack + p0 * d;
        vf acc[MR][NRV];
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)
            _Pragma("GCC unroll 4") for (int c = 0; c < NRV; c++) acc[i][c] = VZERO();
        for (int64_t kk = 0; kk < d; kk++) { /* NRV loads, MR broadcasts, MR x NRV FMAs */
            vf bv[NRV];
            _Pragma("GCC unroll 4") for (int c = 0; c < NRV; c++) bv[c] = VLOAD(panel + kk * NR + c * VL);
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {
                vf a = VSET1(q[i * d + kk]);
                _Pragma("GCC unroll 4") for (int c = 0; c < NRV; c++) acc[i][c] = VFMA(a, bv[c], acc[i][c]);
            }
        }
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {
            if (i >= mr) break;
            const vf t = VSET1(st[i].thr);
            uint64_t bits = 0;
            _Pragma("GCC unroll 4") for (int c = 0; c < NRV; c++) bits |= (uint64_t)VGE_BITS(acc[i][c], t) << (c * VL);
            if (__builtin_expect(bits != 0, 0)) { /* rare once the heap is full */
                float row[NR];
                _Pragma("GCC unroll 4") for (int c = 0; c < NRV; c++) VSTORE(row + c * VL, acc[i][c]);
                fq_offer_(&st[i], row, bits, nj, gt + p0 * stride, stride, k, excl);
            }
        }
    }
}

/* All tiles of v for the nq queries: pack a tile, pass every block over it
 * (each block's running state loaded from and saved to the scratch), each
 * block prefetching its share of the next tile's rows. */
static TGT void FN(sweep)(const float *q, int64_t nq, int64_t d, const float *v, int64_t n, int64_t g0,
                          int64_t stride, const int64_t *excl_indptr, const int64_t *excl_ids, int64_t k,
                          const sr_eval_fused_scratch *scr)
{
    const int64_t ntile = FN(tile)(d), full = nq / MR * MR;
    float qtail[MR * SR_FUSED_D_MAX]; /* the last, partial block: zero rows, never offered */
    if (full < nq) {
        memset(qtail, 0, sizeof(float) * (size_t)(MR * d));
        memcpy(qtail, q + full * d, sizeof(float) * (size_t)((nq - full) * d));
    }
    const int64_t nblk = (nq + MR - 1) / MR;
    for (int64_t j0 = 0; j0 < n; j0 += ntile) {
        const int64_t nt = n - j0 < ntile ? n - j0 : ntile;
        const int64_t nnext = n - j0 - nt < ntile ? n - j0 - nt : ntile;
        pack_(v, j0, nt, d, NR, scr->pack);
        for (int64_t i0 = 0; i0 < nq; i0 += MR) {
            const int mr = nq - i0 < MR ? (int)(nq - i0) : MR;
            prefetch_share_(v + (j0 + nt) * d, nnext * d, i0 / MR, nblk);
            fq_ st[MR];
            fq_load_(st, mr, i0, k, excl_indptr, scr);
            FN(block)(i0 < full ? q + i0 * d : qtail, d, scr->pack, nt, g0 + j0 * stride, stride, mr, st, k,
                      excl_ids);
            fq_save_(st, mr, i0, scr);
        }
    }
}

#undef NR
