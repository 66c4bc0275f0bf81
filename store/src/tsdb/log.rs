//! The series log.
