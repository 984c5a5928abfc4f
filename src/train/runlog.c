/* runlog.c: run.dir/log.txt, what a run printed and what it ran on: a
 * header (version, commit, build, CPU and BLAS path, threads, MPI library,
 * hosts, dataset and its content digest) and then every message rank 0
 * logs (train.h, sr_trainer_fit). */
#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm/comm.h"
#include "core/cpu.h"
#include "train/runlog.h"
#include "train/trainer.h"

/* The distinct host names of the job, "a, b" (rank 0's view; collective). */
static sr_status host_names(const sr_trainer *t, char *out, size_t len, sr_error *err)
{
    char mine[MPI_MAX_PROCESSOR_NAME] = {0};
    int n = 0;
    SR_MPI(err, MPI_Get_processor_name(mine, &n));
    const int P = t->c->size;
    char *all = t->c->rank == 0 ? calloc((size_t)P, MPI_MAX_PROCESSOR_NAME) : NULL;
    if (t->c->rank == 0 && !all) sr_comm_abort(t->c, &(sr_error){SR_ERR_NOMEM, __FILE__, __LINE__, "out of memory"});
    sr_status st = SR_OK;
    SR_MPI_CHECK(err, MPI_Gather(mine, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0,
                                 t->c->comm));
    st = err->code;
    out[0] = '\0';
    for (int r = 0; all && st == SR_OK && r < P; r++) {
        const char *h = all + (size_t)r * MPI_MAX_PROCESSOR_NAME;
        int seen = 0;
        for (int q = 0; q < r && !seen; q++) seen = !strcmp(h, all + (size_t)q * MPI_MAX_PROCESSOR_NAME);
        if (!seen) snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? ", " : "", h);
    }
    free(all);
    return st;
}

sr_status sr_runlog_open(sr_trainer *t, bool resumed, FILE **out, sr_error *err)
{
    *out = NULL;
    char hosts[1024], mpi[MPI_MAX_LIBRARY_VERSION_STRING] = {0}, cpu_desc[256];
    SR_TRY(host_names(t, hosts, sizeof hosts, err));
    int n = 0;
    SR_MPI(err, MPI_Get_library_version(mpi, &n));
    if (t->c->rank != 0) return SR_OK;
    char *nl = strchr(mpi, '\n');
    if (nl) *nl = '\0';
    sr_cpu cpu;
    sr_cpu_detect(&cpu);
    sr_cpu_describe(&cpu, cpu_desc, sizeof cpu_desc);
    char path[SR_CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/log.txt", t->cfg.run_dir);
    FILE *f = fopen(path, resumed ? "a" : "w");
    if (!f) { /* the run goes on: its messages still reach stderr */
        sr_log_root(&t->log, SR_LOG_WARN, "%s: cannot write the run log: %s", path, strerror(errno));
        return SR_OK;
    }
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    const char *threads = getenv("OPENBLAS_NUM_THREADS");
    fprintf(f, "# softrec %s (commit %s), %s %s\n", SOFTREC_VERSION, SOFTREC_GIT_COMMIT, when,
            resumed ? "resumed" : "started");
    fprintf(f, "# build: %s\n", SOFTREC_BUILD);
    fprintf(f, "# cpu: %s; OPENBLAS_NUM_THREADS=%s\n", cpu_desc, threads ? threads : "(unset: OpenBLAS's default)");
    fprintf(f, "# mpi: %s; %d ranks on %s\n", mpi, t->c->size, hosts);
    fprintf(f, "# data: %s (%lld users, %lld items, content sha256 %s)\n", t->cfg.data_path,
            (long long)t->meta.num_users, (long long)t->meta.num_items,
            t->meta.content_sha256[0] ? t->meta.content_sha256 : "unknown");
    fflush(f);
    *out = f;
    return SR_OK;
}
