/* guard.c: signal flag, collective stop decision, watchdog thread (see
 * guard.h for the contract). */
#include "train/guard.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The one global: a handler receives only the signal number. */
static volatile sig_atomic_t sr_guard_signal_flag;

static void on_signal(int sig) { sr_guard_signal_flag = sig; }

struct sr_guard {
    const sr_comm *c;
    double factor, min_seconds;
    struct sigaction old_usr1, old_term;
    pthread_t thread;
    int thread_started;
    int mpi_multiple;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int quit;
    /* watched phase */
    int armed;
    int64_t step;
    const char *what; /* NULL: a step */
    double t0, limit;
    /* history of step durations (ring) */
    double hist[SR_GUARD_HISTORY];
    int nhist, next;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Limit of the next step; caller holds mu. */
static double step_limit(const sr_guard *g)
{
    if (g->nhist < SR_GUARD_WARMUP) return g->factor * g->min_seconds;
    double v[SR_GUARD_HISTORY];
    memcpy(v, g->hist, (size_t)g->nhist * sizeof *v);
    qsort(v, (size_t)g->nhist, sizeof *v, cmp_d);
    double med = (g->nhist % 2) ? v[g->nhist / 2] : 0.5 * (v[g->nhist / 2 - 1] + v[g->nhist / 2]);
    double l = g->factor * med;
    return l > g->min_seconds ? l : g->min_seconds;
}

_Noreturn static void fire(sr_guard *g, double elapsed)
{
    char msg[256];
    int n;
    if (g->what)
        n = snprintf(msg, sizeof msg, "softrec: watchdog: rank %d stuck in %s for %.1f s (limit %.1f s)\n",
                     g->c->rank, g->what, elapsed, g->limit);
    else
        n = snprintf(msg, sizeof msg, "softrec: watchdog: rank %d stuck in step %lld for %.1f s (limit %.1f s)\n",
                     g->c->rank, (long long)g->step, elapsed, g->limit);
    if (n > 0) {
        ssize_t w = write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
        (void)w;
    }
    if (g->mpi_multiple) MPI_Abort(MPI_COMM_WORLD, SR_GUARD_EXIT_WATCHDOG);
    _exit(SR_GUARD_EXIT_WATCHDOG);
}

static void *watch_loop(void *arg)
{
    sr_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->quit) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        if (g->quit || !g->armed || g->limit <= 0) continue;
        double el = now_s() - g->t0;
        if (el > g->limit) fire(g, el);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

sr_status sr_guard_create(sr_guard **out, const sr_comm *c, double factor, double min_seconds, sr_error *err)
{
    *out = NULL;
    /* One guard at a time: our handler already installed means another one
     * is alive (asked of the kernel, so no second global is needed). */
    struct sigaction cur;
    if (sigaction(SIGUSR1, NULL, &cur) == 0 && cur.sa_handler == on_signal)
        SR_FAIL(err, SR_ERR_INTERNAL, "guard: only one guard may exist at a time");
    sr_guard *g = calloc(1, sizeof *g);
    if (!g) SR_FAIL(err, SR_ERR_NOMEM, "guard: out of memory");
    g->c = c;
    g->factor = factor;
    g->min_seconds = min_seconds;
    int provided = MPI_THREAD_SINGLE, up = 0;
    MPI_Initialized(&up);
    if (up) MPI_Query_thread(&provided);
    g->mpi_multiple = provided == MPI_THREAD_MULTIPLE;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    sr_guard_signal_flag = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGUSR1, &sa, &g->old_usr1) != 0 || sigaction(SIGTERM, &sa, &g->old_term) != 0) {
        free(g);
        SR_FAIL(err, SR_ERR_INTERNAL, "guard: cannot install signal handlers");
    }
    if (factor > 0) {
        /* The main thread takes the signals: block them in the watchdog. */
        sigset_t block, old;
        sigemptyset(&block);
        sigaddset(&block, SIGUSR1);
        sigaddset(&block, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &block, &old);
        int rc = pthread_create(&g->thread, NULL, watch_loop, g);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0) {
            sr_guard_destroy(&g);
            SR_FAIL(err, SR_ERR_INTERNAL, "guard: cannot start the watchdog thread");
        }
        g->thread_started = 1;
    }
    *out = g;
    return SR_OK;
}

void sr_guard_destroy(sr_guard **pg)
{
    if (!pg || !*pg) return;
    sr_guard *g = *pg;
    if (g->thread_started) {
        pthread_mutex_lock(&g->mu);
        g->quit = 1;
        pthread_cond_signal(&g->cv);
        pthread_mutex_unlock(&g->mu);
        pthread_join(g->thread, NULL);
    }
    sigaction(SIGUSR1, &g->old_usr1, NULL);
    sigaction(SIGTERM, &g->old_term, NULL);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
    *pg = NULL;
}

int sr_guard_signal(const sr_guard *g)
{
    (void)g;
    return (int)sr_guard_signal_flag;
}

sr_status sr_guard_should_stop(sr_guard *g, int *sig, sr_error *err)
{
    int mine = (int)sr_guard_signal_flag, any = 0;
    if (MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, g->c->comm) != MPI_SUCCESS)
        SR_FAIL(err, SR_ERR_MPI, "guard: stop all-reduce failed");
    *sig = any;
    return SR_OK;
}

void sr_guard_step_begin(sr_guard *g, int64_t step)
{
    pthread_mutex_lock(&g->mu);
    g->step = step;
    g->what = NULL;
    g->limit = step_limit(g);
    g->t0 = now_s();
    g->armed = 1;
    pthread_mutex_unlock(&g->mu);
}

void sr_guard_step_end(sr_guard *g, int64_t step)
{
    pthread_mutex_lock(&g->mu);
    if (g->armed && !g->what && g->step == step) {
        g->hist[g->next] = now_s() - g->t0;
        g->next = (g->next + 1) % SR_GUARD_HISTORY;
        if (g->nhist < SR_GUARD_HISTORY) g->nhist++;
    }
    g->armed = 0;
    pthread_mutex_unlock(&g->mu);
}

void sr_guard_watch(sr_guard *g, const char *what, double limit_seconds)
{
    pthread_mutex_lock(&g->mu);
    g->what = what ? what : "a watched phase";
    g->limit = limit_seconds;
    g->t0 = now_s();
    g->armed = 1;
    pthread_mutex_unlock(&g->mu);
}

void sr_guard_unwatch(sr_guard *g)
{
    pthread_mutex_lock(&g->mu);
    g->armed = 0;
    g->what = NULL;
    pthread_mutex_unlock(&g->mu);
}
