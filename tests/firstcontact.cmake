# First contact (issue 19): run.dir refusal and --force, install, CPU check;
# the README's Commands block on the shared real data.
add_test(NAME first_contact
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/first_contact.sh $<TARGET_FILE:softrec> ${PROJECT_BINARY_DIR}
                 ${CMAKE_CURRENT_BINARY_DIR}/work/first_contact)
set_tests_properties(first_contact PROPERTIES TIMEOUT 300 LABELS "cli;script" ENVIRONMENT "${SR_MPI_ENV}")
add_test(NAME readme_commands
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/readme_commands.sh ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}
                 ${PROJECT_SOURCE_DIR}/../shared/data ${CMAKE_CURRENT_BINARY_DIR}/work/readme_commands)
set_tests_properties(readme_commands PROPERTIES TIMEOUT 420 PROCESSORS 2 LABELS "realdata;script"
                     SKIP_RETURN_CODE 77 ENVIRONMENT "${SR_MPI_ENV}")
