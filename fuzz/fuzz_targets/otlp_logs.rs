//! OTLP/HTTP and gRPC logs bodies (protobuf) through the collector's decode, conversion to
//! model records and WAL payload.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message;
use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;

fuzz_target!(|data: &[u8]| {
    if data.len() > skein_fuzz::MAX_INPUT {
        return;
    }
    if let Ok(req) = ExportLogsServiceRequest::decode(data) {
        skein_fuzz::check_logs(&req);
    }
});
