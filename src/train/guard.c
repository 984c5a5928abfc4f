/* guard.c: signal flag, collective stop decision, watchdog thread (see
 * guard.h for the contract). */
#include "train/guard.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define HB_MAGIC 0x42485253u /* "SRHB" */
#define HB_DIR_MAX 3900      /* longest heartbeat directory accepted */

/* Heartbeat phases: HB_START, then HB_PHASE0 + sr_guard_phase (the test
 * scripts read them: 1 step, 2 after a step, 3 checkpoint save, 4 model
 * save, 5 evaluation, 6 start-up, 7 finish). */
enum { HB_START = 0, HB_PHASE0 = 1 };

static const char *const phase_names[SR_GUARD_PHASES] = {"step",       "after step", "checkpoint save", "model save",
                                                          "evaluation", "start-up",   "finish"};

/* Launchers whose children may ask for SIGKILL at the parent's death. */
static const char *const launchers[] = {"mpirun", "mpiexec", "orterun", "orted", "prterun", "prted", "slurmstepd"};

/* One rank's heartbeat file: a single fixed-size record. The main thread
 * writes [0, offsetof(t_alive)) at step events; the watchdog thread writes
 * t_alive alone. seq == seq2 when a reader got the step part whole. */
typedef struct hb_rec {
    uint32_t magic;
    int32_t rank;
    uint64_t seq;
    int64_t step;     /* last step begun (-1: none yet) */
    int32_t phase;    /* HB_* */
    int32_t watchdog; /* 1: t_alive is kept by a watchdog thread */
    double t_step;    /* CLOCK_REALTIME of the last step event */
    uint64_t seq2;
    double t_alive;   /* CLOCK_REALTIME of the watchdog's last tick */
    uint8_t pad[8];
} hb_rec;

_Static_assert(sizeof(hb_rec) == 64, "heartbeat record is 64 bytes");

/* The one global: a handler receives only the signal number. */
static volatile sig_atomic_t sr_guard_signal_flag;

static void on_signal(int sig) { sr_guard_signal_flag = sig; }

/* Recent durations of one phase kind (ring). */
typedef struct phase_hist {
    double v[SR_GUARD_HISTORY];
    int n, next;
} phase_hist;

struct sr_guard {
    const sr_comm *c;
    double factor, min_seconds;
    struct sigaction old_usr1, old_term;
    pthread_t thread;
    int thread_started;
    int mpi_multiple;
    pid_t ppid; /* the launcher (0: not watched) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int quit;
    /* the current phase */
    int armed;   /* from the first step_begin or watch on (until an unwatch with no enclosing phase) */
    int outer;   /* the enclosing phase unwatch returns to: SR_GUARD_AFTER (a step has begun), _START,
                  * _FINISH, or -1 (none: unwatch disarms) */
    int64_t step;
    sr_guard_phase phase;
    double t0, limit;
    phase_hist hist[SR_GUARD_PHASES];
    /* heartbeat: fd changes under mu (only the main thread changes it) */
    int hb_fd;       /* -1: not publishing */
    char *hb_dir;    /* owned */
    uint64_t hb_seq; /* main thread only */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void hb_path(const char *dir, int rank, char *buf, size_t n)
{
    snprintf(buf, n, "%s/.heartbeat.%d", dir, rank);
}

/* Main thread: publish a step event (best effort, no fsync). */
static void hb_step(sr_guard *g, int64_t step, int phase)
{
    if (g->hb_fd < 0) return;
    hb_rec r;
    memset(&r, 0, sizeof r);
    r.magic = HB_MAGIC;
    r.rank = g->c->rank;
    r.seq = r.seq2 = ++g->hb_seq;
    r.step = step;
    r.phase = phase;
    r.watchdog = g->thread_started;
    r.t_step = wall_s();
    ssize_t w = pwrite(g->hb_fd, &r, offsetof(hb_rec, t_alive), 0);
    (void)w;
}

/* Watchdog thread, holding mu: the alive tick. */
static void hb_alive(sr_guard *g)
{
    if (g->hb_fd < 0) return;
    double t = wall_s();
    ssize_t w = pwrite(g->hb_fd, &t, sizeof t, (off_t)offsetof(hb_rec, t_alive));
    (void)w;
}

/* Rank q's record; 0 when missing or unreadable. */
static int hb_read(const char *dir, int q, hb_rec *r)
{
    char p[HB_DIR_MAX + 64];
    hb_path(dir, q, p, sizeof p);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int ok = 0;
    for (int tries = 0; tries < 3 && !ok; tries++)
        ok = pread(fd, r, sizeof *r, 0) == (ssize_t)sizeof *r && r->magic == HB_MAGIC && r->rank == q &&
             r->seq == r->seq2;
    close(fd);
    return ok;
}

/* Stop publishing: close and remove this rank's file (main thread). */
static void hb_close(sr_guard *g)
{
    pthread_mutex_lock(&g->mu);
    int fd = g->hb_fd;
    g->hb_fd = -1;
    pthread_mutex_unlock(&g->mu);
    if (fd >= 0) {
        close(fd);
        char p[HB_DIR_MAX + 64];
        hb_path(g->hb_dir, g->c->rank, p, sizeof p);
        unlink(p);
    }
    free(g->hb_dir);
    g->hb_dir = NULL;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Limit of a phase about to start; caller holds mu. After a step the
 * step's limit holds: what runs there is short and collective-free, or
 * waits in the next step's first collective. */
static double phase_limit(const sr_guard *g, sr_guard_phase phase)
{
    if (phase == SR_GUARD_START) return g->factor * g->min_seconds > g->min_seconds ? g->factor * g->min_seconds
                                                                                    : g->min_seconds;
    const phase_hist *h = &g->hist[phase == SR_GUARD_AFTER ? SR_GUARD_STEP : phase];
    if (h->n < (phase == SR_GUARD_STEP || phase == SR_GUARD_AFTER ? SR_GUARD_WARMUP : 1)) return g->min_seconds;
    double v[SR_GUARD_HISTORY];
    memcpy(v, h->v, (size_t)h->n * sizeof *v);
    qsort(v, (size_t)h->n, sizeof *v, cmp_d);
    double med = (h->n % 2) ? v[h->n / 2] : 0.5 * (v[h->n / 2 - 1] + v[h->n / 2]);
    double l = g->factor * med;
    return l > g->min_seconds ? l : g->min_seconds;
}

/* Record the current phase's duration (steps and watched phases); caller
 * holds mu. */
static void record_locked(sr_guard *g)
{
    if (!g->armed || g->phase == SR_GUARD_AFTER || g->phase == SR_GUARD_START) return;
    phase_hist *h = &g->hist[g->phase];
    h->v[h->next] = now_s() - g->t0;
    h->next = (h->next + 1) % SR_GUARD_HISTORY;
    if (h->n < SR_GUARD_HISTORY) h->n++;
}

/* Start a phase; caller holds mu. */
static void enter_locked(sr_guard *g, sr_guard_phase phase, double limit)
{
    g->phase = phase;
    g->limit = limit > 0 ? limit : phase_limit(g, phase);
    g->t0 = now_s();
    g->armed = 1;
}

/* Under a launcher, the parent whose death must end this rank (0: none);
 * asks the kernel for SIGKILL when the parent is a launcher process. */
static pid_t watch_parent(void)
{
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK") && !getenv("SLURM_STEP_ID")) return 0;
    pid_t pp = getppid();
    if (pp <= 1) return 0;
    char p[64], comm[64] = "";
    snprintf(p, sizeof p, "/proc/%ld/comm", (long)pp);
    FILE *f = fopen(p, "r");
    if (f) {
        if (!fgets(comm, sizeof comm, f)) comm[0] = '\0';
        fclose(f);
    }
    comm[strcspn(comm, "\n")] = '\0';
    for (size_t i = 0; i < sizeof launchers / sizeof *launchers; i++)
        if (!strcmp(comm, launchers[i])) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            break;
        }
    /* It may have died before the prctl: then getppid() moved already. */
    if (getppid() != pp) {
        static const char msg[] = "softrec: the launcher is gone; exiting\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(SR_WATCHDOG);
    }
    return pp;
}

/* Append to buf at *len (bounded, always terminated). */
static void add_text(char *buf, size_t n, size_t *len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void add_text(char *buf, size_t n, size_t *len, const char *fmt, ...)
{
    if (*len + 1 >= n) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *len, n - *len, fmt, ap);
    va_end(ap);
    if (k > 0) *len += (size_t)k < n - *len ? (size_t)k : n - *len - 1;
}

/* The watchdog line (no newline); caller holds mu. Other ranks named:
 * those not responding first, then those behind this rank's step. */
static void describe_locked(sr_guard *g, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    double el = g->armed ? now_s() - g->t0 : 0;
    if (g->phase == SR_GUARD_STEP || g->phase == SR_GUARD_AFTER)
        add_text(buf, n, &len, "softrec: watchdog: rank %d stuck %s %lld for %.1f s (limit %.1f s)", g->c->rank,
                 g->phase == SR_GUARD_STEP ? "in step" : "after step", (long long)g->step, el, g->limit);
    else if (g->phase == SR_GUARD_START && g->step < 0) /* no step yet */
        add_text(buf, n, &len, "softrec: watchdog: rank %d stuck in start-up for %.1f s (limit %.1f s)", g->c->rank,
                 el, g->limit);
    else
        add_text(buf, n, &len, "softrec: watchdog: rank %d stuck in %s (after step %lld) for %.1f s (limit %.1f s)",
                 g->c->rank, phase_names[g->phase], (long long)g->step, el, g->limit);
    if (g->hb_fd < 0 || !g->hb_dir) return;
    double now = wall_s();
    int named = 0, more = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int q = 0; q < g->c->size; q++) {
            if (q == g->c->rank) continue;
            hb_rec r;
            int ok = hb_read(g->hb_dir, q, &r);
            double ago = ok ? now - r.t_step : 0, silent = ok && r.watchdog ? now - r.t_alive : 0;
            int quiet = ok && r.watchdog && silent > SR_GUARD_SILENT_S;
            int behind = !ok || r.step < g->step;
            /* pass 0: ranks not responding; pass 1: the others behind */
            if (pass == 0 ? !quiet : (quiet || !behind)) continue;
            if (named == SR_GUARD_NAMED) {
                more++;
                continue;
            }
            named++;
            if (!ok)
                add_text(buf, n, &len, "; rank %d has not reached step %lld (no heartbeat record)", q,
                         (long long)g->step);
            else if (behind)
                add_text(buf, n, &len, "; rank %d has not reached step %lld (last heartbeat step %lld, %.1f s ago%s)",
                         q, (long long)g->step, (long long)r.step, ago, quiet ? ", not responding" : "");
            else
                add_text(buf, n, &len, "; rank %d is not responding (last heartbeat step %lld, %.1f s ago)", q,
                         (long long)r.step, ago);
        }
    }
    if (more) add_text(buf, n, &len, "; %d more", more);
}

_Noreturn static void fire(sr_guard *g)
{
    char msg[2048];
    describe_locked(g, msg, sizeof msg - 1);
    size_t n = strlen(msg);
    msg[n++] = '\n';
    ssize_t w = write(2, msg, n);
    (void)w;
    /* No one to report a failed MPI_Abort to: _exit below ends this rank. */
    if (g->mpi_multiple) MPI_Abort(MPI_COMM_WORLD, SR_WATCHDOG);
    _exit(SR_WATCHDOG);
}

/* The launcher died (mpirun killed, orted lost): nothing will collect or
 * end this rank, and its peers are going too. */
_Noreturn static void orphaned(sr_guard *g)
{
    char msg[160];
    int n = snprintf(msg, sizeof msg, "softrec: rank %d: the launcher (pid %ld) is gone; exiting\n", g->c->rank,
                     (long)g->ppid);
    ssize_t w = write(2, msg, n > 0 ? (size_t)n : 0);
    (void)w;
    _exit(SR_WATCHDOG);
}

static void *watch_loop(void *arg)
{
    sr_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    double last = now_s();
    while (!g->quit) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        if (g->quit) continue;
        hb_alive(g);
        if (g->ppid && getppid() != g->ppid) orphaned(g);
        /* A tick far later than 100 ms: this process was stopped (SIGSTOP,
         * a scheduler's suspend) or starved; that time is not the step's. */
        double t = now_s();
        if (t - last > SR_GUARD_SILENT_S) g->t0 += t - last - 0.1;
        last = t;
        if (!g->armed || g->limit <= 0) continue;
        if (now_s() - g->t0 > g->limit) fire(g);
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
    int provided = MPI_THREAD_SINGLE, up = 0;
    SR_MPI(err, MPI_Initialized(&up));
    if (up) SR_MPI(err, MPI_Query_thread(&provided));
    sr_guard *g = calloc(1, sizeof *g);
    if (!g) SR_FAIL(err, SR_ERR_NOMEM, "guard: out of memory");
    g->c = c;
    g->factor = factor;
    g->min_seconds = min_seconds;
    g->ppid = watch_parent();
    g->step = -1;
    g->outer = -1;
    g->hb_fd = -1;
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
    hb_close(g);
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
    SR_MPI(err, MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, g->c->comm));
    *sig = any;
    return SR_OK;
}

void sr_guard_step_begin(sr_guard *g, int64_t step)
{
    pthread_mutex_lock(&g->mu);
    g->step = step;
    if (g->outer != SR_GUARD_FINISH) g->outer = SR_GUARD_AFTER;
    enter_locked(g, SR_GUARD_STEP, 0);
    pthread_mutex_unlock(&g->mu);
    hb_step(g, step, HB_PHASE0 + SR_GUARD_STEP);
}

void sr_guard_step_end(sr_guard *g, int64_t step)
{
    pthread_mutex_lock(&g->mu);
    if (g->phase == SR_GUARD_STEP && g->step == step) record_locked(g);
    enter_locked(g, SR_GUARD_AFTER, 0);
    pthread_mutex_unlock(&g->mu);
    hb_step(g, step, HB_PHASE0 + SR_GUARD_AFTER);
}

void sr_guard_watch(sr_guard *g, sr_guard_phase phase, double limit_seconds)
{
    if (phase == SR_GUARD_STEP || phase == SR_GUARD_AFTER || phase >= SR_GUARD_PHASES) phase = SR_GUARD_SAVE;
    pthread_mutex_lock(&g->mu);
    if (phase == SR_GUARD_START || phase == SR_GUARD_FINISH) g->outer = (int)phase;
    enter_locked(g, phase, limit_seconds);
    int64_t step = g->step;
    pthread_mutex_unlock(&g->mu);
    hb_step(g, step, HB_PHASE0 + (int)phase);
}

void sr_guard_unwatch(sr_guard *g)
{
    pthread_mutex_lock(&g->mu);
    if (g->phase != SR_GUARD_STEP && g->phase != SR_GUARD_AFTER) record_locked(g);
    const int outer = g->outer >= 0 ? g->outer : SR_GUARD_AFTER;
    if (g->outer >= 0) enter_locked(g, (sr_guard_phase)outer, 0);
    else g->armed = 0;
    int64_t step = g->step;
    pthread_mutex_unlock(&g->mu);
    hb_step(g, step, HB_PHASE0 + outer);
}

double sr_guard_limit(sr_guard *g)
{
    pthread_mutex_lock(&g->mu);
    double l = g->armed ? g->limit : 0;
    pthread_mutex_unlock(&g->mu);
    return l;
}

sr_status sr_guard_set_heartbeat_dir(sr_guard *g, const char *dir, sr_error *err)
{
    hb_close(g);
    if (!dir) return SR_OK;
    int fd = -1;
    char p[HB_DIR_MAX + 64];
    if (strlen(dir) > HB_DIR_MAX) {
        sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "guard: heartbeat directory name longer than %d bytes",
                     HB_DIR_MAX);
    } else {
        hb_path(dir, g->c->rank, p, sizeof p);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot create heartbeat file: %s", p,
                         strerror(errno));
        } else {
            /* The first record, written before any rank returns. */
            hb_rec r;
            memset(&r, 0, sizeof r);
            r.magic = HB_MAGIC;
            r.rank = g->c->rank;
            r.seq = r.seq2 = ++g->hb_seq;
            pthread_mutex_lock(&g->mu);
            r.step = g->step;
            pthread_mutex_unlock(&g->mu);
            r.phase = HB_START;
            r.watchdog = g->thread_started;
            r.t_step = r.t_alive = wall_s();
            if (pwrite(fd, &r, sizeof r, 0) != (ssize_t)sizeof r)
                sr_error_set(err, SR_ERR_IO, __FILE__, __LINE__, "%s: cannot write heartbeat file", p);
        }
    }
    if (sr_comm_agree(g->c, err) != SR_OK) {
        if (fd >= 0) {
            close(fd);
            unlink(p);
        }
        return err->code;
    }
    g->hb_dir = malloc(strlen(dir) + 1);
    if (!g->hb_dir) {
        /* Peers keep publishing; this rank only cannot name them. */
        close(fd);
        unlink(p);
        return SR_OK;
    }
    strcpy(g->hb_dir, dir);
    pthread_mutex_lock(&g->mu);
    g->hb_fd = fd;
    pthread_mutex_unlock(&g->mu);
    return SR_OK;
}

void sr_guard_describe(sr_guard *g, char *buf, size_t n)
{
    if (!buf || n == 0) return;
    pthread_mutex_lock(&g->mu);
    describe_locked(g, buf, n);
    pthread_mutex_unlock(&g->mu);
}
