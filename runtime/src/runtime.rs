//! Assembly of the runtime (stub: being written).
