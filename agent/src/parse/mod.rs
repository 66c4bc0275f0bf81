//! Line parsing (being built).
