//! Shared helpers for the example jobs.
