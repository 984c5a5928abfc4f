/* fuzz_h5check.c: the HDF5 schema check on arbitrary bytes. The input is
 * written to a scratch file and checked against the dataset schema and a
 * checkpoint schema (serial, default driver). Crashes inside libhdf5 on
 * malformed files are known (reliability.md, CVE list); the harness shows
 * whether our code adds any. */
#include <hdf5.h>

#include "fuzz_util.h"
#include "io/h5check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char p[600];
    sr_fuzz_path(p, sizeof p, "input.h5");
    if (sr_fuzz_write(p, data, size) != 0) return 0;
    static const sr_h5check_obj dataset[] = {
        {"/train/indptr", 1, SR_H5_INTEGER, 4, 8, 1, {-1, -1}, -1, NULL},
        {"/train/items", 1, SR_H5_INTEGER, 4, 8, 1, {-1, -1}, 1000, "item id"},
        {"/train/time", 0, SR_H5_INTEGER, 4, 8, 1, {-1, -1}, -1, NULL},
        {"/item_popularity", 0, SR_H5_INTEGER, 4, 8, 1, {-1, -1}, -1, NULL},
    };
    static const sr_h5check_obj ckpt[] = {
        {"/model/item_embedding", 1, SR_H5_FLOAT, 4, 4, 2, {-1, 16}, -1, NULL},
        {"/checksums/model/item_embedding", 1, SR_H5_INTEGER, 1, 1, 2, {-1, 32}, -1, NULL},
        {"/state/counters", 0, SR_H5_INTEGER, 8, 8, -1, {-1, -1}, -1, NULL},
    };
    sr_error e;
    sr_error_clear(&e);
    sr_h5check_path(p, dataset, 4, &e);
    sr_error_clear(&e);
    sr_h5check_path(p, ckpt, 3, &e);
    return 0;
}
