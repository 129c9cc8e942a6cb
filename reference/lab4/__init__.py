"""UW Lab 4: a student's own CNN on Fashion-MNIST (28x28 grey), > 89% test accuracy."""
