//! `skein services`, `skein deps`, `skein metrics` and `skein hosts`: the monitoring views of
//! the query API as terminal tables (or the API's JSON with `--json`).
//!
//! Every name and label value comes from outside (spans, metrics, heartbeats), so each is
//! passed through [`render::sanitize`] before it is printed.

use std::io::Write;

use anyhow::Context;
use skein_client::Client;
use skein_model::api::HostsResponse;
use skein_model::metrics_api::{
    DependenciesResponse, MetricQueryResponse, OperationsResponse, ServicesResponse,
};
use skein_tui::sparkline::sparkline;

use super::render::sanitize;
use super::{EXIT_FOUND, EXIT_NOT_FOUND};

fn ms(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 1000.0 => format!("{:.2}s", v / 1000.0),
        Some(v) if v >= 10.0 => format!("{v:.0}ms"),
        Some(v) => format!("{v:.1}ms"),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

pub(crate) fn num(v: f64) -> String {
    if v.abs() >= 1e6 || (v != 0.0 && v.abs() < 1e-3) {
        format!("{v:.3e}")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// The services table.
pub fn services_text(r: &ServicesResponse) -> String {
    let mut out = format!(
        "{:<24} {:>9} {:>7} {:>8} {:>8}  {}\n",
        "SERVICE", "RATE/s", "ERR%", "P50", "P99", "RATE (5m)"
    );
    for s in &r.services {
        let trend: Vec<Option<f64>> = s.recent.iter().map(|p| Some(p.rate)).collect();
        out.push_str(&format!(
            "{:<24} {:>9.2} {:>7} {:>8} {:>8}  {}\n",
            sanitize(&s.name),
            s.rate,
            pct(s.error_rate),
            ms(s.p50_ms),
            ms(s.p99_ms),
            sparkline(&trend)
        ));
    }
    out
}

/// One service's operations table.
pub fn operations_text(r: &OperationsResponse) -> String {
    let mut out = format!(
        "{}\n{:<32} {:>9} {:>7} {:>8} {:>8} {:>8} {:>8}\n",
        sanitize(&r.service),
        "OPERATION",
        "RATE/s",
        "ERR%",
        "P50",
        "P90",
        "P95",
        "P99"
    );
    for o in &r.operations {
        out.push_str(&format!(
            "{:<32} {:>9.2} {:>7} {:>8} {:>8} {:>8} {:>8}\n",
            sanitize(&o.name),
            o.rate,
            pct(o.error_rate),
            ms(o.p50_ms),
            ms(o.p90_ms),
            ms(o.p95_ms),
            ms(o.p99_ms)
        ));
    }
    out
}

/// The dependency edges, one a line, then the nodes that send no spans of their own.
pub fn deps_text(r: &DependenciesResponse) -> String {
    let mut out = String::new();
    for e in &r.edges {
        let arrow = match e.kind.as_str() {
            "async" => "~async~>",
            "link" => "-link->",
            _ => "-->",
        };
        out.push_str(&format!(
            "{:<20} {:<8} {:<24} calls {:>8}  err {:>6}  p50 {:>7}  p99 {:>7}\n",
            sanitize(&e.caller),
            arrow,
            format!(
                "{}{}",
                sanitize(&e.callee),
                if e.callee_type == "service" {
                    String::new()
                } else {
                    format!(" ({})", sanitize(&e.callee_type))
                }
            ),
            e.calls,
            pct(Some(e.error_rate)),
            ms(e.p50_ms),
            ms(e.p99_ms)
        ));
    }
    let outside: Vec<String> = r
        .nodes
        .iter()
        .filter(|n| !n.instrumented)
        .map(|n| format!("{} ({})", sanitize(&n.name), sanitize(&n.node_type)))
        .collect();
    if !outside.is_empty() {
        out.push_str(&format!("not instrumented: {}\n", outside.join(", ")));
    }
    out
}

/// Each result series: its labels, a sparkline, and its last, min and max.
pub fn metric_text(r: &MetricQueryResponse) -> String {
    let mut out = String::new();
    for s in &r.series {
        let values: Vec<Option<f64>> = s.points.iter().map(|p| Some(p.1)).collect();
        let finite = s.points.iter().map(|p| p.1).filter(|v| v.is_finite());
        let min = finite.clone().fold(f64::INFINITY, f64::min);
        let max = finite.fold(f64::NEG_INFINITY, f64::max);
        let last = s.points.last().map_or("-".into(), |p| num(p.1));
        let labels = if s.labels.is_empty() {
            "{}".to_string()
        } else {
            sanitize(&s.labels.to_string())
        };
        out.push_str(&format!(
            "{}{} {}\n  last {}  min {}  max {}  points {}\n  {}\n",
            sanitize(&r.name),
            labels,
            sanitize(&r.agg),
            last,
            if min.is_finite() {
                num(min)
            } else {
                "-".into()
            },
            if max.is_finite() {
                num(max)
            } else {
                "-".into()
            },
            s.points.len(),
            sparkline(&values)
        ));
    }
    out
}

/// The hosts table.
pub fn hosts_text(r: &HostsResponse) -> String {
    let mut out = format!(
        "{:<24} {:<5} {:>6} {:>16} {:>6} {:>10}  {}\n",
        "HOST", "STATE", "CPU", "MEMORY", "LOAD1", "BUFFER", "AGENTS"
    );
    for h in &r.hosts {
        let mem = match (h.memory_used_bytes, h.memory_total_bytes) {
            (Some(u), Some(t)) if t > 0 => {
                format!("{:.1}/{:.1}G", u as f64 / 1e9, t as f64 / 1e9)
            }
            _ => "-".into(),
        };
        out.push_str(&format!(
            "{:<24} {:<5} {:>6} {:>16} {:>6} {:>10}  {}\n",
            sanitize(&h.host),
            sanitize(&h.state),
            pct(h.cpu_utilization),
            mem,
            h.load1.map_or("-".into(), |l| format!("{l:.2}")),
            h.buffer_bytes,
            sanitize(&h.agents.join(","))
        ));
    }
    out
}

pub(crate) fn emit<T: serde::Serialize>(
    out: &mut dyn Write,
    json: bool,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, value)?;
        writeln!(out)?;
    } else {
        out.write_all(text(value).as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// `skein services [service]`.
pub async fn services(
    client: &Client,
    service: Option<&str>,
    window: &str,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    if let Some(name) = service {
        let r = client
            .operations(name, window)
            .await
            .context("reading the service's operations")?;
        let Some(r) = r else {
            eprintln!("no service '{}' has sent spans", sanitize(name));
            return Ok(EXIT_NOT_FOUND);
        };
        emit(out, json, &r, operations_text)?;
        return Ok(if r.operations.is_empty() {
            EXIT_NOT_FOUND
        } else {
            EXIT_FOUND
        });
    }
    let r = client.services(window).await.context("reading services")?;
    emit(out, json, &r, services_text)?;
    Ok(if r.services.is_empty() {
        EXIT_NOT_FOUND
    } else {
        EXIT_FOUND
    })
}

/// `skein deps`.
pub async fn deps(
    client: &Client,
    since: Option<&str>,
    until: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    let r = client
        .dependencies(since, until)
        .await
        .context("reading the dependency graph")?;
    emit(out, json, &r, deps_text)?;
    Ok(if r.edges.is_empty() {
        EXIT_NOT_FOUND
    } else {
        EXIT_FOUND
    })
}

/// `skein metrics [name]`: without a name, the list of metrics.
pub async fn metrics(
    client: &Client,
    name: Option<&str>,
    params: &[(&str, &str)],
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    let Some(name) = name else {
        let r = client.metric_names().await.context("listing metrics")?;
        emit(out, json, &r, |r| {
            let mut s = format!(
                "{:<48} {:<14} {:>8} {:>8}\n",
                "NAME", "KIND", "UNIT", "SERIES"
            );
            for m in &r.metrics {
                s.push_str(&format!(
                    "{:<48} {:<14} {:>8} {:>8}\n",
                    sanitize(&m.name),
                    sanitize(&m.kind),
                    sanitize(&m.unit),
                    m.series
                ));
            }
            s
        })?;
        return Ok(if r.metrics.is_empty() {
            EXIT_NOT_FOUND
        } else {
            EXIT_FOUND
        });
    };
    let mut p = vec![("name", name)];
    p.extend_from_slice(params);
    let r = client
        .metric_query(&p)
        .await
        .with_context(|| format!("querying {}", sanitize(name)))?;
    emit(out, json, &r, metric_text)?;
    Ok(if r.series.iter().all(|s| s.points.is_empty()) {
        EXIT_NOT_FOUND
    } else {
        EXIT_FOUND
    })
}

/// `skein hosts`.
pub async fn hosts(client: &Client, json: bool, out: &mut dyn Write) -> anyhow::Result<u8> {
    let r = client.hosts().await.context("reading hosts")?;
    emit(out, json, &r, hosts_text)?;
    Ok(if r.hosts.is_empty() {
        EXIT_NOT_FOUND
    } else {
        EXIT_FOUND
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use skein_model::metric::Labels;
    use skein_model::metrics_api::{DepEdge, DepNode, RecentPoint, ResultSeries, ServiceHealth};

    #[test]
    fn tables_strip_escapes_and_show_figures() {
        let r = ServicesResponse {
            window_ms: 60_000,
            services: vec![ServiceHealth {
                name: "pay\x1b[31mment".into(),
                rate: 12.5,
                error_rate: Some(0.02),
                p50_ms: Some(12.0),
                p99_ms: Some(1500.0),
                calls: 750,
                errors: 15,
                recent: vec![
                    RecentPoint {
                        ts_ms: 1,
                        rate: 1.0,
                        error_rate: None,
                        p99_ms: None,
                    },
                    RecentPoint {
                        ts_ms: 2,
                        rate: 2.0,
                        error_rate: None,
                        p99_ms: None,
                    },
                ],
            }],
        };
        let t = services_text(&r);
        assert!(!t.contains('\x1b'), "{t:?}");
        assert!(
            t.contains("12.50") && t.contains("2.0%") && t.contains("1.50s"),
            "{t}"
        );
        assert!(t.contains("▅█"), "{t}");
        let d = DependenciesResponse {
            start_ms: 0,
            end_ms: 1,
            nodes: vec![DepNode {
                name: "db-1".into(),
                node_type: "database".into(),
                instrumented: false,
                calls: 3,
            }],
            edges: vec![DepEdge {
                caller: "order".into(),
                callee: "db-1".into(),
                kind: "sync".into(),
                callee_type: "database".into(),
                calls: 3,
                errors: 0,
                error_rate: 0.0,
                p50_ms: Some(2.0),
                p90_ms: None,
                p95_ms: None,
                p99_ms: Some(4.0),
            }],
        };
        let t = deps_text(&d);
        assert!(t.contains("order") && t.contains("db-1 (database)"), "{t}");
        assert!(t.contains("not instrumented: db-1 (database)"), "{t}");
        let m = MetricQueryResponse {
            name: "cpu".into(),
            agg: "avg".into(),
            start_ms: 0,
            end_ms: 1,
            step_ms: 1,
            series: vec![ResultSeries {
                labels: Labels::from_pairs([("host", "web-1")]),
                points: vec![(1, 0.5), (2, 0.25)],
            }],
        };
        let t = metric_text(&m);
        assert!(t.contains(r#"cpu{host="web-1"} avg"#), "{t}");
        assert!(t.contains("last 0.250  min 0.250  max 0.500"), "{t}");
    }
}
