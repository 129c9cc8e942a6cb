"""The course's MNIST walkthrough, graded by ``autograder demo`` on real data."""
