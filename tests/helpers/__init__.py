"""Builders for test data and submissions (generated at test time, never committed)."""
