# src/train: end-to-end training and evaluation through the softrec CLI.
add_test(NAME train_e2e COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/train_e2e.sh $<TARGET_FILE:softrec>
         ${CMAKE_CURRENT_BINARY_DIR}/work/train_e2e)
set_tests_properties(train_e2e PROPERTIES TIMEOUT 300 LABELS "e2e" PROCESSORS 2)
# src/train: the trainer through the backbone interface with a toy backbone
# (tests/mpi/toy_backbone.c, the example of docs/design.md), at 1-4 ranks.
sr_add_test(NAME test_trainer SOURCES mpi/test_trainer.c mpi/toy_backbone.c MPI LABELS train)
# src/train create_step: loss and step buffers sized by the split's largest
# step, not train.batch_size (issue 18 item 7).
add_test(NAME batch_memory_e2e COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/batch_memory_e2e.sh $<TARGET_FILE:softrec>
         ${CMAKE_CURRENT_BINARY_DIR}/work/batch_memory_e2e)
set_tests_properties(batch_memory_e2e PROPERTIES TIMEOUT 300 LABELS "e2e" PROCESSORS 3)
