"""Realistic variants: submissions written the ways students really write them,
each graded once and compared item by item with a careful TA's verdict."""
