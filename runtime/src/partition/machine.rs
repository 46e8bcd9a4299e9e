//! The partition state machine (stub: being written).
