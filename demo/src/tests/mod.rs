//! Tests that run the services themselves.

mod harness;
mod sink;
mod system;
