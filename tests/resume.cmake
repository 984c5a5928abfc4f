# Training-level reliability (issue 6): kill -9 x20 (half inside checkpoint
# saves) with bit-identical resume, SIGUSR1 preemption, resharded resume,
# non-finite steps.
add_test(NAME resume_e2e COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/resume_e2e.sh $<TARGET_FILE:softrec>
         ${CMAKE_CURRENT_BINARY_DIR}/work/resume_e2e 20)
set_tests_properties(resume_e2e PROPERTIES TIMEOUT 900 LABELS "e2e;reliability" PROCESSORS 2)
