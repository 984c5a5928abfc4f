# slurm/ batch scripts on a real (private, single-node) SLURM, and launch/report.
# slurm_batch starts munged + slurmctld + slurmd under the build directory and
# submits the scripts at tiny sizes; it exits 77 (skipped, cause printed) only
# when not root, SLURM, munge or python3 are not installed, or slurmd cannot
# start for want of a cgroup file system; any other problem fails it.
# launch/setup.sh --test installs the packages.
add_test(NAME slurm_batch
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/slurm/run_slurm_test.sh $<TARGET_FILE:softrec>
                 ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/work/slurm_batch)
set_tests_properties(slurm_batch PROPERTIES TIMEOUT 600 LABELS "slurm" SKIP_RETURN_CODE 77
                     PROCESSORS 2)

# launch/report on the fixed rows in tests/data/report (tables match, PNGs valid).
add_test(NAME report_tables_plots
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/report_test.sh ${PROJECT_SOURCE_DIR}
                 ${CMAKE_CURRENT_BINARY_DIR}/work/report_test)
set_tests_properties(report_tables_plots PROPERTIES TIMEOUT 120 LABELS "report" SKIP_RETURN_CODE 77)

# slurm/study-1m.sh end to end at a tiny scale (local launcher): every loss
# configuration with early stopping and seeds, then launch/report's study
# curves and time-to-X table (the facts asserted: tests/scripts/study_e2e.sh).
add_test(NAME study_e2e
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scripts/study_e2e.sh $<TARGET_FILE:softrec> ${PROJECT_SOURCE_DIR}
                 ${CMAKE_CURRENT_BINARY_DIR}/work/study_e2e)
set_tests_properties(study_e2e PROPERTIES TIMEOUT 240 LABELS "e2e;report" SKIP_RETURN_CODE 77
                     ENVIRONMENT "${SR_MPI_ENV}")
