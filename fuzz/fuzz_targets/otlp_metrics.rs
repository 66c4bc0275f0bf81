//! OTLP/HTTP and gRPC metrics bodies (protobuf) through the collector's decode and
//! conversion to series and samples; every series made must survive the series log.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message;
use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;

fuzz_target!(|data: &[u8]| {
    if data.len() > skein_fuzz::MAX_INPUT {
        return;
    }
    if let Ok(req) = ExportMetricsServiceRequest::decode(data) {
        skein_fuzz::check_metrics(&req);
    }
});
