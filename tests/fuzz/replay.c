/* replay.c: runs a fuzz harness over saved inputs, with the normal compiler
 * and no libFuzzer, so CI replays the corpus (tests/fuzz/corpus/<name>/) on
 * every build. usage: fuzz_replay_<name> DIR_OR_FILE... ; exit 0 when every
 * input ran (a crash fails the test by itself). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)(n > 0 ? n : 1));
    size_t got = buf && n > 0 ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!buf || (long)got != (n > 0 ? n : 0)) {
        free(buf);
        fprintf(stderr, "replay: cannot read %s\n", path);
        return 1;
    }
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv)
{
    int bad = 0, runs = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: no such file or directory\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            bad |= run_file(argv[i]);
            runs++;
            continue;
        }
        /* Sorted, so a failure always points at the same input. */
        struct dirent **list = NULL;
        int n = scandir(argv[i], &list, NULL, NULL);
        char **names = calloc((size_t)(n > 0 ? n : 1), sizeof *names);
        int m = 0;
        for (int k = 0; k < n; k++) {
            if (list[k]->d_name[0] != '.') names[m++] = strdup(list[k]->d_name);
            free(list[k]);
        }
        free(list);
        qsort(names, (size_t)m, sizeof *names, cmp_str);
        for (int k = 0; k < m; k++) {
            char p[2048];
            snprintf(p, sizeof p, "%s/%s", argv[i], names[k]);
            bad |= run_file(p);
            runs++;
            free(names[k]);
        }
        free(names);
    }
    printf("replay: %d inputs\n", runs);
    return bad || runs == 0;
}
