//! Scraped answers through the agent's scrape path: the parser of the Prometheus text format
//! and OpenMetrics (`scrape::parse`), then, for an answer it accepts, the conversion to OTLP
//! points (`scrape::convert`), the scrape's report points and the packing into export requests
//! (`scrape::pack`), which the collector decodes and converts. The first byte picks the format
//! (bit 0), the sample limit (bits 1-2: 0, 3, 1000 or none) and whether `go_*` samples are
//! dropped (bit 4, as a job's `drop` does).
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message;
use skein_agent::scrape::{Format, ParseError, Report, convert, pack, parse, report_points};
use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;

const LIMITS: [usize; 4] = [0, 3, 1000, usize::MAX];

fuzz_target!(|data: &[u8]| {
    // Answers are cut at the job's body_limit before parsing; half a MiB keeps runs fast.
    if data.len() > skein_fuzz::MAX_INPUT / 2 {
        return;
    }
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let format = if mode & 1 == 0 {
        Format::Text
    } else {
        Format::OpenMetrics
    };
    let limit = LIMITS[usize::from(mode >> 1) % LIMITS.len()];
    let drop_go = mode & 0x10 != 0;
    let keep = |name: &str| !(drop_go && name.starts_with("go_"));
    match parse(body, format, &keep, limit) {
        Ok(p) => {
            assert!(p.samples.len() <= limit, "no more samples than the limit");
            assert!(p.samples.len() <= p.scraped, "kept samples were scraped");
            for s in &p.samples {
                assert!(keep(&s.name), "only samples `keep` lets through");
                assert_eq!(s.family().len() + s.suffix().len(), s.name.len());
                let mut names: Vec<&str> = s.labels.iter().map(|(k, _)| k.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                assert_eq!(names.len(), s.labels.len(), "label names are unique");
            }
            let target = vec![
                ("job".to_string(), "node".to_string()),
                ("instance".to_string(), "127.0.0.1:9100".to_string()),
            ];
            let report = Report {
                up: true,
                duration_s: 0.01,
                scraped: p.scraped,
                kept: p.samples.len(),
            };
            let mut points = convert(p.samples, &target, skein_fuzz::NOW_NANO).points;
            points.extend(report_points(&report, &target, skein_fuzz::NOW_NANO));
            for req in pack(points, 64 * 1024) {
                let wire = req.encode_to_vec();
                let back = ExportMetricsServiceRequest::decode(&wire[..])
                    .expect("the collector decodes what the agent sends");
                skein_fuzz::check_metrics(&back);
            }
        }
        Err(ParseError::SampleLimit {
            scraped,
            kept,
            limit: l,
        }) => {
            assert_eq!(l, limit);
            assert!(kept > limit, "the limit error only past the limit");
            assert!(kept <= scraped, "kept samples were scraped");
        }
        Err(_) => {}
    }
});
