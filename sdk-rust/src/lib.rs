//! # eddy-sdk (under construction)
