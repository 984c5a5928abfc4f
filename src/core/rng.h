/* rng.h: counter-based random numbers (Philox4x32-10, Salmon et al., SC'11).
 *
 * A stream is identified by (seed, rank, stream): the key is the 64-bit seed
 * and the two high counter words are rank and stream, so streams never
 * overlap (2^64 blocks each) and any stream can be recreated on any rank
 * count. The state is a plain struct: checkpoints store it byte for byte.
 * Same (seed, rank, stream) and same calls give the same bits everywhere.
 */
#ifndef SR_CORE_RNG_H
#define SR_CORE_RNG_H

#include <stdint.h>

typedef struct sr_rng {
    uint32_t key[2];
    uint32_t ctr[4]; /* ctr[0..1]: block counter, ctr[2]: rank, ctr[3]: stream */
    uint32_t buf[4]; /* current output block */
    uint32_t used;   /* words of buf consumed (4 = empty) */
} sr_rng;

/* Well-known stream ids, so two subsystems never share a stream by accident. */
enum {
    SR_STREAM_INIT = 1,    /* parameter initialisation */
    SR_STREAM_SHUFFLE = 2, /* epoch order */
    SR_STREAM_SAMPLER = 3, /* negative sampling */
    SR_STREAM_DROPOUT = 4,
    SR_STREAM_SYNTH = 5,   /* synthetic data generator */
    SR_STREAM_SPLIT = 6    /* dataset split protocols */
};

void sr_rng_init(sr_rng *r, uint64_t seed, uint32_t rank, uint32_t stream);

/* One Philox4x32-10 block (exposed for known-answer tests). */
void sr_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

uint32_t sr_rng_u32(sr_rng *r);
uint64_t sr_rng_u64(sr_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double sr_rng_uniform(sr_rng *r);
/* Uniform integer in [0, n), n >= 1, unbiased (Lemire's method). */
uint64_t sr_rng_below(sr_rng *r, uint64_t n);
/* Standard normal (Box-Muller, both values drawn fresh: no hidden cache). */
double sr_rng_normal(sr_rng *r);
/* Skip to block `block` of this stream (random access, O(1)). */
void sr_rng_seek(sr_rng *r, uint64_t block);

#endif
