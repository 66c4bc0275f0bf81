//! Metric queries, service health and the dependency graph over the metrics store.
