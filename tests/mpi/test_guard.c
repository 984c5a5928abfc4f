/* test_guard.c: preemption, the watchdog and heartbeats.
 * CUnit part (every rank count): a SIGUSR1 raised on one rank stops every
 * rank at the same step; only one guard at a time; handlers are restored;
 * normal steps never trip the watchdog; heartbeat files: created on every
 * rank, cost per step (printed, bounded), a rank behind is named in the
 * watchdog's line, files removed at destroy, a missing directory is an
 * agreed error.
 * Program modes for the script tests (tests/scripts/guard_*.sh):
 *   test_guard stuck R S    rank R sleeps 30 s inside step S: the job must
 *                           end promptly with the watchdog's message
 *   test_guard loop DIR     steps forever (120 s cap), each rank writes its
 *                           pid to DIR/pid.<rank> (for kill -STOP) and
 *                           publishes its heartbeat in DIR */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

/* A communicator and a guard (NULL after a failed assertion). */
static sr_guard *open_guard(sr_comm *c, double factor, double min_seconds)
{
    sr_error e;
    sr_error_clear(&e);
    sr_guard *g = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_comm_init(c, MPI_COMM_WORLD, &e), SR_OK);
    CU_ASSERT_EQUAL(sr_guard_create(&g, c, factor, min_seconds, &e), SR_OK);
    return g;
}

static void test_watchdog_quiet_for_normal_steps(void)
{
    sr_comm c;
    sr_guard *g = open_guard(&c, 3, 0.5);
    if (!g) return;
    for (int64_t step = 0; step < 15; step++) {
        sr_guard_step_begin(g, step);
        usleep(5000 + 1000 * (useconds_t)(step % 3));
        MPI_Barrier(c.comm);
        sr_guard_step_end(g, step);
    }
    sr_guard_watch(g, SR_GUARD_SAVE, 5);
    usleep(200000); /* longer than any step, within its own limit */
    sr_guard_unwatch(g);
    sr_guard_destroy(&g);
    CU_ASSERT_PTR_NULL(g);
    sr_comm_destroy(&c);
}

/* Every moment from the first step on is watched: a step, the time after
 * it (the step's limit), a save or an evaluation with its own history. */
static void test_phases_and_limits(void)
{
    sr_comm c;
    sr_guard *g = open_guard(&c, 20, 0.05);
    if (!g) return;
    CU_ASSERT_EQUAL(sr_guard_limit(g), 0); /* nothing armed before a step */
    for (int64_t step = 1; step <= 6; step++) {
        sr_guard_step_begin(g, step);
        /* warm-up: min_seconds, then 20 x the median of ~20 ms */
        double l = sr_guard_limit(g);
        if (step <= SR_GUARD_WARMUP) CU_ASSERT_DOUBLE_EQUAL(l, 0.05, 1e-12);
        /* 20 x a median >= 20 ms; the upper bound only says "a median of
         * steps", loose because a loaded machine stretches the sleeps */
        if (step > SR_GUARD_WARMUP) CU_ASSERT(l > 0.3 && l < 30);
        usleep(20000);
        sr_guard_step_end(g, step);
        /* after the step: armed with the step's limit (the median now
         * includes this step, so not l exactly; a 0 would be disarmed) */
        double after = sr_guard_limit(g);
        CU_ASSERT(after >= 0.05 - 1e-12);
        if (step > SR_GUARD_WARMUP) CU_ASSERT(after > 0.3 && after < 30);
    }
    /* a step whose end names another step is not timed */
    sr_guard_step_begin(g, 7);
    double l7 = sr_guard_limit(g);
    usleep(200000);
    sr_guard_step_end(g, 8);
    sr_guard_step_begin(g, 9);
    CU_ASSERT_DOUBLE_EQUAL(sr_guard_limit(g), l7, 1e-9);
    sr_guard_step_end(g, 9);
    /* the first save runs under min_seconds, the next under 20 x the first */
    sr_guard_watch(g, SR_GUARD_SAVE, 0);
    CU_ASSERT_DOUBLE_EQUAL(sr_guard_limit(g), 0.05, 1e-12);
    usleep(30000);
    sr_guard_unwatch(g);
    CU_ASSERT(sr_guard_limit(g) > 0); /* back to "after step" */
    sr_guard_watch(g, SR_GUARD_SAVE, 0);
    CU_ASSERT(sr_guard_limit(g) > 0.5 && sr_guard_limit(g) < 3);
    sr_guard_unwatch(g);
    sr_guard_watch(g, SR_GUARD_EVAL, 0); /* its own history: none yet */
    CU_ASSERT_DOUBLE_EQUAL(sr_guard_limit(g), 0.05, 1e-12);
    sr_guard_unwatch(g);
    char line[512];
    sr_guard_describe(g, line, sizeof line);
    char head[128];
    snprintf(head, sizeof head, "softrec: watchdog: rank %d stuck after step 9 for ", c.rank);
    CU_ASSERT_EQUAL(strncmp(line, head, strlen(head)), 0);
    sr_guard_watch(g, SR_GUARD_EVAL, 7);
    sr_guard_describe(g, line, sizeof line);
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "stuck in evaluation (after step 9) for "));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "(limit 7.0 s)"));
    sr_guard_unwatch(g);
    sr_guard_destroy(&g);
    sr_comm_destroy(&c);
}

/* Start-up and the finish enclose: armed (start-up under factor x
 * min_seconds, no step yet), a watched phase inside returns to them, the
 * first step leaves start-up, and the finish holds until destroy. */
static void test_start_and_finish(void)
{
    sr_comm c;
    sr_guard *g = open_guard(&c, 20, 0.05);
    if (!g) return;
    sr_guard_watch(g, SR_GUARD_START, 0);
    CU_ASSERT_DOUBLE_EQUAL(sr_guard_limit(g), 1.0, 1e-12);
    char line[512];
    sr_guard_describe(g, line, sizeof line);
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "stuck in start-up for "));
    sr_guard_watch(g, SR_GUARD_EVAL, 0);
    sr_guard_unwatch(g);
    CU_ASSERT_DOUBLE_EQUAL(sr_guard_limit(g), 1.0, 1e-12); /* back in start-up, not disarmed */
    sr_guard_step_begin(g, 1);
    CU_ASSERT_DOUBLE_EQUAL(sr_guard_limit(g), 0.05, 1e-12);
    sr_guard_step_end(g, 1);
    sr_guard_watch(g, SR_GUARD_FINISH, 0);
    sr_guard_watch(g, SR_GUARD_MODEL, 3);
    sr_guard_unwatch(g);
    sr_guard_describe(g, line, sizeof line);
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "stuck in finish (after step 1) for "));
    CU_ASSERT_DOUBLE_EQUAL(sr_guard_limit(g), 0.05, 1e-12);
    sr_guard_destroy(&g);
    sr_comm_destroy(&c);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_heartbeat(void)
{
    sr_comm c;
    sr_error e;
    sr_error_clear(&e);
    CU_ASSERT_EQUAL_FATAL(sr_comm_init(&c, MPI_COMM_WORLD, &e), SR_OK);
    const char *dir = sr_test_tmpdir();
    char mine[1200];
    snprintf(mine, sizeof mine, "%s/.heartbeat.%d", dir, c.rank);
    sr_guard *g = NULL;
    CU_ASSERT_EQUAL_FATAL(sr_guard_create(&g, &c, 3, 30, &e), SR_OK);

    /* A directory that does not exist: agreed error, rank 0's message. */
    char nodir[1200];
    snprintf(nodir, sizeof nodir, "%s/no-such-dir", dir);
    CU_ASSERT_EQUAL(sr_guard_set_heartbeat_dir(g, nodir, &e), SR_ERR_IO);
    char want[1400];
    snprintf(want, sizeof want, "%s/.heartbeat.0: cannot create heartbeat file: No such file or directory", nodir);
    CU_ASSERT_STRING_EQUAL(e.msg, want);
    sr_error_clear(&e);

    /* Cost of a step's bookkeeping without heartbeats, for comparison. */
    const int n = 2000;
    double t0 = mono_s();
    for (int64_t step = 0; step < n; step++) {
        sr_guard_step_begin(g, step);
        sr_guard_step_end(g, step);
    }
    double base = 1e6 * (mono_s() - t0) / n, base_worst = 0;
    MPI_Allreduce(&base, &base_worst, 1, MPI_DOUBLE, MPI_MAX, c.comm);

    CU_ASSERT_EQUAL_FATAL(sr_guard_set_heartbeat_dir(g, dir, &e), SR_OK);
    CU_ASSERT_EQUAL(access(mine, F_OK), 0);
    /* Every rank's first record exists once any rank has returned. */
    for (int q = 0; q < c.size; q++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/.heartbeat.%d", dir, q);
        CU_ASSERT_EQUAL(access(p, R_OK), 0);
    }

    /* Cost of publishing: two pwrites per step. */
    t0 = mono_s();
    for (int64_t step = 0; step < n; step++) {
        sr_guard_step_begin(g, step);
        sr_guard_step_end(g, step);
    }
    double us = 1e6 * (mono_s() - t0) / n, worst = 0;
    MPI_Allreduce(&us, &worst, 1, MPI_DOUBLE, MPI_MAX, c.comm);
    if (c.rank == 0) printf("\nheartbeat: %.2f us per step with, %.2f us without (step_begin + step_end, slowest rank)\n",
                           worst, base_worst);
    CU_ASSERT(worst < 100);

    /* The last rank stays after step n-1; the others begin step n and
     * name it. */
    MPI_Barrier(c.comm);
    int last = c.size - 1;
    if (c.rank != last) sr_guard_step_begin(g, n);
    MPI_Barrier(c.comm);
    char line[2048];
    sr_guard_describe(g, line, sizeof line);
    if (c.rank != last) {
        char head[256], named[256];
        snprintf(head, sizeof head, "softrec: watchdog: rank %d stuck in step %d for ", c.rank, n);
        snprintf(named, sizeof named, "; rank %d has not reached step %d (last heartbeat step %d, ", last, n, n - 1);
        CU_ASSERT_EQUAL(strncmp(line, head, strlen(head)), 0);
        CU_ASSERT_PTR_EQUAL(strstr(line, "; rank"), c.size > 1 ? strstr(line, named) : NULL);
        CU_ASSERT_PTR_NULL(strstr(line, "not responding"));
        if (c.size > 1 && !strstr(line, named)) fprintf(stderr, "got: %s\n", line);
        sr_guard_step_end(g, n);
    } else {
        CU_ASSERT_PTR_NULL(strstr(line, "; rank")); /* nobody is behind it */
    }
    MPI_Barrier(c.comm);
    sr_guard_destroy(&g);
    CU_ASSERT_NOT_EQUAL(access(mine, F_OK), 0);
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
    if (piddir && sr_guard_set_heartbeat_dir(g, piddir, &e) != SR_OK) {
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
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
    CU_add_test(s, "heartbeat", test_heartbeat);
    CU_add_test(s, "phases_and_limits", test_phases_and_limits);
    CU_add_test(s, "start_and_finish", test_start_and_finish);
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
