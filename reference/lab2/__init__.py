"""NCKU Lab 2: SimpleCNN (task 1) and ResNet-18 built with make_layer (task 2)."""
