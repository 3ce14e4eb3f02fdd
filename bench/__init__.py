"""Performance benchmarks: ratios measured in one run and printed as tables (never timed tests)."""
