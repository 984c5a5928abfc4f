/* fault.c: parsing and firing of injected faults (see fault.h). */
#include "io/fault.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const phase_names[SR_FAULT_PHASE_COUNT] = {
    "none", "ckpt_write", "ckpt_before_commit", "ckpt_after_rename", "ckpt_read", "ckpt_latest", "eval", "alloc", "alloc-count",
    "start", "finish"};

const char *sr_fault_phase_name(sr_fault_phase p)
{
    return (p >= 0 && p < SR_FAULT_PHASE_COUNT) ? phase_names[p] : "?";
}

/* Non-negative decimal, the whole string. */
static int parse_count(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 12) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

sr_status sr_fault_parse(sr_fault *f, const char *spec, const char *action, sr_error *err)
{
    memset(f, 0, sizeof *f);
    f->rank = -1;
    f->nth = 1;
    if (!spec || !*spec) return SR_OK;
    size_t plen = strcspn(spec, "@#");
    for (int p = 1; p < SR_FAULT_PHASE_COUNT; p++)
        if (strlen(phase_names[p]) == plen && strncmp(spec, phase_names[p], plen) == 0) f->phase = (sr_fault_phase)p;
    if (f->phase == SR_FAULT_NONE)
        SR_FAIL(err, SR_ERR_CONFIG,
                "SOFTREC_FAULT='%s': unknown phase (expected ckpt_write, ckpt_before_commit, ckpt_after_rename, "
                "ckpt_read, ckpt_latest, eval, alloc, alloc-count, start or finish, then optional @rank and #nth)", spec);
    const char *s = spec + plen;
    while (*s) {
        char tag = *s++;
        size_t n = strcspn(s, "@#");
        int64_t v;
        if (parse_count(s, n, &v) != 0 || (tag == '#' && v < 1) || (tag == '@' && v > 1000000)) {
            memset(f, 0, sizeof *f);
            SR_FAIL(err, SR_ERR_CONFIG, "SOFTREC_FAULT='%s': bad %s after '%c'", spec,
                    tag == '@' ? "rank" : "count (>= 1)", tag);
        }
        if (tag == '@') f->rank = (int)v;
        else f->nth = v;
        s += n;
    }
    if (!action || !*action || strcmp(action, "kill") == 0) {
        f->action = SR_FAULT_KILL;
    } else if (strcmp(action, "error") == 0) {
        f->action = SR_FAULT_ERROR;
    } else if (strcmp(action, "stop") == 0) {
        f->action = SR_FAULT_STOP;
    } else {
        memset(f, 0, sizeof *f);
        SR_FAIL(err, SR_ERR_CONFIG, "SOFTREC_FAULT_ACTION='%s': expected kill, error or stop", action);
    }
    return SR_OK;
}

sr_status sr_fault_from_env(sr_fault *f, sr_error *err)
{
    return sr_fault_parse(f, getenv("SOFTREC_FAULT"), getenv("SOFTREC_FAULT_ACTION"), err);
}

sr_status sr_fault_hit(sr_fault *f, sr_fault_phase p, int rank, const char *where, sr_error *err)
{
    if (!f || f->phase == SR_FAULT_NONE || f->phase != p) return SR_OK;
    if (f->rank >= 0 && f->rank != rank) return SR_OK;
    if (++f->hits != f->nth) return SR_OK;
    if (f->action != SR_FAULT_ERROR) {
        /* Leave a trace for the test log, then die the way kill -9 does, or
         * freeze the way kill -STOP does (the watchdog tests). */
        const int stop = f->action == SR_FAULT_STOP;
        char msg[256];
        int n = snprintf(msg, sizeof msg, "softrec: fault: rank %d %s at %s (%s)\n", rank,
                         stop ? "stopped" : "killed", phase_names[p], where ? where : "");
        if (n > 0) {
            ssize_t w = write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
            (void)w;
        }
        if (stop) {
            raise(SIGSTOP);
            return SR_OK; /* continued (SIGCONT) */
        }
        raise(SIGKILL);
        _exit(137); /* not reached */
    }
    SR_FAIL(err, SR_ERR_IO, "%s: injected fault at %s on rank %d", where ? where : "?", phase_names[p], rank);
}

void sr_fault_arm_mem(const sr_fault *f, int rank, sr_mem *m)
{
    if (!f || !m || (f->rank >= 0 && f->rank != rank)) return;
    if (f->phase == SR_FAULT_ALLOC) m->fail_at = f->nth;
    else if (f->phase == SR_FAULT_ALLOC_COUNT) m->fail_at = -1; /* count only */
}

void sr_fault_report_mem(const sr_fault *f, int rank, const sr_mem *m, const char *who)
{
    if (!f || !m || f->phase != SR_FAULT_ALLOC_COUNT || (f->rank >= 0 && f->rank != rank)) return;
    fprintf(stderr, "softrec: alloc-count: rank %d: %lld (%s)\n", rank, (long long)m->counted, who ? who : "?");
}
