//! JSON shapes of the metrics, services, dependencies and hosts API.
