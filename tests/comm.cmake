# src/comm: collectives, row exchange, shard maps, error protocol (MPI, 1-4 ranks).
sr_add_test(NAME test_comm SOURCES mpi/test_comm.c MPI TIMEOUT 60 LABELS comm)
