"""UW Lab 7: a ResNet-18 variant on CIFAR-10 (>= 85% test accuracy, still residual)."""
