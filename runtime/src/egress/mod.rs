//! Egress sinks (stub: being written).
