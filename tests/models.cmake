# src/models: optimisers, MF init; checkpoints (MPI, 1-4 ranks).
sr_add_test(NAME test_optim SOURCES unit/test_optim.c)
sr_add_test(NAME test_checkpoint SOURCES mpi/test_checkpoint.c MPI)
