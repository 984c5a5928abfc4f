/* cpu.c: feature detection, the in-run FMA peak, the BLAS identity (cpu.h). */
#include "core/cpu.h"

#include <cblas.h>
#include <immintrin.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

/* The peak loops are compiled optimised even in Debug builds: at -O0 the
 * accumulators live in memory and the loop measures loads and stores. */
#if defined(__GNUC__) && !defined(__clang__)
#define SR_PEAK_OPT __attribute__((optimize("O2")))
#else
#define SR_PEAK_OPT
#endif

void sr_cpu_detect(sr_cpu *cpu)
{
    memset(cpu, 0, sizeof *cpu);
    __builtin_cpu_init();
    cpu->fma = __builtin_cpu_supports("fma");
    cpu->avx2 = __builtin_cpu_supports("avx2");
    cpu->avx512f = __builtin_cpu_supports("avx512f");
#if defined(__GNUC__) && __GNUC__ >= 12
    cpu->avx512_bf16 = __builtin_cpu_supports("avx512bf16");
#endif
    cpu->vector_bits = cpu->avx512f ? 512 : (cpu->avx2 && cpu->fma) ? 256 : 0;
}

/* 12 independent accumulators in named registers (an array would live in
 * memory at -O2): enough chains to cover the FMA latency (4 cycles) on two
 * pipes. Returns the flops done. */
#define FMA_LOOP(T, SET, F, ADD, X, Y)                                                                 \
    T x = (X), y = (Y);                                                                                \
    T a0 = SET(0), a1 = SET(1), a2 = SET(2), a3 = SET(3), a4 = SET(4), a5 = SET(5), a6 = SET(6),      \
      a7 = SET(7), a8 = SET(8), a9 = SET(9), a10 = SET(10), a11 = SET(11);                            \
    for (int64_t i = 0; i < iters; i++) {                                                              \
        a0 = F(a0, x, y), a1 = F(a1, x, y), a2 = F(a2, x, y), a3 = F(a3, x, y);                       \
        a4 = F(a4, x, y), a5 = F(a5, x, y), a6 = F(a6, x, y), a7 = F(a7, x, y);                       \
        a8 = F(a8, x, y), a9 = F(a9, x, y), a10 = F(a10, x, y), a11 = F(a11, x, y);                   \
    }                                                                                                  \
    T sum = ADD(ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7))),                    \
                ADD(ADD(a8, a9), ADD(a10, a11)))

__attribute__((target("avx512f"))) SR_PEAK_OPT static double fma_loop_512(int64_t iters, float *sink)
{
    FMA_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_set1_ps(1.0f - 1e-7f),
             _mm512_set1_ps(1e-7f));
    *sink = _mm512_reduce_add_ps(sum);
    return (double)iters * 12 * 16 * 2;
}

__attribute__((target("avx2,fma"))) SR_PEAK_OPT static double fma_loop_256(int64_t iters, float *sink)
{
    FMA_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_set1_ps(1.0f - 1e-7f),
             _mm256_set1_ps(1e-7f));
    float v[8];
    _mm256_storeu_ps(v, sum);
    *sink = v[0] + v[7];
    return (double)iters * 12 * 8 * 2;
}

SR_PEAK_OPT static double fma_loop_scalar(int64_t iters, float *sink)
{
    float a[12];
    for (int k = 0; k < 12; k++) a[k] = (float)k;
    for (int64_t i = 0; i < iters; i++)
        for (int k = 0; k < 12; k++) a[k] = a[k] * (1.0f - 1e-7f) + 1e-7f;
    *sink = a[0] + a[11];
    return (double)iters * 12 * 2;
}

static double thread_cpu_now_(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The same 12 chains of vdpbf16ps (64 flops each: 16 lanes x 2 bf16
 * products, multiply and add); inputs the bf16 pairs (2^-7, 2^-7). */
#define BF_PAIR _mm512_castsi512_ps(_mm512_set1_epi32(0x3C003C00))
#define BF_DOT(a, x, y) _mm512_dpbf16_ps((a), (__m512bh)_mm512_castps_si512(x), (__m512bh)_mm512_castps_si512(y))
__attribute__((target("avx512f,avx512bf16"))) SR_PEAK_OPT static double bf16_loop_512(int64_t iters, float *sink)
{
    FMA_LOOP(__m512, _mm512_set1_ps, BF_DOT, _mm512_add_ps, BF_PAIR, BF_PAIR);
    *sink = _mm512_reduce_add_ps(sum);
    return (double)iters * 12 * 16 * 4;
}

/* Best rate of loop over about `seconds` of repeated tries of ~20 ms on `clock`. */
static double best_rate_(double (*loop)(int64_t, float *), double seconds, double (*clock)(void))
{
    float sink = 0;
    int64_t iters = 1 << 16;
    double best = 0, spent = 0;
    while (spent < seconds) { /* best of repeated timings: other work only slows a try */
        double t0 = clock(), flops = loop(iters, &sink), t = clock() - t0;
        spent += t;
        if (t < 0.02) iters *= 2;
        else if (flops / t > best) best = flops / t;
    }
    if (sink == 12345.0f) fprintf(stderr, " "); /* keeps the loops' results alive */
    return best / 1e9;
}

static double (*fma_loop_(const sr_cpu *cpu))(int64_t, float *)
{
    return cpu->vector_bits == 512 ? fma_loop_512 : cpu->vector_bits == 256 ? fma_loop_256 : fma_loop_scalar;
}

double sr_cpu_fma_peak_gflops(const sr_cpu *cpu, double seconds)
{
    return best_rate_(fma_loop_(cpu), seconds, sr_time_now);
}

double sr_cpu_fma_peak_cpu_gflops(const sr_cpu *cpu, double seconds)
{
    return best_rate_(fma_loop_(cpu), seconds, thread_cpu_now_);
}

double sr_cpu_bf16_peak_gflops(const sr_cpu *cpu, double seconds)
{
    return cpu->avx512_bf16 && cpu->avx512f ? best_rate_(bf16_loop_512, seconds, sr_time_now) : 0.0;
}

void sr_cpu_describe(const sr_cpu *cpu, char *buf, size_t len)
{
    const char *isa = cpu->avx512f ? "avx512f" : cpu->avx2 ? "avx2" : "sse";
    char *cfg = openblas_get_config(), *core = openblas_get_corename();
    snprintf(buf, len, "%s%s (%d-bit FMA), %s, core %s, %d BLAS thread%s", isa, cpu->avx512_bf16 ? "+bf16" : "",
             cpu->vector_bits, cfg ? cfg : "BLAS ?", core ? core : "?", openblas_get_num_threads(),
             openblas_get_num_threads() == 1 ? "" : "s");
}
