"""Reading student notebooks without running them (and, optionally, running them in the sandbox)."""
