#!/usr/bin/env python3
"""Writes scenarios/data/work-ms.txt: 500 made-up but real-looking critical-section work
times in milliseconds, with a heavy tail. Run once; the output is committed, so nothing
depends on this script's determinism across Python versions.

    python3 scripts/gen-work-ms.py > scenarios/data/work-ms.txt
"""
import random

SEED = 15
N = 500
rng = random.Random(SEED)
print("# Critical-section work times of an invoice run, in milliseconds, one per line.")
print("# Made up to look like production data: 96 % log-normal (median 90 ms, sigma 0.4),")
print("# 4 % a Pareto tail (scale 300 ms, shape 1.3, capped at 4000 ms: slow queries).")
print(f"# Generated once by scripts/gen-work-ms.py (Python's random.Random({SEED}), {N} samples).")
for _ in range(N):
    if rng.random() < 0.04:
        x = min(300.0 / (1.0 - rng.random()) ** (1 / 1.3), 4000.0)
    else:
        x = rng.lognormvariate(0.0, 0.4) * 90.0
    print(f"{x:.1f}")
