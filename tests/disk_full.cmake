# Writers on a full disk and into a vanished directory (issue 18): every
# command that writes exits 4 with one line naming the file and leaves
# nothing behind. Mounts a 256 KiB tmpfs (root; skipped with 77 otherwise).
add_test(NAME disk_full COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/scripts/disk_full.sh $<TARGET_FILE:softrec>
                                ${CMAKE_CURRENT_BINARY_DIR}/work/disk_full ${CMAKE_SOURCE_DIR})
set_tests_properties(disk_full PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS "reliability;io"
                     ENVIRONMENT "${SR_MPI_ENV}")

# A negative /item_popularity entry (issue 18 item 2): train exits 5 at 1
# and 2 ranks, one line naming the file and the object (h5py makes the file).
add_test(NAME neg_popularity COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/scripts/neg_popularity.sh
                                     $<TARGET_FILE:softrec> ${CMAKE_CURRENT_BINARY_DIR}/work/neg_popularity)
set_tests_properties(neg_popularity PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77 LABELS "reliability;io"
                     ENVIRONMENT "${SR_MPI_ENV}")
