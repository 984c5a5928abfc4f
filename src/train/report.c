/* report.c: run files, metrics lines and progress (report.h). */
#include "train/report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void run_path(const sr_config *cfg, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", cfg->run_dir, name);
}

void sr_report_run_files(const sr_config *cfg, int rank, bool resumed)
{
    if (rank != 0) return;
    char path[SR_CONFIG_PATH_MAX + 32];
    if (!resumed) {
        run_path(cfg, "metrics.jsonl", path, sizeof path);
        remove(path); /* one run, one metrics file; a resumed run appends */
    }
    run_path(cfg, "config.ini", path, sizeof path);
    FILE *f = fopen(path, "w");
    if (!f) return;
    size_t need = sr_config_write_ini(cfg, NULL, 0) + 1;
    char *txt = malloc(need);
    if (txt) {
        sr_config_write_ini(cfg, txt, need);
        fputs(txt, f);
        free(txt);
    }
    fclose(f);
}

void sr_report_append(const sr_config *cfg, const sr_log *log, int rank, const char *line)
{
    if (rank != 0) return;
    char path[SR_CONFIG_PATH_MAX + 32];
    run_path(cfg, "metrics.jsonl", path, sizeof path);
    FILE *f = fopen(path, "a");
    if (!f) {
        sr_log_root(log, SR_LOG_WARN, "%s: cannot append metrics: %s", path, strerror(errno));
        return;
    }
    fprintf(f, "%s\n", line);
    fclose(f);
}

static void format_eta(double s, char *buf, size_t len)
{
    if (!isfinite(s) || s < 0) s = 0;
    long v = (long)(s + 0.5);
    if (v >= 3600) snprintf(buf, len, "%ld:%02ld:%02ld", v / 3600, (v / 60) % 60, v % 60);
    else snprintf(buf, len, "%02ld:%02ld", v / 60, v % 60);
}

void sr_report_progress(const sr_log *log, int rank, const sr_progress *p)
{
    if (rank != 0) return;
    char eta[32];
    format_eta(p->eta_seconds, eta, sizeof eta);
    fprintf(stderr, "%sepoch %lld/%lld step %lld/%lld loss %.4f %.0f ex/s ETA %s%s", log->tty ? "\r\033[K" : "",
            (long long)p->epoch, (long long)p->epochs, (long long)p->step, (long long)p->steps, p->loss,
            p->examples_per_second, eta, log->tty && p->step < p->steps ? "" : "\n");
    fflush(stderr);
}

double sr_eval_result_value(const sr_eval_result *r, int kind, int k_index)
{
    const double *v[6] = {r->ndcg, r->precision, r->recall, r->hit, r->mrr, r->map};
    return kind >= 0 && kind < 6 && k_index >= 0 && k_index < r->nk ? v[kind][k_index] : 0.0;
}

void sr_eval_result_json(const sr_eval_result *r, char *buf, size_t len)
{
    size_t off = 0;
    off += (size_t)snprintf(buf + off, len - off, "{");
    for (int i = 0; i < r->nk && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off,
                                "%s\"ndcg@%lld\": %.6f, \"precision@%lld\": %.6f, \"recall@%lld\": %.6f, "
                                "\"hit@%lld\": %.6f, \"mrr@%lld\": %.6f, \"map@%lld\": %.6f",
                                i ? ", " : "", (long long)r->k[i], r->ndcg[i], (long long)r->k[i],
                                r->precision[i], (long long)r->k[i], r->recall[i], (long long)r->k[i], r->hit[i],
                                (long long)r->k[i], r->mrr[i], (long long)r->k[i], r->map[i]);
    if (off < len)
        snprintf(buf + off, len - off, "%s\"users\": %lld}", r->nk ? ", " : "", (long long)r->users);
}
