//! Prometheus's response envelope and value encoding, byte for byte as Prometheus writes
//! them: `{"status":"success","data":...}` or `{"status":"error","errorType":...,"error":...}`;
//! times as seconds with the milliseconds after a point (`1700000000.250`); values as strings
//! (`"1.5"`, `"+Inf"`, `"NaN"`; `"3.22e-07"` below 1e-6 and from 1e21 up).

use crate::promql::{PromError, QueryValue};
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use skein_model::metric::Labels;
use std::fmt::Write;

/// A success answer around `data` (JSON text), with `warnings` when there are any.
pub fn success(data: &str, warnings: &[String]) -> Response {
    let mut out = String::with_capacity(data.len() + 64);
    out.push_str(r#"{"status":"success","data":"#);
    out.push_str(data);
    if !warnings.is_empty() {
        out.push_str(r#","warnings":"#);
        out.push_str(&json_string_list(warnings));
    }
    out.push('}');
    respond(StatusCode::OK, out)
}

/// An error answer with Prometheus's status for its type.
pub fn error(e: &PromError) -> Response {
    let body = serde_json::json!({
        "status": "error",
        "errorType": e.kind.as_str(),
        "error": e.message,
    })
    .to_string();
    let status = StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = respond(status, body);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

fn respond(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `{"resultType":...,"result":...}` of a query's value.
pub fn value(v: &QueryValue) -> String {
    let mut out = String::new();
    match v {
        QueryValue::Scalar(t, x) => {
            out.push_str(r#"{"resultType":"scalar","result":"#);
            point(&mut out, *t, *x);
        }
        QueryValue::String(t, s) => {
            out.push_str(r#"{"resultType":"string","result":["#);
            time(&mut out, *t);
            out.push(',');
            out.push_str(&json_string(s));
            out.push(']');
        }
        QueryValue::Vector(samples) => {
            out.push_str(r#"{"resultType":"vector","result":["#);
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                labels(&mut out, &s.labels);
                out.push_str(r#","value":"#);
                point(&mut out, s.t, s.v);
                out.push('}');
            }
            out.push(']');
        }
        QueryValue::Matrix(series) => {
            out.push_str(r#"{"resultType":"matrix","result":["#);
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                labels(&mut out, &s.labels);
                out.push_str(r#","values":["#);
                for (j, (t, x)) in s.points.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    point(&mut out, *t, *x);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}

/// A label set as a JSON object, in label order.
pub fn labels(out: &mut String, l: &Labels) {
    out.push('{');
    for (i, (k, v)) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(k));
        out.push(':');
        out.push_str(&json_string(v));
    }
    out.push('}');
}

/// `[time, "value"]`.
fn point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    time(out, t);
    out.push_str(",\"");
    out.push_str(&float(v));
    out.push_str("\"]");
}

/// Seconds, with `.mmm` when there are milliseconds (as Prometheus writes them).
pub fn time(out: &mut String, t: i64) {
    let (sign, t) = if t < 0 {
        ("-", t.unsigned_abs())
    } else {
        ("", t as u64)
    };
    let _ = write!(out, "{sign}{}", t / 1000);
    let frac = t % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
}

/// A value as Prometheus prints it: shortest exact decimal, `+Inf`, `-Inf`, `NaN`.
pub fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else if v != 0.0 && (v.abs() < 1e-6 || v.abs() >= 1e21) {
        // Go's shortest 'e' form, as Prometheus writes these: `3.22e-07`, `1e+21`.
        let e = format!("{v:e}");
        match e.split_once('e') {
            Some((mantissa, exp)) => {
                let (sign, digits) = match exp.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', exp),
                };
                format!("{mantissa}e{sign}{digits:0>2}")
            }
            None => e,
        }
    } else {
        format!("{v}")
    }
}

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A JSON list of strings.
pub fn json_string_list<S: AsRef<str>>(items: &[S]) -> String {
    let mut out = String::from("[");
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(s.as_ref()));
    }
    out.push(']');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::promql::{RangeSeries, Sample};

    #[test]
    fn values_and_times_as_prometheus_writes_them() {
        assert_eq!(float(1.0), "1");
        assert_eq!(float(0.1), "0.1");
        assert_eq!(float(1e21), "1e+21");
        assert_eq!(float(9.99e20), "999000000000000000000");
        assert_eq!(float(-2.5e-7), "-2.5e-07");
        assert_eq!(float(3.22e-7), "3.22e-07");
        assert_eq!(float(1.5e-6), "0.0000015");
        assert_eq!(float(1.2345e300), "1.2345e+300");
        assert_eq!(float(0.0), "0");
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float(f64::NAN), "NaN");
        let mut s = String::new();
        time(&mut s, 1_700_000_000_250);
        s.push(' ');
        time(&mut s, 1_700_000_000_000);
        s.push(' ');
        time(&mut s, 1_700_000_000_005);
        s.push(' ');
        time(&mut s, -1_500);
        assert_eq!(s, "1700000000.250 1700000000 1700000000.005 -1.500");
    }

    #[test]
    fn each_result_type_parses_back() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a\"b")]);
        let v = QueryValue::Vector(vec![Sample {
            labels: l.clone(),
            t: 1000,
            v: 1.0,
        }]);
        let j: serde_json::Value = serde_json::from_str(&value(&v)).unwrap();
        assert_eq!(j["resultType"], "vector");
        assert_eq!(j["result"][0]["metric"]["job"], "a\"b");
        assert_eq!(j["result"][0]["value"][1], "1");
        let m = QueryValue::Matrix(vec![RangeSeries {
            labels: l,
            points: vec![(1000, 1.0), (2500, f64::NAN)],
        }]);
        let j: serde_json::Value = serde_json::from_str(&value(&m)).unwrap();
        assert_eq!(j["result"][0]["values"][1][0].as_f64(), Some(2.5));
        assert_eq!(j["result"][0]["values"][1][1], "NaN");
        let s: serde_json::Value =
            serde_json::from_str(&value(&QueryValue::Scalar(3000, 2.0))).unwrap();
        assert_eq!(s["result"], serde_json::json!([3, "2"]));
        let t: serde_json::Value =
            serde_json::from_str(&value(&QueryValue::String(3000, "x".into()))).unwrap();
        assert_eq!(t["result"], serde_json::json!([3, "x"]));
    }
}
