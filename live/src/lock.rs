//! A lock on real Redis, driven directly (for benchmarks and embedding).
