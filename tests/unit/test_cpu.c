/* test_cpu.c: feature detection agrees with what the compiler was told and
 * with the FMA loop the peak runs; the peak is positive and scales with the
 * vector width the CPU reports; the description names the BLAS core. The
 * vdpbf16ps peak is 0 without AVX512_BF16 and, with it, more than the FMA
 * peak's 2 flops a lane (4 flops a lane, at least 1 a cycle at 0.5 GHz). */
#include <string.h>

#include "core/cpu.h"
#include "harness.h"

static void test_detect_and_peak(void)
{
    sr_cpu cpu;
    sr_cpu_detect(&cpu);
#ifdef __AVX512F__
    CU_ASSERT(cpu.avx512f); /* a binary built for AVX-512 runs only where it is */
#endif
#ifdef __AVX2__
    CU_ASSERT(cpu.avx2);
#endif
    CU_ASSERT(cpu.vector_bits == 512 ? cpu.avx512f : cpu.vector_bits == 256 ? cpu.avx2 && cpu.fma : 1);
    double peak = sr_cpu_fma_peak_gflops(&cpu, 0.05);
    /* at least 2 flops a cycle at 0.5 GHz per vector lane width, whatever the load */
    CU_ASSERT(peak > (cpu.vector_bits ? cpu.vector_bits / 32 : 1) * 1.0);
    char d[256];
    sr_cpu_describe(&cpu, d, sizeof d);
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "core "));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "-bit FMA"));
}

static void test_bf16_peak(void)
{
    sr_cpu cpu;
    sr_cpu_detect(&cpu);
    sr_cpu none = cpu;
    none.avx512_bf16 = false;
    CU_ASSERT_EQUAL(sr_cpu_bf16_peak_gflops(&none, 0.05), 0.0);
    if (!cpu.avx512_bf16) return;
    CU_ASSERT(cpu.avx512f);
    CU_ASSERT(sr_cpu_bf16_peak_gflops(&cpu, 0.05) > 16 * 4 * 0.5);
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("cpu", NULL, NULL);
    CU_add_test(s, "detect_and_peak", test_detect_and_peak);
    CU_add_test(s, "bf16_peak", test_bf16_peak);
}

int main(int argc, char **argv) { return sr_test_main(argc, argv, register_tests); }
