# softrec export / recommend (issue 20): NumPy scoring of the exported
# vectors equals softrec eval; recommend's lists at 1 and 3 ranks.
add_test(NAME export_e2e COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/scripts/export_e2e.sh $<TARGET_FILE:softrec>
                                 ${CMAKE_CURRENT_BINARY_DIR}/work/export_e2e)
set_tests_properties(export_e2e PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS "e2e;export"
                     ENVIRONMENT "${SR_MPI_ENV}")
