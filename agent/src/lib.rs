//! skein-agent: not built yet. The per-host shipper (file tail, local OTLP receiver, host metrics, disk-buffered sink) arrives with its own issue.
