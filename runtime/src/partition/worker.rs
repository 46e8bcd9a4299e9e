//! The partition worker event loop (stub: being written).
