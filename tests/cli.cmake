# src/cli: the command line itself (every --help, --opt=value, usage errors,
# help config --json, version without MPI) through the softrec binary.
add_test(NAME cli_e2e COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/cli_e2e.sh $<TARGET_FILE:softrec>
         ${CMAKE_CURRENT_BINARY_DIR}/work/cli_e2e)
set_tests_properties(cli_e2e PROPERTIES TIMEOUT 300 LABELS "e2e;cli" PROCESSORS 2 ENVIRONMENT "${SR_MPI_ENV}")
