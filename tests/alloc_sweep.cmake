# Allocation-failure sweep (issue 18): every counted allocation of `softrec
# train` (1 and 2 ranks) and `data synth` fails in turn (SOFTREC_FAULT=alloc#N);
# each trial must exit 7 or be aborted by mpirun, with no sanitizer report,
# hang or leftover process. Meaningful under ASan only: the script exits 77
# (skipped) unless the binary is the sanitizer build (launch/test.sh's
# sanitize pass runs it via the reliability label there). About 250 trials.
add_test(NAME alloc_sweep
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/alloc_sweep.sh ${MPIEXEC_EXECUTABLE}
                 $<TARGET_FILE:softrec> ${CMAKE_CURRENT_BINARY_DIR}/work/alloc_sweep)
set_tests_properties(alloc_sweep PROPERTIES TIMEOUT 1800 PROCESSORS 2 SKIP_RETURN_CODE 77
                     LABELS "reliability;asan;script" ENVIRONMENT "${SR_MPI_ENV}")
