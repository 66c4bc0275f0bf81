//! A tiny OTLP/gRPC trace sink for the tests: keeps every span it is sent, with its
//! resource's `service.name` and `host.name`.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Most spans kept; a test that sends more fails.
const MAX_SPANS: usize = 100_000;

/// A received span and the resource it came with.
#[derive(Clone, Debug)]
pub(super) struct Got {
    pub(super) service: String,
    pub(super) host: String,
    pub(super) span: Span,
}

impl Got {
    /// A string attribute of the span.
    pub(super) fn attr(&self, key: &str) -> Option<String> {
        string_attr(&self.span.attributes, key)
    }
}

fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    let v = attrs
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match v {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}

#[derive(Clone, Default)]
pub(super) struct Sink(Arc<Mutex<Vec<Got>>>);

impl Sink {
    /// Serves the sink on 127.0.0.1 port 0; gives its address.
    pub(super) async fn start() -> (Sink, SocketAddr) {
        let sink = Sink::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(sink.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
        tokio::spawn(server);
        (sink, addr)
    }

    /// Everything received so far.
    pub(super) fn spans(&self) -> Vec<Got> {
        self.0.lock().unwrap().clone()
    }
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut kept = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let attrs = rs.resource.map(|r| r.attributes).unwrap_or_default();
            let service = string_attr(&attrs, "service.name").unwrap_or_default();
            let host = string_attr(&attrs, "host.name").unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    assert!(kept.len() < MAX_SPANS, "too many spans");
                    kept.push(Got {
                        service: service.clone(),
                        host: host.clone(),
                        span,
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}
