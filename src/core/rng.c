/* rng.c: Philox4x32-10 and the draws built on it. */
#include "core/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void sr_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

void sr_rng_init(sr_rng *r, uint64_t seed, uint32_t rank, uint32_t stream)
{
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->ctr[0] = 0;
    r->ctr[1] = 0;
    r->ctr[2] = rank;
    r->ctr[3] = stream;
    r->used = 4;
}

void sr_rng_seek(sr_rng *r, uint64_t block)
{
    r->ctr[0] = (uint32_t)block;
    r->ctr[1] = (uint32_t)(block >> 32);
    r->used = 4;
}

uint32_t sr_rng_u32(sr_rng *r)
{
    if (r->used >= 4) {
        sr_philox4x32_10(r->ctr, r->key, r->buf);
        if (++r->ctr[0] == 0) ++r->ctr[1];
        r->used = 0;
    }
    return r->buf[r->used++];
}

uint64_t sr_rng_u64(sr_rng *r)
{
    uint64_t hi = sr_rng_u32(r);
    return (hi << 32) | sr_rng_u32(r);
}

double sr_rng_uniform(sr_rng *r)
{
    return (double)(sr_rng_u64(r) >> 11) * 0x1.0p-53;
}

uint64_t sr_rng_below(sr_rng *r, uint64_t n)
{
    if (n <= 1) return 0;
    if (n <= UINT32_MAX) {
        /* Lemire: multiply-shift with rejection of the biased low zone. */
        uint32_t n32 = (uint32_t)n;
        uint64_t m = (uint64_t)sr_rng_u32(r) * n32;
        uint32_t low = (uint32_t)m;
        if (low < n32) {
            uint32_t t = (uint32_t)(-n32) % n32;
            while (low < t) {
                m = (uint64_t)sr_rng_u32(r) * n32;
                low = (uint32_t)m;
            }
        }
        return m >> 32;
    }
    /* Large n: rejection on the smallest power-of-two mask. */
    uint64_t mask = n - 1;
    mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4;
    mask |= mask >> 8; mask |= mask >> 16; mask |= mask >> 32;
    uint64_t x;
    do x = sr_rng_u64(r) & mask; while (x >= n);
    return x;
}

double sr_rng_normal(sr_rng *r)
{
    double u1 = 1.0 - sr_rng_uniform(r); /* (0, 1]: log is finite */
    double u2 = sr_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
