//! Dead letters (stub: being written).
