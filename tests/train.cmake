# src/train: end-to-end training and evaluation through the softrec CLI.
add_test(NAME train_e2e COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/train_e2e.sh $<TARGET_FILE:softrec>
         ${CMAKE_CURRENT_BINARY_DIR}/work/train_e2e)
set_tests_properties(train_e2e PROPERTIES TIMEOUT 300 LABELS "e2e" PROCESSORS 2)
