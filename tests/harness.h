/* harness.h: one main() for every CUnit test binary, serial or MPI.
 *
 * Every rank runs every test and checks its own results. Rank 0 prints the
 * verbose CUnit report; other ranks stay quiet except for failures, which
 * they print to stderr with their rank. Failure counts are combined with
 * MPI_Allreduce(MAX), so all ranks exit with the same status: 0 when every
 * assertion on every rank passed, 1 otherwise (CUnit's own return code is 0
 * even when tests fail; see docs/platform.md, "CUnit").
 */
#ifndef SR_TESTS_HARNESS_H
#define SR_TESTS_HARNESS_H

#include <CUnit/CUnit.h>
#include <mpi.h>

/* register_fn adds the binary's suites (CU_add_suite / CU_add_test). */
int sr_test_main(int argc, char **argv, void (*register_fn)(void));

/* The world communicator's rank and size (valid inside tests). */
int sr_test_rank(void);
int sr_test_size(void);

/* Directory for scratch files, the same on every rank (from $SR_TEST_TMP or
 * the current directory). */
const char *sr_test_tmpdir(void);

/* Path of the shared data folder (../shared/data relative to the source tree,
 * or $SOFTREC_DATA); NULL when it is absent, so tests can skip. */
const char *sr_test_shared_data(void);

/* Assert that two doubles agree within rel * max(1, |a|, |b|). */
#define SR_ASSERT_CLOSE(a, b, rel) \
    CU_ASSERT(fabs((double)(a) - (double)(b)) <= (rel) * fmax(1.0, fmax(fabs((double)(a)), fabs((double)(b)))))

#endif
