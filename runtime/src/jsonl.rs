//! JSON lines forms of messages (stub: being written).
