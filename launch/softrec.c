/* softrec: the command-line entry point. One table of commands; the
 * parsing, --help, the exit codes and MPI start-up (only for commands that
 * need it) are src/cli/cli.c, the commands src/cli/<command>_cmd.c.
 *
 * This file is built without the tuning flags (CMakeLists.txt): before
 * anything else, main checks that the CPU has every instruction set the
 * library was built for (SR_BUILD_ISA), so a -march=native binary on an
 * older CPU stops with a message instead of SIGILL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#ifndef SR_BUILD_ISA
#define SR_BUILD_ISA ""
#endif

/* Whether this CPU has the instruction set named by its compiler macro
 * (__AVX2__ -> "AVX2"); 1 for names this check does not know. */
static int cpu_has(const char *isa)
{
#if defined(__x86_64__) || defined(__i386__)
    /* __builtin_cpu_supports takes literals only: one row per name. */
    __builtin_cpu_init();
    const struct { const char *name; int has; } table[] = {
        {"SSE4_2", __builtin_cpu_supports("sse4.2")},     {"POPCNT", __builtin_cpu_supports("popcnt")},
        {"AVX", __builtin_cpu_supports("avx")},           {"AVX2", __builtin_cpu_supports("avx2")},
        {"FMA", __builtin_cpu_supports("fma")},           {"BMI2", __builtin_cpu_supports("bmi2")},
        {"F16C", __builtin_cpu_supports("f16c")},         {"AVX512F", __builtin_cpu_supports("avx512f")},
        {"AVX512CD", __builtin_cpu_supports("avx512cd")}, {"AVX512BW", __builtin_cpu_supports("avx512bw")},
        {"AVX512DQ", __builtin_cpu_supports("avx512dq")}, {"AVX512VL", __builtin_cpu_supports("avx512vl")},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (!strcmp(isa, table[i].name)) return table[i].has != 0;
#endif
    return 1;
}

/* 0, or 1 after printing which built-for instruction set the CPU lacks.
 * SOFTREC_TEST_CPU_LACKS=ISA (tests) makes this CPU lack ISA, listed or not. */
static int check_cpu(void)
{
    const char *fake = getenv("SOFTREC_TEST_CPU_LACKS");
    if (fake && !*fake) fake = NULL;
    char list[256];
    snprintf(list, sizeof list, "%s", SR_BUILD_ISA);
    char padded[260], needle[64];
    snprintf(padded, sizeof padded, ",%s,", list);
    snprintf(needle, sizeof needle, ",%s,", fake ? fake : "");
    if (fake && !strstr(padded, needle)) /* a test's ISA outside the list joins it */
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", *list ? "," : "", fake);
    char copy[256];
    memcpy(copy, list, sizeof copy);
    char *save = NULL;
    for (char *isa = strtok_r(copy, ",", &save); isa; isa = strtok_r(NULL, ",", &save)) {
        if (cpu_has(isa) && !(fake && !strcmp(isa, fake))) continue;
        fprintf(stderr,
                "softrec: this binary was built for %s (SOFTREC_NATIVE); this CPU lacks %s; "
                "rebuild with -DSOFTREC_NATIVE=OFF\n",
                list, isa);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (check_cpu()) return SR_ERR_CPU; /* docs/cli.md: exit codes */
    static const sr_cli_command *const commands[] = {
        &sr_cli_data_convert, &sr_cli_data_synth, &sr_cli_data_info, &sr_cli_data_reorder,
        &sr_cli_train, &sr_cli_eval, &sr_cli_export, &sr_cli_recommend, &sr_cli_checkpoint_verify,
        &sr_cli_analyze_lse_bias, &sr_cli_analyze_jacobian,
        &sr_cli_help, &sr_cli_version,
    };
    return sr_cli_main(commands, sizeof commands / sizeof *commands, argc, argv);
}
