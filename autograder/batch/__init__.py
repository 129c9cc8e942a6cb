"""Batch grading for TAs: a class's Moodle download in, an importable gradebook,
a filled worksheet and a class summary out; parallel, resumable, on Slurm when
one machine is not enough. See docs/batch.md."""
