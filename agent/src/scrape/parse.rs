//! The parser of scraped answers: the Prometheus text format (0.0.4) and OpenMetrics 1.0 text.
//!
//! Why our own parser rather than a crate: the candidates on crates.io were checked against
//! what a scrape needs (`# TYPE`, histograms' `_bucket{le}`, summaries, `_total`, timestamps,
//! label escapes, NaN and ±Inf, both formats, no panic on any input):
//! - `openmetrics-parser` 0.5 (pest) parses both formats, but it is LGPL-3.0 (a static Rust
//!   binary under Apache-2.0 would carry its relinking duties), it refuses valid text-format
//!   answers whose samples of one family have different label names ("Labels in metrics have
//!   different label sets"), and it reads `le` and `quantile` into numbers only.
//! - `prometheus-parse` 0.2 splits label sets on `,` and `=` without reading quotes or escapes
//!   (`{path="a,b"}` comes out wrong), silently skips lines it cannot read, and knows neither
//!   OpenMetrics' `# EOF` nor its timestamps in seconds.
//! - `prom_text_format_parser` 0.1 (one release, 2023) reads the text format only.
//!
//! So this is a small line parser, strict where Prometheus is strict: a line it cannot read
//! fails the whole scrape (naming the line), as in Prometheus. It never panics and holds at
//! most `limit` samples, however long the answer (the answer itself is bounded by
//! `body_limit` before it gets here).
//!
//! What it reads: blank lines; `# HELP`, `# UNIT` and other comments (skipped); `# TYPE name
//! type` (counter, gauge, histogram, summary, untyped, and OpenMetrics' gaugehistogram,
//! stateset, info, unknown); samples `name{label="value",...} value [timestamp] [# exemplar]`
//! with label values unescaped (`\\`, `\"`, `\n`), values as Go writes them (`NaN`, `+Inf`,
//! `-Inf`, exponents), timestamps in milliseconds (text) or seconds (OpenMetrics), exemplars
//! skipped. An OpenMetrics answer must end with `# EOF`: a cut answer fails. Quoted UTF-8
//! metric and label names (OpenMetrics 2.0) are not read.

use std::collections::HashMap;

/// Which format an answer is in, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4` (and anything that is not OpenMetrics).
    Text,
    /// `application/openmetrics-text`.
    OpenMetrics,
}

impl Format {
    /// The format of an answer with this `Content-Type` header.
    pub fn from_content_type(ct: Option<&str>) -> Format {
        match ct {
            Some(c)
                if c.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/openmetrics-text") =>
            {
                Format::OpenMetrics
            }
            _ => Format::Text,
        }
    }
}

/// A metric family's type, from `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// `counter`: samples `x`, `x_total`, `x_created`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`: `x_bucket{le}`, `x_count`, `x_sum`, `x_created`.
    Histogram,
    /// OpenMetrics `gaugehistogram`: `x_bucket{le}`, `x_gcount`, `x_gsum`.
    GaugeHistogram,
    /// `summary`: `x{quantile}`, `x_count`, `x_sum`, `x_created`.
    Summary,
    /// OpenMetrics `info`: `x_info`.
    Info,
    /// OpenMetrics `stateset`.
    StateSet,
    /// `untyped`, `unknown`, or no `# TYPE` line.
    Unknown,
}

impl MetricType {
    fn parse(s: &str) -> Option<MetricType> {
        Some(match s {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::StateSet,
            "untyped" | "unknown" => MetricType::Unknown,
            _ => return None,
        })
    }

    /// Whether a sample named family + `suffix` belongs to a family of this type.
    fn allows(self, suffix: &str) -> bool {
        match self {
            MetricType::Counter => matches!(suffix, "" | "_total" | "_created"),
            MetricType::Histogram => matches!(suffix, "_bucket" | "_count" | "_sum" | "_created"),
            MetricType::GaugeHistogram => matches!(suffix, "_bucket" | "_gcount" | "_gsum"),
            MetricType::Summary => matches!(suffix, "" | "_count" | "_sum" | "_created"),
            MetricType::Info => matches!(suffix, "" | "_info"),
            MetricType::Gauge | MetricType::StateSet | MetricType::Unknown => suffix.is_empty(),
        }
    }
}

/// `# TYPE` lines an answer may have beyond `sample_limit` (families without samples), so
/// that an answer of nothing but `# TYPE` lines cannot fill memory.
pub const EXTRA_TYPES: usize = 10_000;

/// Suffixes a sample name may add to its family's name.
const SUFFIXES: [&str; 8] = [
    "_total", "_created", "_bucket", "_count", "_sum", "_gcount", "_gsum", "_info",
];

/// One sample, its name and labels exactly as exposed.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (`x_bucket`, `x_total`, ...).
    pub name: String,
    /// Its labels in the order written; names unique, values unescaped.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
    /// Its own timestamp, in ms since the epoch, when it carries one.
    pub timestamp_ms: Option<i64>,
    /// Its family's type.
    pub ty: MetricType,
    /// Bytes of `name` that are the family's name (`x` of `x_bucket`).
    pub family_len: usize,
}

impl Sample {
    /// The family's name.
    pub fn family(&self) -> &str {
        self.name.get(..self.family_len).unwrap_or(&self.name)
    }

    /// What the name adds to the family's name (`_bucket`, `_total`, or empty).
    pub fn suffix(&self) -> &str {
        self.name.get(self.family_len..).unwrap_or("")
    }

    /// The value of a label.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// The samples kept (those `keep` let through), in the order written.
    pub samples: Vec<Sample>,
    /// Every sample in the answer (`scrape_samples_scraped`).
    pub scraped: usize,
}

/// Why an answer was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// The answer is not UTF-8.
    #[error("the answer is not UTF-8 text (at byte {0})")]
    NotUtf8(usize),
    /// A line that is not a sample, a comment or blank.
    #[error("line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An OpenMetrics answer without its final `# EOF` line (cut short), or with lines after.
    #[error("the OpenMetrics answer {0}")]
    Eof(&'static str),
    /// More samples kept than `sample_limit`.
    #[error("{kept} samples kept of {scraped} in the answer, more than sample_limit ({limit})")]
    SampleLimit {
        /// Samples in the answer.
        scraped: usize,
        /// Samples `keep` let through.
        kept: usize,
        /// The limit.
        limit: usize,
    },
}

/// Parses an answer. `keep` says, by sample name, which samples to keep (`keep` and `drop`
/// of the job); more than `limit` kept fails the whole answer (the rest is still read, only
/// to count it).
pub fn parse(
    body: &[u8],
    format: Format,
    keep: &dyn Fn(&str) -> bool,
    limit: usize,
) -> Result<Parsed, ParseError> {
    let text = std::str::from_utf8(body).map_err(|e| ParseError::NotUtf8(e.valid_up_to()))?;
    let mut types: HashMap<String, MetricType> = HashMap::new();
    let mut out = Parsed::default();
    let mut kept = 0usize;
    let mut eof = false;
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let err = |message: String| ParseError::Line {
            line: i + 1,
            message,
        };
        if eof {
            if line.trim().is_empty() {
                continue;
            }
            return Err(ParseError::Eof("has lines after # EOF"));
        }
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.trim_start().strip_prefix('#') {
            let mut words = comment.split_whitespace();
            match words.next() {
                Some("TYPE") => {
                    let (Some(name), Some(ty), None) = (words.next(), words.next(), words.next())
                    else {
                        return Err(err("a TYPE line is `# TYPE name type`".into()));
                    };
                    let ty = MetricType::parse(ty)
                        .ok_or_else(|| err(format!("unknown metric type \"{}\"", short(ty))))?;
                    if !valid_metric_name(name) {
                        return Err(err(format!("\"{}\" is not a metric name", short(name))));
                    }
                    if types.len() >= limit.saturating_add(EXTRA_TYPES) {
                        return Err(err(format!(
                            "more than {} # TYPE lines (sample_limit + {EXTRA_TYPES})",
                            limit.saturating_add(EXTRA_TYPES)
                        )));
                    }
                    types.insert(name.to_string(), ty);
                }
                Some("EOF") if format == Format::OpenMetrics => eof = true,
                // HELP, UNIT and plain comments.
                _ => {}
            }
            continue;
        }
        let raw = sample_line(line, format).map_err(err)?;
        out.scraped += 1;
        if !keep(raw.name) {
            continue;
        }
        kept += 1;
        if kept > limit {
            continue;
        }
        let (ty, family_len) = resolve_type(&types, raw.name);
        out.samples.push(Sample {
            name: raw.name.to_string(),
            labels: raw.labels,
            value: raw.value,
            timestamp_ms: raw.timestamp_ms,
            ty,
            family_len,
        });
    }
    if format == Format::OpenMetrics && !eof {
        return Err(ParseError::Eof("does not end with # EOF (cut short?)"));
    }
    if kept > limit {
        return Err(ParseError::SampleLimit {
            scraped: out.scraped,
            kept,
            limit,
        });
    }
    Ok(out)
}

/// The start of a token for an error message (a hostile line may be megabytes long).
fn short(s: &str) -> &str {
    let mut n = s.len().min(64);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    s.get(..n).unwrap_or("")
}

/// The type and family of a sample name: its own `# TYPE`, else a typed family it is a part
/// of (`x` for `x_bucket` when `x` is a histogram), else untyped.
fn resolve_type(types: &HashMap<String, MetricType>, name: &str) -> (MetricType, usize) {
    if let Some(t) = types.get(name)
        && t.allows("")
    {
        return (*t, name.len());
    }
    for suffix in SUFFIXES {
        if let Some(base) = name.strip_suffix(suffix)
            && let Some(t) = types.get(base)
            && t.allows(suffix)
        {
            return (*t, base.len());
        }
    }
    (MetricType::Unknown, name.len())
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn valid_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && !b[0].is_ascii_digit()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
}

/// A sample line, borrowed.
struct RawSample<'a> {
    name: &'a str,
    labels: Vec<(String, String)>,
    value: f64,
    timestamp_ms: Option<i64>,
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// A cursor over one line.
struct Cur<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cur<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }
    fn blanks(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(is_blank) {
            self.pos += 1;
        }
        self.pos - start
    }
    /// The longest run of bytes that `ok` accepts.
    fn take(&mut self, ok: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&ok) {
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or("")
    }
    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }
}

fn sample_line(line: &str, format: Format) -> Result<RawSample<'_>, String> {
    let mut c = Cur { s: line, pos: 0 };
    c.blanks();
    let name = c.take(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
    if !valid_metric_name(name) {
        return Err(format!(
            "expected a sample (name, labels, value), found \"{}\"",
            short(c.rest())
        ));
    }
    let gap = c.blanks();
    let (labels, gap) = if c.peek() == Some(b'{') {
        c.pos += 1;
        let l = labels(&mut c)?;
        (l, c.blanks())
    } else {
        (Vec::new(), gap)
    };
    if gap == 0 {
        return Err(format!(
            "sample {name}: expected a space before the value, found \"{}\"",
            short(c.rest())
        ));
    }
    let token = c.take(|b| !is_blank(b));
    let value = parse_value(token)
        .ok_or_else(|| format!("sample {name}: value \"{}\" is not a number", short(token)))?;
    c.blanks();
    let mut timestamp_ms = None;
    if c.peek().is_some_and(|b| b != b'#') {
        let token = c.take(|b| !is_blank(b));
        timestamp_ms = Some(parse_timestamp(token, format).ok_or_else(|| {
            format!("sample {name}: timestamp \"{}\" is not valid", short(token))
        })?);
        c.blanks();
    }
    // What is left may only be an exemplar (` # {labels} value [timestamp]`), skipped.
    if c.peek().is_some_and(|b| b != b'#') {
        return Err(format!(
            "sample {name}: unexpected \"{}\" after the value",
            short(c.rest())
        ));
    }
    Ok(RawSample {
        name,
        labels,
        value,
        timestamp_ms,
    })
}

/// Labels after the opening `{`, through the closing `}`.
fn labels(c: &mut Cur<'_>) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    loop {
        c.blanks();
        if c.peek() == Some(b'}') {
            c.pos += 1;
            // Sorted, so that a line of a million labels costs n log n, not n².
            let mut names: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
            names.sort_unstable();
            if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
                return Err(format!("label {} is given twice", w[0]));
            }
            return Ok(out);
        }
        let name = c.take(|b| b.is_ascii_alphanumeric() || b == b'_');
        if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
            return Err(format!(
                "expected a label name, found \"{}\"",
                short(c.rest())
            ));
        }
        c.blanks();
        if c.peek() != Some(b'=') {
            return Err(format!(
                "label {name}: expected =, found \"{}\"",
                short(c.rest())
            ));
        }
        c.pos += 1;
        c.blanks();
        if c.peek() != Some(b'"') {
            return Err(format!(
                "label {name}: expected a quoted value, found \"{}\"",
                short(c.rest())
            ));
        }
        c.pos += 1;
        let value = quoted(c).map_err(|e| format!("label {name}: {e}"))?;
        out.push((name.to_string(), value));
        c.blanks();
        match c.peek() {
            Some(b',') => c.pos += 1,
            Some(b'}') => {}
            _ => {
                return Err(format!(
                    "after label {name}: expected , or }}, found \"{}\"",
                    short(c.rest())
                ));
            }
        }
    }
}

/// A label value after its opening quote, through the closing one, unescaped.
fn quoted(c: &mut Cur<'_>) -> Result<String, String> {
    let rest = c.rest();
    let mut out = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, ch)) = chars.next() {
        match ch {
            '"' => {
                c.pos += i + 1;
                return Ok(out);
            }
            '\\' => match chars.next() {
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, other)) => return Err(format!("invalid escape \\{other} in its value")),
                None => break,
            },
            ch => out.push(ch),
        }
    }
    Err("its value has no closing quote".into())
}

/// A sample value as Go and the exporters write it: decimal with an optional exponent, `NaN`,
/// `+Inf`, `-Inf` (any case).
fn parse_value(s: &str) -> Option<f64> {
    s.parse::<f64>().ok()
}

/// A timestamp in ms: an integer of ms (text format) or a number of seconds (OpenMetrics).
fn parse_timestamp(s: &str, format: Format) -> Option<i64> {
    match format {
        Format::Text => s.parse::<i64>().ok(),
        Format::OpenMetrics => {
            let secs = parse_value(s)?;
            let ms = (secs * 1000.0).round();
            // Both bounds are exact in f64 and inside i64.
            (ms.is_finite() && (-9.0e18..=9.0e18).contains(&ms)).then_some(ms as i64)
        }
    }
}
