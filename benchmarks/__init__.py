"""Performance and accuracy benchmarks; each module writes JSON under benchmarks/results/."""
