"""ECE 4252 lecture 15 exercises on Fashion-MNIST: LeNet-5, AlexNet, VGG,
GoogLeNet and ResNet, each built from the building block the lecture names."""
