"""Cloud and edge benchmarks, measured side by side in one run: `python -m benchmarks.run` (make bench)."""
