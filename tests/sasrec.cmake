# src/models sasrec.h / seqembed.h: the SASRec backbone against its float64
# twin and finite differences; the sharded lookup + forward + backward + push
# + update invariant across rank counts and shard layouts (MPI, 1-4 ranks).
sr_add_test(NAME test_sasrec SOURCES unit/test_sasrec.c LABELS models)
sr_add_test(NAME test_sasrec_mpi SOURCES mpi/test_sasrec_mpi.c MPI LABELS models)
