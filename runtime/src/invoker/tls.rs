//! TLS material for the HTTP transport (stub: being written).
