/* test_guard.c: preemption and the watchdog.
 * CUnit part (every rank count): a SIGUSR1 raised on one rank stops every
 * rank at the same step; only one guard at a time; handlers are restored;
 * normal steps never trip the watchdog.
 * Program modes for the script tests (tests/scripts/guard_*.sh):
 *   test_guard stuck R S    rank R sleeps 30 s inside step S: the job must
 *                           end promptly with the watchdog's message
 *   test_guard loop DIR     steps forever (120 s cap), each rank writes its
 *                           pid to DIR/pid.<rank> (for kill -STOP) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm/comm.h"
#include "harness.h"
#include "train/guard.h"

static void test_signal_stops_all_at_same_step(void)
{
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &e), SR_OK);
    sr_guard *g = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_guard_create(&g, &c, 0, 0, &e), SR_OK);
    sr_guard *g2 = NULL;
    CU_ASSERT_EQUAL(sr_guard_create(&g2, &c, 0, 0, &e), SR_ERR_INTERNAL);
    CU_ASSERT_STRING_EQUAL(e.msg, "guard: only one guard may exist at a time");
    sr_error_clear(&e);
    int64_t stopped = -1;
    int sig = 0;
    for (int64_t step = 0; step < 10; step++) {
        sr_guard_step_begin(g, step);
        if (step == 3 && c.rank == c.size - 1) raise(SIGUSR1);
        sr_guard_step_end(g, step);
        CU_ASSERT_EQUAL_FATAL(sr_guard_should_stop(g, &sig, &e), SR_OK);
        if (sig) {
            stopped = step;
            break;
        }
    }
    CU_ASSERT_EQUAL(stopped, 3);
    CU_ASSERT_EQUAL(sig, SIGUSR1);
    CU_ASSERT_EQUAL(sr_guard_signal(g), c.rank == c.size - 1 ? SIGUSR1 : 0);
    sr_guard_destroy(&g);
    CU_ASSERT_PTR_NULL(g);
    struct sigaction cur;
    sigaction(SIGUSR1, NULL, &cur);
    CU_ASSERT(cur.sa_handler == SIG_DFL);
    /* A new guard starts with a clear flag; SIGTERM counts too. */
    CU_ASSERT_EQUAL_FATAL(sr_guard_create(&g, &c, 0, 0, &e), SR_OK);
    CU_ASSERT_EQUAL(sr_guard_should_stop(g, &sig, &e), SR_OK);
    CU_ASSERT_EQUAL(sig, 0);
    if (c.rank == 0) raise(SIGTERM);
    CU_ASSERT_EQUAL(sr_guard_should_stop(g, &sig, &e), SR_OK);
    CU_ASSERT_EQUAL(sig, SIGTERM);
    sr_guard_destroy(&g);
    sr_comm_destroy(&c);
}

static void test_watchdog_quiet_for_normal_steps(void)
{
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &e), SR_OK);
    sr_guard *g = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_guard_create(&g, &c, 3, 0.5, &e), SR_OK);
    for (int64_t step = 0; step < 15; step++) {
        sr_guard_step_begin(g, step);
        usleep(5000 + 1000 * (useconds_t)(step % 3));
        MPI_Barrier(c.comm);
        sr_guard_step_end(g, step);
    }
    sr_guard_watch(g, "checkpoint save", 5);
    usleep(200000); /* longer than any step, within its own limit */
    sr_guard_unwatch(g);
    sr_guard_destroy(&g);
    CU_ASSERT_PTR_NULL(g);
    sr_comm_destroy(&c);
}

/* Steps with one all-reduce each, like training. */
static int run_steps(int stuck_rank, int64_t stuck_step, const char *piddir)
{
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    if (sr_comm_init(&c, MPI_COMM_WORLD, &e) != SR_OK) return 2;
    if (piddir) {
        char p[1200];
        snprintf(p, sizeof p, "%s/pid.%d", piddir, c.rank);
        FILE *f = fopen(p, "w");
        if (f) {
            fprintf(f, "%ld\n", (long)getpid());
            fclose(f);
        }
    }
    sr_guard *g = NULL;
    if (sr_guard_create(&g, &c, 3, 1.0, &e) != SR_OK) return 2;
    double t0 = MPI_Wtime();
    for (int64_t step = 0; MPI_Wtime() - t0 < 120; step++) {
        sr_guard_step_begin(g, step);
        if (c.rank == stuck_rank && step == stuck_step) sleep(30);
        double x = 1, y = 0;
        MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_SUM, c.comm);
        usleep(10000);
        sr_guard_step_end(g, step);
        if (!piddir && step > stuck_step + 5) break;
    }
    sr_guard_destroy(&g);
    sr_comm_destroy(&c);
    return 0;
}

static void register_tests(void)
{
    CU_pSuite s = CU_add_suite("guard", NULL, NULL);
    CU_add_test(s, "signal_stops_all_at_same_step", test_signal_stops_all_at_same_step);
    CU_add_test(s, "watchdog_quiet_for_normal_steps", test_watchdog_quiet_for_normal_steps);
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "stuck") == 0) {
        MPI_Init(&argc, &argv);
        int rc = run_steps(atoi(argv[2]), atoll(argv[3]), NULL);
        MPI_Finalize();
        return rc;
    }
    if (argc >= 3 && strcmp(argv[1], "loop") == 0) {
        MPI_Init(&argc, &argv);
        int rc = run_steps(-1, -1, argv[2]);
        MPI_Finalize();
        return rc;
    }
    return sr_test_main(argc, argv, register_tests);
}
