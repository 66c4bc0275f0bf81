//! File tailing (being built).
