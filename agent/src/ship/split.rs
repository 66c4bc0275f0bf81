//! Splitting a refused part in two halves by records (log records, spans, metric points),
//! keeping each record's resource and scope, so that only a record refused on its own is
//! ever dropped.

use super::*;

/// Splits a part in two halves by records, off the async workers. `None` when it cannot be
/// decoded or holds fewer than two records.
pub(super) async fn split_part(signal: Signal, part: Part) -> Option<[Part; 2]> {
    tokio::task::spawn_blocking(move || split(signal, part.encoding, &part.body))
        .await
        .ok()
        .flatten()
}

/// The uncompressed body, if it decompresses to at most [`MAX_SPLIT_BYTES`].
pub(super) fn decompress(encoding: BodyEncoding, body: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let limit = u64::try_from(MAX_SPLIT_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut out = Vec::new();
    match encoding {
        BodyEncoding::Identity => return Some(body.to_vec()),
        BodyEncoding::Zstd => zstd::stream::read::Decoder::new(body)
            .ok()?
            .take(limit)
            .read_to_end(&mut out)
            .ok()?,
        BodyEncoding::Gzip => flate2::read::GzDecoder::new(body)
            .take(limit)
            .read_to_end(&mut out)
            .ok()?,
    };
    (out.len() <= MAX_SPLIT_BYTES).then_some(out)
}

/// An encoded request as a part, compressed like the part it came from.
fn part(plain: &[u8], encoding: BodyEncoding, records: u64) -> Part {
    let how = match encoding {
        BodyEncoding::Identity => Compression::None,
        BodyEncoding::Zstd => Compression::Zstd,
        BodyEncoding::Gzip => Compression::Gzip,
    };
    let (encoding, body) = compress(plain, how);
    Part {
        body: Bytes::from(body),
        encoding,
        records,
    }
}

/// Splits an encoded export request in two halves by records (log records, spans, metric
/// points), keeping their order and each record's resource and scope.
fn split(signal: Signal, encoding: BodyEncoding, body: &[u8]) -> Option<[Part; 2]> {
    let plain = decompress(encoding, body)?;
    let (first, second, n) = match signal {
        Signal::Logs => {
            let mut a = ExportLogsServiceRequest::decode(&plain[..]).ok()?;
            let n = units(&a.resource_logs);
            if n < 2 {
                return None;
            }
            let b = ExportLogsServiceRequest {
                resource_logs: split_vec(&mut a.resource_logs, n / 2),
            };
            (a.encode_to_vec(), b.encode_to_vec(), n)
        }
        Signal::Traces => {
            let mut a = ExportTraceServiceRequest::decode(&plain[..]).ok()?;
            let n = units(&a.resource_spans);
            if n < 2 {
                return None;
            }
            let b = ExportTraceServiceRequest {
                resource_spans: split_vec(&mut a.resource_spans, n / 2),
            };
            (a.encode_to_vec(), b.encode_to_vec(), n)
        }
        Signal::Metrics => {
            let mut a = ExportMetricsServiceRequest::decode(&plain[..]).ok()?;
            let n = units(&a.resource_metrics);
            if n < 2 {
                return None;
            }
            let b = ExportMetricsServiceRequest {
                resource_metrics: split_vec(&mut a.resource_metrics, n / 2),
            };
            (a.encode_to_vec(), b.encode_to_vec(), n)
        }
    };
    drop(plain);
    Some([
        part(&first, encoding, n / 2),
        part(&second, encoding, n - n / 2),
    ])
}

/// A level of an export request that holds records (log records, spans, metric points).
trait Level: Sized {
    /// Records under it.
    fn units(&self) -> u64;
    /// Keeps its first `n` records (0 < n < units) and returns the others under a copy of
    /// what surrounds them (resource, scope, metric name).
    fn split_off(&mut self, n: u64) -> Self;
}

fn units<T: Level>(v: &[T]) -> u64 {
    v.iter().map(Level::units).sum()
}

/// Keeps the first `n` records of a list of levels and returns the others, in order.
fn split_vec<T: Level>(v: &mut Vec<T>, n: u64) -> Vec<T> {
    let mut seen = 0u64;
    for i in 0..v.len() {
        let u = v[i].units();
        if seen + u == n {
            return v.split_off(i + 1);
        }
        if seen + u > n {
            let tail = v[i].split_off(n - seen);
            let mut rest = v.split_off(i + 1);
            rest.insert(0, tail);
            return rest;
        }
        seen += u;
    }
    Vec::new()
}

/// Keeps the first `n` records of a list of records and returns the others.
fn split_leaves<T>(v: &mut Vec<T>, n: u64) -> Vec<T> {
    let at = usize::try_from(n).unwrap_or(usize::MAX).min(v.len());
    v.split_off(at)
}

/// A copy of `x` without its `field`, which `x` keeps; cloning only what surrounds it.
macro_rules! shell {
    ($x:expr, $field:ident) => {{
        let kept = std::mem::take(&mut $x.$field);
        let shell = $x.clone();
        $x.$field = kept;
        shell
    }};
}

macro_rules! level {
    ($t:ty, $field:ident, records) => {
        impl Level for $t {
            fn units(&self) -> u64 {
                self.$field.len() as u64
            }
            fn split_off(&mut self, n: u64) -> Self {
                let mut rest = shell!(self, $field);
                rest.$field = split_leaves(&mut self.$field, n);
                rest
            }
        }
    };
    ($t:ty, $field:ident) => {
        impl Level for $t {
            fn units(&self) -> u64 {
                units(&self.$field)
            }
            fn split_off(&mut self, n: u64) -> Self {
                let mut rest = shell!(self, $field);
                rest.$field = split_vec(&mut self.$field, n);
                rest
            }
        }
    };
}

level!(ResourceLogs, scope_logs);
level!(ScopeLogs, log_records, records);
level!(ResourceSpans, scope_spans);
level!(ScopeSpans, spans, records);
level!(ResourceMetrics, scope_metrics);
level!(ScopeMetrics, metrics);

impl Level for Metric {
    fn units(&self) -> u64 {
        (match &self.data {
            Some(metric::Data::Gauge(g)) => g.data_points.len(),
            Some(metric::Data::Sum(s)) => s.data_points.len(),
            Some(metric::Data::Histogram(h)) => h.data_points.len(),
            Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(metric::Data::Summary(s)) => s.data_points.len(),
            None => 0,
        }) as u64
    }

    fn split_off(&mut self, n: u64) -> Self {
        let mut rest = shell!(self, data);
        rest.data = match &mut self.data {
            Some(metric::Data::Gauge(g)) => {
                let mut r = shell!(g, data_points);
                r.data_points = split_leaves(&mut g.data_points, n);
                Some(metric::Data::Gauge(r))
            }
            Some(metric::Data::Sum(s)) => {
                let mut r = shell!(s, data_points);
                r.data_points = split_leaves(&mut s.data_points, n);
                Some(metric::Data::Sum(r))
            }
            Some(metric::Data::Histogram(h)) => {
                let mut r = shell!(h, data_points);
                r.data_points = split_leaves(&mut h.data_points, n);
                Some(metric::Data::Histogram(r))
            }
            Some(metric::Data::ExponentialHistogram(h)) => {
                let mut r = shell!(h, data_points);
                r.data_points = split_leaves(&mut h.data_points, n);
                Some(metric::Data::ExponentialHistogram(r))
            }
            Some(metric::Data::Summary(s)) => {
                let mut r = shell!(s, data_points);
                r.data_points = split_leaves(&mut s.data_points, n);
                Some(metric::Data::Summary(r))
            }
            None => None,
        };
        rest
    }
}
