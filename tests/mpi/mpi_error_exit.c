/* mpi_error_exit.c: an MPI error ends every rank cleanly. Every rank makes
 * the same invalid broadcast (root out of range) through the checked
 * wrapper, agrees and leaves through sr_comm_exit, as the CLI does: rank 0
 * prints "softrec: error: MPI_Bcast failed: ... [src/comm/collectives.c:N]"
 * once and every rank exits with SR_ERR_MPI (6), no MPI_Abort, no core. */
#include <stdint.h>
#include <stdio.h>

#include "comm/collectives.h"
#include "comm/comm.h"

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    sr_comm c;
    sr_error err;
    sr_error_clear(&err);
    if (sr_comm_init(&c, MPI_COMM_WORLD, &err) != SR_OK) sr_panic(__FILE__, __LINE__, "%s", err.msg);
    int64_t v = 1;
    sr_comm_bcast(&c, &v, 1, MPI_INT64_T, c.size + 1, &err);
    if (sr_comm_agree(&c, &err) != SR_OK) sr_comm_exit(&c, &err);
    fprintf(stderr, "mpi_error_exit: the invalid broadcast was not reported\n");
    sr_comm_destroy(&c);
    MPI_Finalize();
    return 1;
}
