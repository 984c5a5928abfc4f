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

json_t *sr_json_number(double v, double step)
{
    if (!isfinite(v)) return json_null();
    return json_real(step > 0 ? round(v / step) * step : v);
}

void sr_report_append(const sr_config *cfg, const sr_log *log, int rank, const json_t *line)
{
    if (rank != 0) return;
    char *txt = json_dumps(line, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    if (!txt) {
        sr_log_root(log, SR_LOG_WARN, "cannot format a metrics line (out of memory)");
        return;
    }
    char path[SR_CONFIG_PATH_MAX + 32];
    run_path(cfg, "metrics.jsonl", path, sizeof path);
    FILE *f = fopen(path, "a");
    if (!f) {
        sr_log_root(log, SR_LOG_WARN, "%s: cannot append metrics: %s", path, strerror(errno));
        return;
    }
    fprintf(f, "%s\n", txt);
    fclose(f);
    free(txt);
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
    fprintf(log->out, "%sepoch %lld/%lld step %lld/%lld loss %.4f %.0f ex/s ETA %s%s", log->tty ? "\r\033[K" : "",
            (long long)p->epoch, (long long)p->epochs, (long long)p->step, (long long)p->steps, p->loss,
            p->examples_per_second, eta, log->tty && p->step < p->steps ? "" : "\n");
    fflush(log->out);
}

double sr_eval_result_value(const sr_eval_result *r, int kind, int k_index)
{
    const double *v[6] = {r->ndcg, r->precision, r->recall, r->hit, r->mrr, r->map};
    return kind >= 0 && kind < 6 && k_index >= 0 && k_index < r->nk ? v[kind][k_index] : 0.0;
}

json_t *sr_eval_result_to_json(const sr_eval_result *r)
{
    static const char *const names[6] = {"ndcg", "precision", "recall", "hit", "mrr", "map"}; /* sr_metric_kind order */
    json_t *o = json_object();
    for (int i = 0; i < r->nk; i++)
        for (int m = 0; m < 6; m++) {
            char key[48];
            snprintf(key, sizeof key, "%s@%lld", names[m], (long long)r->k[i]);
            json_object_set_new(o, key, sr_json_number(sr_eval_result_value(r, m, i), 1e-6));
        }
    json_object_set_new(o, "users", json_integer(r->users));
    return o;
}
