"""Pattern compiler: turns a hybrid sparse attention pattern into a program
(instruction stream), a data plan and an output permutation."""
