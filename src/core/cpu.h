/* cpu.h: what this processor offers the kernels, and how fast it can go.
 * The instruction sets the kernels may use (detected at run time), the
 * FP32 FMA peak of one core measured now (an unrolled loop of independent
 * FMAs in the widest vectors the CPU has), and the BLAS library's identity
 * (OpenBLAS picks its kernel by CPU, or by OPENBLAS_CORETYPE). Benchmarks
 * report each kernel as a fraction of the peak measured in the same run;
 * runs log the path they took. Local; no MPI.
 */
#ifndef SR_CORE_CPU_H
#define SR_CORE_CPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sr_cpu {
    bool fma, avx2, avx512f, avx512_bf16;
    int vector_bits;   /* widest FP32 vectors the FMA peak loop used: 512, 256 or 0 (scalar) */
} sr_cpu;

void sr_cpu_detect(sr_cpu *cpu);

/* FP32 GFLOP/s of one core's FMA units over about `seconds` of work (2 flops
 * an FMA lane). The caller pins the thread or runs one rank per core. */
double sr_cpu_fma_peak_gflops(const sr_cpu *cpu, double seconds);
/* The same in thread CPU seconds: on a shared machine, the rate while this
 * thread runs (set against a kernel's CPU time, not its wall time). */
double sr_cpu_fma_peak_cpu_gflops(const sr_cpu *cpu, double seconds);
/* The same for vdpbf16ps (AVX512_BF16 dot products of bf16 pairs into fp32,
 * 4 flops a lane); 0 where the CPU lacks AVX512_BF16. */
double sr_cpu_bf16_peak_gflops(const sr_cpu *cpu, double seconds);

/* "avx512f+bf16 (512-bit FMA), OpenBLAS 0.3.21 SkylakeX, 1 thread": for logs
 * and result rows. */
void sr_cpu_describe(const sr_cpu *cpu, char *buf, size_t len);

#endif
