//! OTLP/HTTP and gRPC traces bodies (protobuf) through the collector's decode, conversion to
//! model spans and WAL payload.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message;
use skein_model::proto::collector::trace::v1::ExportTraceServiceRequest;

fuzz_target!(|data: &[u8]| {
    if data.len() > skein_fuzz::MAX_INPUT {
        return;
    }
    if let Ok(req) = ExportTraceServiceRequest::decode(data) {
        skein_fuzz::check_traces(&req);
    }
});
