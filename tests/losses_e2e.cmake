# Every loss of the family end to end through the CLI (train, eval, analyze).
add_test(NAME losses_e2e COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/losses_e2e.sh $<TARGET_FILE:softrec>
         ${CMAKE_CURRENT_BINARY_DIR}/work/losses_e2e)
set_tests_properties(losses_e2e PROPERTIES TIMEOUT 600 LABELS "e2e" PROCESSORS 2)
