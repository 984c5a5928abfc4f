/* harness.c: CUnit runner for serial and MPI test binaries. */
#include "harness.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Test-only process state: CUnit test functions take no arguments. */
static int g_rank, g_size;
static char g_data[4096];

int sr_test_rank(void) { return g_rank; }
int sr_test_size(void) { return g_size; }

const char *sr_test_tmpdir(void)
{
    const char *t = getenv("SR_TEST_TMP");
    return t && *t ? t : ".";
}

const char *sr_test_shared_data(void)
{
    const char *env = getenv("SOFTREC_DATA");
    if (env && *env) snprintf(g_data, sizeof g_data, "%s", env);
    else snprintf(g_data, sizeof g_data, "%s/../shared/data", SR_SOURCE_DIR);
    struct stat st;
    if (stat(g_data, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
    return g_data;
}

/* Ranks other than 0 run silently; their failures go to stderr. */
static void print_failures(void)
{
    for (CU_pFailureRecord f = CU_get_failure_list(); f; f = f->pNext)
        fprintf(stderr, "[rank %d] FAILED %s/%s: %s:%u: %s\n", g_rank,
                f->pSuite ? f->pSuite->pName : "?", f->pTest ? f->pTest->pName : "?",
                f->strFileName ? f->strFileName : "?", f->uiLineNumber,
                f->strCondition ? f->strCondition : "?");
}

int sr_test_main(int argc, char **argv, void (*register_fn)(void))
{
    (void)argc;
    (void)argv;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: cannot initialise the registry\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    register_fn();
    if (g_rank == 0) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
    } else {
        /* Quiet copies of the report; failures still reach stderr. */
        CU_basic_set_mode(CU_BRM_SILENT);
        if (!freopen("/dev/null", "w", stdout)) perror("freopen");
    }
    CU_basic_run_tests();
    if (g_rank != 0) print_failures();
    unsigned local = CU_get_number_of_tests_failed() + CU_get_number_of_suites_failed();
    unsigned worst = 0;
    MPI_Allreduce(&local, &worst, 1, MPI_UNSIGNED, MPI_MAX, MPI_COMM_WORLD);
    if (g_rank == 0 && g_size > 1)
        printf("ranks: %d, failing tests on the worst rank: %u\n", g_size, worst);
    CU_cleanup_registry();
    MPI_Finalize();
    return worst ? 1 : 0;
}
