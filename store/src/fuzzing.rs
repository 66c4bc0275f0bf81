//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`, off by default).
//! Not an API: each one calls the crate-private code the store runs on outside bytes, so the
//! targets test that code and not a copy of it.

use crate::schema::LogFields;
use crate::search::{LogFilter, TimeRange};
use skein_model::metric::SeriesSpec;

/// Builds the log query of a `q` text the way a log search does (shape check, then the
/// query parser); the error is the message the API would answer with.
pub fn log_query(fields: &LogFields, text: &str) -> Result<(), String> {
    let filter = LogFilter {
        text: Some(text.to_string()),
        ..Default::default()
    };
    crate::search::log_query(fields, &filter, TimeRange::ALL)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Decodes one series log record.
pub fn decode_series(b: &[u8]) -> Result<(u32, SeriesSpec), String> {
    crate::tsdb::decode_series(b)
}

/// Encodes one series log record.
pub fn encode_series(id: u32, spec: &SeriesSpec) -> Vec<u8> {
    crate::tsdb::encode_series(id, spec)
}

/// Whether the series log holds `spec` whole (checked before a series is stored).
pub fn series_fits(spec: &SeriesSpec) -> Result<(), String> {
    crate::tsdb::fits(spec)
}

/// The samples of one sample WAL record.
pub fn samples(b: &[u8]) -> Vec<(u32, i64, f64)> {
    crate::tsdb::samples(b).collect()
}

/// Appends one sample to a sample WAL record.
pub fn put_sample(out: &mut Vec<u8>, id: u32, ts: i64, v: f64) {
    crate::tsdb::put_sample(out, id, ts, v)
}
