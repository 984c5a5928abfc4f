/* fuzz_convert.c: the text dataset parsers (src/io/convert.c). Byte 0 picks
 * the format, byte 1 the options (csv separator and header, k-core; for
 * the token formats bit 7 also reads the file as given valid and test
 * files, and flips dedup); the rest is the file, converted end to end into a scratch HDF5 file. Any
 * outcome but a crash or sanitizer report is fine: malformed input must be
 * an error, never undefined behaviour. */
#include <string.h>

#include "fuzz_util.h"
#include "io/convert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    char in[600], out[600];
    sr_fuzz_path(in, sizeof in, "input.txt");
    sr_fuzz_path(out, sizeof out, "out.h5");
    if (sr_fuzz_write(in, data + 2, size - 2) != 0) return 0;
    sr_convert_opts o;
    sr_convert_opts_default(&o);
    o.format = (sr_convert_format)(data[0] % SR_FORMAT_COUNT);
    o.input = in;
    o.output = out;
    o.overwrite = 1;
    static const char seps[] = {',', '\t', ';', ' '};
    if (o.format == SR_FORMAT_CSV) {
        o.sep = seps[data[1] & 3];
        o.header = (data[1] >> 2) & 1;
        o.user_col = 0;
        o.item_col = 1;
        o.rating_col = (data[1] >> 3) & 1 ? 2 : -1;
        o.time_col = (data[1] >> 4) & 1 ? 3 : -1;
    }
    o.kcore = (data[1] >> 5) & 3;
    if ((data[1] >> 7) && (o.format == SR_FORMAT_CSV || o.format == SR_FORMAT_AMAZON || o.format == SR_FORMAT_RECBOLE)) {
        o.valid = in; /* the same text as all three splits: dedup across files */
        o.test = in;
        o.dedup = 0;
    }
    sr_error e;
    sr_error_clear(&e);
    sr_convert_run(&o, NULL, &e);
    return 0;
}
