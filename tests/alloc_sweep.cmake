# Allocation-failure sweep (issue 18, docs/reliability.md "Allocation
# failures"): every counted sr_mem allocation (SOFTREC_FAULT=alloc#N) and
# every plain malloc/calloc/realloc of softrec's own code (tests/tools/
# failalloc.c, LD_PRELOAD) of `train` (1 and 2 ranks), `data convert` and
# `data synth` fails in turn; each trial must exit 7 or be aborted by mpirun
# with code 7, with no sanitizer report, hang or leftover process.
# Meaningful under ASan only: the script exits 77 (skipped) unless the binary
# is the sanitizer build; launch/test.sh's sanitize pass runs label asan.
# Every index is about 635 trials, 20-25 minutes on 2 cores: the suite runs
# at most SR_ALLOC_SWEEP_MAX evenly spaced indices per sweep (about 110
# trials, a few minutes); -DSR_ALLOC_SWEEP_MAX=300 runs the whole sweep.
set(SR_ALLOC_SWEEP_MAX 12 CACHE STRING "alloc_sweep: most injection indices tried per sweep")
add_test(NAME alloc_sweep
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/alloc_sweep.sh ${MPIEXEC_EXECUTABLE}
                 $<TARGET_FILE:softrec> ${CMAKE_CURRENT_BINARY_DIR}/work/alloc_sweep)
set_tests_properties(alloc_sweep PROPERTIES TIMEOUT 3600 PROCESSORS 2 SKIP_RETURN_CODE 77
                     LABELS "reliability;asan;script"
                     ENVIRONMENT "${SR_MPI_ENV};SR_SWEEP_MAX=${SR_ALLOC_SWEEP_MAX}")
