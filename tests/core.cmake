# src/core: errors, config, RNG, allocation, LSE merge (serial).
sr_add_test(NAME test_core SOURCES unit/test_core.c)
# Error locations under any checkout path (issue 19): a copy of the tree under
# .../x/src/softrec builds test_core, test_comm and softrec and runs them.
add_test(NAME path_checkout
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/path_checkout.sh ${PROJECT_SOURCE_DIR}
                 ${CMAKE_CURRENT_BINARY_DIR}/work/path_checkout ${MPIEXEC_EXECUTABLE}
                 -DCMAKE_C_COMPILER=${CMAKE_C_COMPILER} -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE}
                 -DSOFTREC_WERROR=${SOFTREC_WERROR} -DSOFTREC_NATIVE=${SOFTREC_NATIVE})
set_tests_properties(path_checkout PROPERTIES TIMEOUT 300 PROCESSORS 2 LABELS "path"
                     ENVIRONMENT "${SR_MPI_ENV}")
sr_add_test(NAME test_cpu SOURCES unit/test_cpu.c LABELS core)
