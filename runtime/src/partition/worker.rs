//! The partition worker event loop (being written).
