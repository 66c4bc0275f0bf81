//! Block files.
