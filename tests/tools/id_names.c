/* id_names.c: print the original id of every user and item of a dataset,
 * "user<TAB>dense<TAB>name" then "item<TAB>...", via sr_dataset_read_id_names
 * (the reader function later outputs use). Collective; rank 0 prints. */
#include <stdio.h>

#include "comm/comm.h"
#include "io/dataset.h"

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    sr_error err;
    sr_error_clear(&err);
    sr_comm c = {0};
    sr_dataset *ds = NULL;
    int rc = argc == 2 ? 0 : 2;
    if (rc == 0 && (sr_comm_init(&c, MPI_COMM_WORLD, &err) != SR_OK || sr_dataset_open(&ds, &c, argv[1], &err) != SR_OK))
        rc = 1;
    for (int w = 0; rc == 0 && w < 2; w++) {
        const sr_dataset_meta *m = sr_dataset_meta_get(ds);
        sr_dataset_names n;
        if (sr_dataset_read_id_names(ds, w, 0, w ? m->num_items : m->num_users, &n, &err) != SR_OK) {
            rc = 1;
            break;
        }
        for (int64_t k = 0; c.rank == 0 && k < n.n; k++) printf("%s\t%lld\t%s\n", w ? "item" : "user", (long long)k, n.name[k]);
        sr_dataset_names_free(&n);
    }
    if (rc == 1) fprintf(stderr, "id_names: %s\n", err.msg);
    if (rc == 2) fprintf(stderr, "usage: id_names FILE.h5\n");
    sr_dataset_close(&ds);
    if (argc == 2 && rc != 2) sr_comm_destroy(&c);
    MPI_Finalize();
    return rc;
}
