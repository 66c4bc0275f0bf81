//! OTLP/HTTP JSON bodies of the three signals (the first byte picks one) through the
//! collector's decode (serde_json) and the same checks as the protobuf targets.
#![no_main]
use libfuzzer_sys::fuzz_target;
use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use skein_model::proto::collector::trace::v1::ExportTraceServiceRequest;

fuzz_target!(|data: &[u8]| {
    if data.len() > skein_fuzz::MAX_INPUT {
        return;
    }
    let Some((&signal, body)) = data.split_first() else {
        return;
    };
    match signal % 3 {
        0 => {
            if let Ok(req) = serde_json::from_slice::<ExportLogsServiceRequest>(body) {
                skein_fuzz::check_logs(&req);
            }
        }
        1 => {
            if let Ok(req) = serde_json::from_slice::<ExportTraceServiceRequest>(body) {
                skein_fuzz::check_traces(&req);
            }
        }
        _ => {
            if let Ok(req) = serde_json::from_slice::<ExportMetricsServiceRequest>(body) {
                skein_fuzz::check_metrics(&req);
            }
        }
    }
});
