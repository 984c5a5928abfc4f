/* fuzz_config.c: the config parser (INI text through inih, then the key
 * table) and --set assignments. Property: a config that loads writes back
 * as INI that loads again to the same text (sr_config_write_ini is the
 * format checkpoints store), else abort() so the fuzzer records it. */
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "fuzz_util.h"

static void roundtrip(const sr_config *cfg)
{
    size_t need = sr_config_write_ini(cfg, NULL, 0) + 1;
    char *a = malloc(need), *b = malloc(need + 64);
    if (!a || !b) abort();
    sr_config_write_ini(cfg, a, need);
    sr_config again;
    sr_config_defaults(&again);
    sr_error e;
    sr_error_clear(&e);
    if (sr_config_load_string(&again, a, "roundtrip", &e) != SR_OK) abort();
    size_t n2 = sr_config_write_ini(&again, b, need + 64);
    if (n2 + 1 != need || strcmp(a, b) != 0) abort();
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    sr_config cfg;
    sr_error e;
    /* Whole input as an INI file. */
    sr_config_defaults(&cfg);
    sr_error_clear(&e);
    if (sr_config_load_string(&cfg, text, "fuzz.ini", &e) == SR_OK) roundtrip(&cfg);
    /* Each line as a --set assignment. */
    sr_config_defaults(&cfg);
    int ok = 1;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        sr_error_clear(&e);
        if (sr_config_set_assignment(&cfg, line, &e) != SR_OK) ok = 0;
    }
    if (ok) roundtrip(&cfg);
    free(text);
    return 0;
}
