# docs/python.md (issue 20): every python and sh block of the page runs, in
# order, against the built softrec, so the page's snippets stay true.
add_test(NAME python_docs COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/scripts/python_docs.sh $<TARGET_FILE:softrec>
                                  ${PROJECT_SOURCE_DIR}/docs/python.md ${CMAKE_CURRENT_BINARY_DIR}/work/python_docs)
set_tests_properties(python_docs PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77 LABELS "e2e;python"
                     ENVIRONMENT "${SR_MPI_ENV}")
