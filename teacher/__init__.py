"""The teacher's kit of the binedu course (not in the pip package): the answer key, the
hidden tests, the student release and the autograder. See teacher/README.md."""
