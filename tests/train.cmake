# src/train: the trainer through the backbone interface with a toy backbone
# (tests/mpi/toy_backbone.c, the example of docs/design.md), at 1-4 ranks.
sr_add_test(NAME test_trainer SOURCES mpi/test_trainer.c mpi/toy_backbone.c MPI LABELS train)
