# Inputs accepted where an error belongs (issue 18 item 6): the catalogue-
# and data-dependent checks of softrec train at 2 ranks (tests/unit/test_core.c
# has the config-only ones).
add_test(NAME cli_config_errors
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/config_errors.sh $<TARGET_FILE:softrec>
                 ${CMAKE_CURRENT_SOURCE_DIR}/corpus ${CMAKE_CURRENT_BINARY_DIR}/work/cli_config_errors)
set_tests_properties(cli_config_errors PROPERTIES TIMEOUT 300 LABELS "e2e;cli" PROCESSORS 2
                     ENVIRONMENT "${SR_MPI_ENV}")
