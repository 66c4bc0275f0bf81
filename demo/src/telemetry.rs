//! Spans and logs of one service: the OTLP exporter, the tracing subscriber, and shutdown.
//!
//! The subscriber is a `tracing_subscriber` registry with a target filter (only this crate's
//! spans and events at INFO and above, so the HTTP and gRPC libraries' own events never reach
//! the exporter or the log), the OpenTelemetry layer, and the JSON log layer. It is set as the
//! process-global default when no default is set yet; if one is (the CLI's own, or another
//! service in the same test process), the service still uses its own subscriber for all of
//! its work, because every request and background task is run under it explicitly.

use crate::log_file::LogFile;
use crate::log_layer::JsonLogLayer;
use crate::{DemoError, ServiceConfig};
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use std::time::Duration;
use tracing::Dispatch;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

/// Most finished spans waiting for export; more are dropped by the SDK.
pub(crate) const MAX_SPAN_QUEUE: usize = 4096;

/// How often buffered spans are exported, so traces show up quickly.
const EXPORT_DELAY: Duration = Duration::from_millis(500);

/// How long one export may take before it is given up.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);

/// The tracing side of a running service.
pub(crate) struct Telemetry {
    /// The subscriber every request and task of the service runs under.
    pub(crate) dispatch: Dispatch,
    provider: SdkTracerProvider,
    log: LogFile,
}

impl Telemetry {
    /// Builds the exporter and subscriber. Must run inside a Tokio runtime (the gRPC channel
    /// is bound to it).
    pub(crate) fn start(cfg: &ServiceConfig, log: LogFile) -> Result<Telemetry, DemoError> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(cfg.otlp_endpoint.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| DemoError::Exporter {
                endpoint: cfg.otlp_endpoint.clone(),
                message: e.to_string(),
            })?;
        let batch = BatchConfigBuilder::default()
            .with_scheduled_delay(EXPORT_DELAY)
            .with_max_queue_size(MAX_SPAN_QUEUE)
            .build();
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(batch)
            .build();
        let resource = Resource::builder()
            .with_service_name(cfg.name.as_str())
            .with_attribute(KeyValue::new("host.name", cfg.host_name.clone()))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource)
            .build();
        let dispatch = make_dispatch(cfg.name.as_str(), &provider, log.clone());
        // Fails when a default is already set; the service then relies on scoping alone.
        let _ = tracing::dispatcher::set_global_default(dispatch.clone());
        Ok(Telemetry {
            dispatch,
            provider,
            log,
        })
    }

    /// Exports the spans still buffered, stops the exporter and flushes the log file.
    pub(crate) async fn shutdown(self) {
        let provider = self.provider;
        let flushed = tokio::task::spawn_blocking(move || {
            let _ = provider.force_flush();
            let _ = provider.shutdown();
        })
        .await;
        drop(flushed);
        self.log.flush();
    }
}

/// The subscriber for `service`: target filter, OpenTelemetry layer, JSON log layer.
pub(crate) fn make_dispatch(
    service: &'static str,
    provider: &SdkTracerProvider,
    log: LogFile,
) -> Dispatch {
    let filter = Targets::new().with_target(env!("CARGO_CRATE_NAME"), LevelFilter::INFO);
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("skein-demo"))
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false);
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(otel)
        .with(JsonLogLayer::new(service, log));
    Dispatch::new(subscriber)
}
