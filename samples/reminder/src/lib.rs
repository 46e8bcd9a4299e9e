//! The reminder sample (under construction).
