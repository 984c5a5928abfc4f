# Issue 18, items 4-5: `checkpoint verify` runs exactly the checks a resume
# runs (the same verdict on 40 damaged checkpoints), and a resume refuses a
# checkpoint of a different run (the run fingerprint) unless forced.
add_test(NAME ckpt_verify_damage
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/ckpt_verify_damage.sh $<TARGET_FILE:softrec>
                 ${CMAKE_CURRENT_BINARY_DIR}/work/ckpt_verify_damage 2)
add_test(NAME resume_fingerprint
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/resume_fingerprint.sh $<TARGET_FILE:softrec>
                 ${CMAKE_CURRENT_BINARY_DIR}/work/resume_fingerprint)
set_tests_properties(ckpt_verify_damage resume_fingerprint PROPERTIES TIMEOUT 600 PROCESSORS 2
                     LABELS "e2e;reliability" ENVIRONMENT "${SR_MPI_ENV}")
