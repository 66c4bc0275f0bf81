//! Shared checks of the fuzz targets: what the collector does with one decoded OTLP export,
//! and a scratch directory for the targets that read files.
//!
//! Each check calls the same public functions the collector calls, in the same order, and
//! asserts what must hold whatever the input: no panic, every record either kept or counted
//! as rejected, and the WAL payload of the kept records reads back whole.

use skein_model::batch::{Batch, BatchKind};
use skein_model::keys::{KeyConfig, KeyExtractor};
use skein_model::metric::{Labels, SeriesSpec};
use skein_model::otlp::{Limits, logs_from_otlp, metric_points, spans_from_otlp};
use skein_model::otlp_metrics::{MetricLimits, metrics_from_otlp};
use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use skein_model::proto::collector::trace::v1::ExportTraceServiceRequest;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Largest input any target looks at (the collector's own body limit is 16 MiB; 1 MiB keeps
/// each run fast enough to matter).
pub const MAX_INPUT: usize = 1024 * 1024;

/// A fixed "now" (2023-11-14), so a run repeats exactly.
pub const NOW_NANO: u64 = 1_700_000_000_000_000_000;

fn keys() -> &'static KeyExtractor {
    static KEYS: OnceLock<KeyExtractor> = OnceLock::new();
    KEYS.get_or_init(|| KeyExtractor::new(&KeyConfig::default()))
}

/// A logs export through the collector's conversion and its WAL payload.
pub fn check_logs(req: &ExportLogsServiceRequest) {
    let sent: usize = req
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum();
    let (records, rejected) = logs_from_otlp(req, keys(), &Limits::default(), NOW_NANO);
    assert_eq!(
        records.len() as u64 + rejected.count,
        sent as u64,
        "every record is kept or counted as rejected"
    );
    let batch = Batch::Logs(Arc::new(records));
    let back = Batch::decode(BatchKind::Logs.byte(), &batch.encode()).expect("payload reads back");
    let (Batch::Logs(a), Batch::Logs(b)) = (&batch, &back) else {
        panic!("kind changed")
    };
    assert_eq!(a.len(), b.len(), "every kept record is in the payload");
    for (x, y) in a.iter().zip(b.iter()) {
        assert_eq!(x.time_unix_nano, y.time_unix_nano);
        assert_eq!(x.body, y.body);
        assert_eq!(x.trace_id, y.trace_id);
        assert_eq!(x.span_id, y.span_id);
        assert_eq!(x.service, y.service);
        assert_eq!(x.keys, y.keys);
    }
}

/// A traces export through the collector's conversion and its WAL payload.
pub fn check_traces(req: &ExportTraceServiceRequest) {
    let sent: usize = req
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    let (spans, rejected) = spans_from_otlp(req, keys(), &Limits::default());
    assert_eq!(
        spans.len() as u64 + rejected.count,
        sent as u64,
        "every span is kept or counted as rejected"
    );
    let batch = Batch::Spans(Arc::new(spans));
    let back = Batch::decode(BatchKind::Spans.byte(), &batch.encode()).expect("payload reads back");
    let (Batch::Spans(a), Batch::Spans(b)) = (&batch, &back) else {
        panic!("kind changed")
    };
    assert_eq!(a.len(), b.len(), "every kept span is in the payload");
    for (x, y) in a.iter().zip(b.iter()) {
        assert_eq!(x.trace_id, y.trace_id);
        assert_eq!(x.span_id, y.span_id);
        assert_eq!(x.name, y.name);
        assert_eq!(x.service, y.service);
        assert_eq!(x.start_unix_nano, y.start_unix_nano);
        assert_eq!(x.end_unix_nano, y.end_unix_nano);
    }
}

/// A metrics export through the collector's conversion; every series it makes must go into
/// the store's series log and come back the same (a series that cannot would stop the next
/// start).
pub fn check_metrics(req: &ExportMetricsServiceRequest) {
    let _ = metric_points(req);
    let now_ms = (NOW_NANO / 1_000_000) as i64;
    let (batch, _rejected) = metrics_from_otlp(req, &MetricLimits::default(), now_ms);
    for s in &batch.samples {
        assert!(
            (s.series as usize) < batch.series.len(),
            "a sample names a series of the batch"
        );
    }
    for (i, spec) in batch.series.iter().enumerate() {
        check_series_round_trip(i as u32, spec);
    }
}

/// A series the store accepts is stored whole: its series log record reads back equal. One
/// it refuses still encodes to a record that reads back (the store must always open again).
pub fn check_series_round_trip(id: u32, spec: &SeriesSpec) {
    use skein_store::fuzzing::{decode_series, encode_series, series_fits};
    let rec = encode_series(id, spec);
    let (back_id, back) = decode_series(&rec).expect("an encoded series reads back");
    assert_eq!(back_id, id);
    if series_fits(spec).is_ok() {
        // The log keeps labels in their stored order; compare with the same normal form.
        let want = SeriesSpec {
            labels: Labels::from_pairs(spec.labels.iter()),
            ..spec.clone()
        };
        assert_eq!(back, want, "a series the store accepts reads back equal");
    }
}

/// A fresh empty directory for this process, under /dev/shm when there is one (file targets
/// run thousands of times a second; a RAM disk keeps fsync cheap).
pub fn scratch_dir(name: &str) -> PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        let root = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = root.join(format!("skein-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    });
    let dir = base.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A job for [`on_small_stack`].
type Job = Box<dyn FnOnce() + Send>;

struct SmallStack {
    to: std::sync::mpsc::SyncSender<Job>,
    done: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

/// Runs `job` on a thread with the 2 MiB stack of a tokio worker or blocking thread (where the
/// collector parses and evaluates), and waits for it: deep recursion overflows here as it
/// would there. One thread, reused for every input.
pub fn on_small_stack(job: impl FnOnce() + Send + 'static) {
    static W: OnceLock<SmallStack> = OnceLock::new();
    let w = W.get_or_init(|| {
        let (to, jobs) = std::sync::mpsc::sync_channel::<Job>(0);
        let (finished, done) = std::sync::mpsc::sync_channel::<()>(0);
        std::thread::Builder::new()
            .name("small-stack".into())
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                for job in jobs {
                    job();
                    if finished.send(()).is_err() {
                        return;
                    }
                }
            })
            .expect("small-stack thread");
        SmallStack {
            to,
            done: std::sync::Mutex::new(done),
        }
    });
    w.to.send(Box::new(job)).expect("small-stack thread alive");
    w.done
        .lock()
        .expect("lock")
        .recv()
        .expect("small-stack thread alive");
}
