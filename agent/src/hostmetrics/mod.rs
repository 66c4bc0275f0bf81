//! Host metrics (being built).
