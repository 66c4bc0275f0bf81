//! Parameters of the Prometheus API: from the query string and, for a form-encoded POST,
//! from the body (both are read, as Prometheus does); times and durations in Prometheus's
//! syntax; `match[]` selectors.

use crate::promql::PromError;
use skein_store::tsdb::{MatchOp, Matcher};

/// Largest form body a POST may carry (a long query with many `match[]`).
pub const MAX_FORM_BYTES: usize = 1024 * 1024;

/// Every parameter, repeated ones kept in order.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

/// Reads a request's parameters: its query string, and its body when it is a form
/// (`application/x-www-form-urlencoded`), as Prometheus and Loki read them.
pub(crate) async fn read<S: Send + Sync>(
    req: axum::extract::Request,
    state: &S,
) -> Result<Form, PromError> {
    use axum::extract::FromRequest as _;
    let raw = req.uri().query().map(str::to_string);
    let is_form = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body = axum::body::Bytes::from_request(req, state)
        .await
        .map_err(|e| PromError::bad_data(format!("cannot read the body: {e}")))?;
    Form::parse(raw.as_deref(), is_form.then_some(&body[..]))
}

impl Form {
    /// Reads the query string and a form body.
    pub fn parse(query: Option<&str>, body: Option<&[u8]>) -> Result<Form, PromError> {
        let mut all: Vec<(String, String)> = Vec::new();
        if let Some(q) = query {
            all.extend(
                serde_urlencoded::from_str::<Vec<(String, String)>>(q).map_err(|e| {
                    PromError::bad_data(format!("cannot read the query string: {e}"))
                })?,
            );
        }
        if let Some(b) = body.filter(|b| !b.is_empty()) {
            all.extend(
                serde_urlencoded::from_bytes::<Vec<(String, String)>>(b)
                    .map_err(|e| PromError::bad_data(format!("cannot read the form body: {e}")))?,
            );
        }
        Ok(Form(all))
    }

    /// The first value of `name`, if set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A time parameter in ms, or `default` when absent.
    pub fn time(&self, name: &str, default: i64) -> Result<i64, PromError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => parse_time(v)
                .map_err(|e| PromError::bad_data(format!("invalid parameter \"{name}\": {e}"))),
        }
    }

    /// A duration parameter in ms.
    pub fn duration(&self, name: &str) -> Result<Option<i64>, PromError> {
        self.get(name)
            .map(|v| {
                parse_duration(v)
                    .map_err(|e| PromError::bad_data(format!("invalid parameter \"{name}\": {e}")))
            })
            .transpose()
    }
}

/// Earliest time the API accepts (as Prometheus's `minTime`, in ms, rounded).
pub const MIN_TIME: i64 = -9_223_372_036_854_000;
/// Latest time the API accepts.
pub const MAX_TIME: i64 = 9_223_372_036_854_000;

/// A time: Unix seconds with an optional fraction, or RFC 3339. Milliseconds, rounded.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        let secs = f.trunc();
        let ms = ((f - secs) * 1000.0).round();
        let t = secs * 1000.0 + ms;
        if !(MIN_TIME as f64..=MAX_TIME as f64).contains(&t) {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        return Ok(t as i64);
    }
    humantime::parse_rfc3339_weak(s)
        .ok()
        .and_then(|t| {
            let ms = match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => i64::try_from(d.as_millis()).ok()?,
                Err(e) => -i64::try_from(e.duration().as_millis()).ok()?,
            };
            Some(ms)
        })
        .ok_or_else(|| format!("cannot parse {s:?} to a valid timestamp"))
}

/// A duration: seconds with an optional fraction, or Prometheus's syntax (`1h30m`, `5m`,
/// `500ms`, `2d`, `1w`, `1y`). Milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("cannot parse {s:?} to a valid duration");
    if let Ok(f) = s.parse::<f64>() {
        let ms = f * 1000.0;
        if !ms.is_finite() || ms.abs() >= i64::MAX as f64 {
            return Err(bad());
        }
        return Ok(ms.round() as i64);
    }
    let mut total: i64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// The matchers of one `match[]` selector (`up{job="x"}`, `{__name__=~"a.*"}`).
pub fn selector(s: &str) -> Result<Vec<Matcher>, PromError> {
    use promql_parser::label::MatchOp as P;
    use promql_parser::parser::Expr;
    let expr = promql_parser::parser::parse(s)
        .map_err(|e| PromError::bad_data(format!("invalid parameter \"match[]\": {e}")))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(PromError::bad_data(format!(
            "invalid parameter \"match[]\": {s:?} is not a series selector such as up{{job=\"x\"}}"
        )));
    };
    if !vs.matchers.or_matchers.is_empty() {
        return Err(PromError::bad_data(
            "invalid parameter \"match[]\": `or` inside a selector is not supported; send several match[] instead",
        ));
    }
    let mut out = Vec::new();
    if let Some(name) = &vs.name {
        out.push(Matcher::new("__name__", MatchOp::Eq, name).map_err(PromError::bad_data)?);
    }
    for m in &vs.matchers.matchers {
        let op = match m.op {
            P::Equal => MatchOp::Eq,
            P::NotEqual => MatchOp::Ne,
            P::Re(_) => MatchOp::Re,
            P::NotRe(_) => MatchOp::NotRe,
        };
        out.push(Matcher::new(&m.name, op, &m.value).map_err(PromError::bad_data)?);
    }
    let empty = skein_model::metric::Labels::default();
    if out.iter().all(|m| m.matches(&empty)) {
        return Err(PromError::bad_data(format!(
            "invalid parameter \"match[]\": match[] must contain at least one non-empty matcher: {s}"
        )));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn times_as_prometheus_reads_them() {
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("1700000000.5").unwrap(), 1_700_000_000_500);
        assert_eq!(parse_time("1700000000.0004").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("-1.5").unwrap(), -1_500);
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20.250Z").unwrap(),
            1_700_000_000_250
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("NaN").is_err());
        assert!(parse_time("1e300").is_err());
    }

    #[test]
    fn durations_as_prometheus_reads_them() {
        assert_eq!(parse_duration("15").unwrap(), 15_000);
        assert_eq!(parse_duration("0.5").unwrap(), 500);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500);
        assert_eq!(parse_duration("2d").unwrap(), 172_800_000);
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999y").is_err());
    }

    #[test]
    fn form_reads_query_and_body_with_repeats() {
        let f = Form::parse(
            Some("match[]=up&start=1"),
            Some(b"match[]=%7Bjob%3D%22x%22%7D&query="),
        )
        .unwrap();
        assert_eq!(f.all("match[]"), vec!["up", "{job=\"x\"}"]);
        assert_eq!(f.get("start"), Some("1"));
        assert_eq!(f.get("query"), None);
        assert_eq!(f.time("start", 0).unwrap(), 1000);
        assert_eq!(f.time("end", 7).unwrap(), 7);
        let bad = Form::parse(Some("start=x"), None).unwrap();
        assert_eq!(
            bad.time("start", 0).unwrap_err().kind,
            crate::promql::ErrorType::BadData
        );
    }

    #[test]
    fn selectors() {
        let m = selector(r#"up{job="api",code=~"5.."}"#).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].label, "__name__");
        assert_eq!(m[2].op, MatchOp::Re);
        assert!(selector(r#"{job=~".*"}"#).is_err());
        assert!(selector("rate(up[5m])").is_err());
        assert!(selector("up{").is_err());
        assert_eq!(selector(r#"{__name__=~"skein_.+"}"#).unwrap().len(), 1);
    }
}
