# src/analysis/lse_bias.h gradient bias: kernels against the float64 twin of the
# training losses (unit), the collective run at 1-4 ranks against a float64
# recomputation and an exact enumeration (mpi).
sr_add_test(NAME test_lse_bias SOURCES unit/test_lse_bias.c LABELS loss)
sr_add_test(NAME test_lse_bias_mpi SOURCES mpi/test_lse_bias_mpi.c MPI LABELS loss)
