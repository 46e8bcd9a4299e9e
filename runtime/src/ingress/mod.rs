//! Ingress sources (stub: being written).
