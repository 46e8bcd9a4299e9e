//! Flink-style durations (stub: being written).
