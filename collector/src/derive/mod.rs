//! Metrics derived from spans: RED figures per service and operation, and the service graph.
