# src/loss sampler.h / sampled.h / lse_bias.h: shard-local sampling, ssm, nce,
# bpr against their float64 twin; chi-square tests of the expected counts.
sr_add_test(NAME test_sampler SOURCES unit/test_sampler.c LABELS loss)
sr_add_test(NAME test_sampler_mpi SOURCES mpi/test_sampler_mpi.c MPI LABELS loss)
sr_add_test(NAME test_sampled_mpi SOURCES mpi/test_sampled_mpi.c MPI LABELS loss)
sr_add_test(NAME test_sampled SOURCES unit/test_sampled.c LABELS loss)
