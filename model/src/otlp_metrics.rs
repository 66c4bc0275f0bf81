//! OTLP metrics to store series and samples.
