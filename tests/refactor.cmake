# Behaviour preserved across the trainer refactor (issue 17): every backbone
# with seven losses at 1 and 2 ranks trains the same models with this tree
# and with SR_SAME_MODELS_BASE (the tree before the refactor), built from git:
# byte-identical model.h5 files, or, where a later change added attributes or
# config keys, the same tables and the same values of every key and attribute
# the base wrote. A change that means to change the models moves the base.
set(SR_SAME_MODELS_BASE 27103cb CACHE STRING "Commit whose models the tree must reproduce")
add_test(NAME same_models
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/scripts/same_models.sh build:${SR_SAME_MODELS_BASE}
                 $<TARGET_FILE:softrec> ${CMAKE_CURRENT_BINARY_DIR}/work/same_models)
set_tests_properties(same_models PROPERTIES TIMEOUT 900 SKIP_RETURN_CODE 77 LABELS "e2e;refactor"
                     ENVIRONMENT "${SR_MPI_ENV}")
# No function of the trainer over 80 lines (tests/scripts/func_lengths.py).
add_test(NAME train_function_length
         COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/scripts/func_lengths.py --max 80 ${PROJECT_SOURCE_DIR}/src/train)
set_tests_properties(train_function_length PROPERTIES LABELS "style")
