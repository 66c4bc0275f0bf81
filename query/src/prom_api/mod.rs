//! The Prometheus HTTP query API on the query port, so Grafana's Prometheus data source,
//! `promtool query`, `prometheus-api-client` and anything else that speaks to a Prometheus
//! reads Skein's metrics with PromQL:
//!
//! - `GET|POST /api/v1/query` (`query`, `time`, `timeout`)
//! - `GET|POST /api/v1/query_range` (`query`, `start`, `end`, `step`, `timeout`)
//! - `GET|POST /api/v1/series` (`match[]`, `start`, `end`)
//! - `GET|POST /api/v1/labels`, `GET /api/v1/label/{name}/values` (`match[]`, `start`, `end`)
//! - `GET /api/v1/metadata` (`metric`, `limit`), `GET /api/v1/status/buildinfo`,
//!   `GET|POST /api/v1/query_exemplars` (always empty: Skein keeps no exemplars)
//!
//! Parameters come from the query string and from a form-encoded POST body, as in
//! Prometheus. Answers use Prometheus's envelope and error types ([`render`]). Series names
//! are Prometheus names ([`crate::promql::names`]). Every query runs on a blocking thread
//! with the query API's time limit and concurrency places (`query.timeout`,
//! `query.max_concurrent`), like the other routes, and reads through
//! [`crate::metric_reads::MetricReads`], so in a cluster any node answers for all.
//!
//! Not done here: `/api/v1/labels` and label values without `match[]` ignore `start` and
//! `end` (they list every label the store holds, as a Prometheus with one block would).

pub mod params;
pub mod render;

use crate::api::{ApiState, run_blocking};
use crate::promql::engine::{Engine, Limits};
use crate::promql::names::{NameMap, is_label_name};
use crate::promql::source::StoreSource;
use crate::promql::{ErrorType, PromError, QueryValue};
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use params::{Form, MAX_FORM_BYTES, MAX_TIME, MIN_TIME};
use skein_model::metric::Labels;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Most series one `match[]` list may pick in `/api/v1/series`, `/api/v1/labels` and label
/// values.
pub const MAX_SERIES: usize = 100_000;

/// The version `/api/v1/status/buildinfo` reports: the Prometheus release whose API and
/// PromQL this one follows, so Grafana enables the features it has.
pub const PROMETHEUS_VERSION: &str = "2.42.0";

/// The routes (the caller adds authentication and the state).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/api/v1/query_exemplars", get(exemplars).post(exemplars))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
}

fn now_ms() -> i64 {
    (skein_model::time::now_unix_nano() / 1_000_000) as i64
}

/// The parameters of a request, as an extractor: the query string, and the body when it is
/// a form. A request whose parameters cannot be read gets a `bad_data` answer.
struct Params(Form);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Response> {
        params::read(req, state)
            .await
            .map(Params)
            .map_err(|e| render::error(&e))
    }
}

/// Runs `f` on a blocking thread under the query time limit and answers in Prometheus's
/// envelope.
async fn answer<F>(s: &ApiState, route: &'static str, f: F) -> Response
where
    F: FnOnce(&StoreSource, Limits) -> Result<String, PromError> + Send + 'static,
{
    let reads = s.metric_reads.clone();
    let limits = Limits {
        timeout: s.timeout,
        ..Limits::default()
    };
    let out = run_blocking(s, route, move || {
        let src = StoreSource::new(reads);
        Ok(f(&src, limits))
    })
    .await;
    match out {
        Ok(Ok(data)) => render::success(&data, &[]),
        Ok(Err(e)) => render::error(&e),
        Err(api) => {
            let (status, kind, message) = api.parts();
            let kind = match (status, kind) {
                (StatusCode::SERVICE_UNAVAILABLE, "timeout") => ErrorType::Timeout,
                (StatusCode::SERVICE_UNAVAILABLE, _) => ErrorType::Unavailable,
                (StatusCode::BAD_REQUEST, _) => ErrorType::BadData,
                (StatusCode::NOT_FOUND, _) => ErrorType::NotFound,
                _ => ErrorType::Internal,
            };
            render::error(&PromError {
                kind,
                message: message.to_string(),
            })
        }
    }
}

fn engine(src: &StoreSource, limits: Limits) -> Engine {
    Engine::new(Arc::new(StoreSource::new(src.reads())), limits)
}

async fn query(State(s): State<ApiState>, Params(f): Params) -> Response {
    answer(&s, "prom_query", move |src, limits| {
        let q = f.get("query").ok_or_else(|| {
            PromError::bad_data("invalid parameter \"query\": the query is missing")
        })?;
        let t = f.time("time", now_ms())?;
        f.duration("timeout")?;
        let v = engine(src, limits).instant(q, t)?;
        Ok(render::value(&v))
    })
    .await
}

async fn query_range(State(s): State<ApiState>, Params(f): Params) -> Response {
    answer(&s, "prom_query_range", move |src, limits| {
        let need = |name: &str| {
            f.get(name).ok_or_else(|| {
                PromError::bad_data(format!("invalid parameter \"{name}\": it is missing"))
            })
        };
        let start = params::parse_time(need("start")?)
            .map_err(|e| PromError::bad_data(format!("invalid parameter \"start\": {e}")))?;
        let end = params::parse_time(need("end")?)
            .map_err(|e| PromError::bad_data(format!("invalid parameter \"end\": {e}")))?;
        if end < start {
            return Err(PromError::bad_data(
                "invalid parameter \"end\": end timestamp must not be before start time",
            ));
        }
        need("step")?;
        let step = f.duration("step")?.unwrap_or(0);
        if step <= 0 {
            return Err(PromError::bad_data(
                "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if (end - start) / step > 11_000 {
            return Err(PromError::bad_data(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        f.duration("timeout")?;
        let q = need("query")?;
        let v = engine(src, limits).range(q, start, end, step)?;
        if let QueryValue::Matrix(_) = v {
            Ok(render::value(&v))
        } else {
            Err(PromError::internal("a range query gave no matrix"))
        }
    })
    .await
}

/// The `match[]` selectors of a request, each a list of matchers.
fn selectors(f: &Form) -> Result<Vec<Vec<skein_store::tsdb::Matcher>>, PromError> {
    f.all("match[]").into_iter().map(params::selector).collect()
}

/// The label sets picked by every `match[]`, merged.
fn matched(src: &StoreSource, f: &Form) -> Result<Option<Vec<Labels>>, PromError> {
    let sels = selectors(f)?;
    if sels.is_empty() {
        return Ok(None);
    }
    let start = f.time("start", MIN_TIME)?;
    let end = f.time("end", MAX_TIME)?;
    let mut all = BTreeSet::new();
    for m in sels {
        all.extend(src.series(&m, start, end, MAX_SERIES)?);
        if all.len() > MAX_SERIES {
            return Err(PromError::execution(format!(
                "more than {MAX_SERIES} series match; narrow the match[] selectors"
            )));
        }
    }
    Ok(Some(all.into_iter().collect()))
}

async fn series(State(s): State<ApiState>, Params(f): Params) -> Response {
    answer(&s, "prom_series", move |src, _| {
        let Some(found) = matched(src, &f)? else {
            return Err(PromError::bad_data("no match[] parameter provided"));
        };
        let mut out = String::from("[");
        for (i, l) in found.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            render::labels(&mut out, l);
        }
        out.push(']');
        Ok(out)
    })
    .await
}

async fn labels(State(s): State<ApiState>, Params(f): Params) -> Response {
    answer(&s, "prom_labels", move |src, _| {
        let names: BTreeSet<String> = match matched(src, &f)? {
            Some(found) => found
                .iter()
                .flat_map(|l| l.iter().map(|(k, _)| k.to_string()))
                .collect(),
            None => {
                let mut n: BTreeSet<String> = src.reads().label_names(None).into_iter().collect();
                if src.names().iter().next().is_some() {
                    n.insert("__name__".into());
                }
                n
            }
        };
        Ok(render::json_string_list(
            &names.into_iter().collect::<Vec<_>>(),
        ))
    })
    .await
}

async fn label_values(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    Params(f): Params,
) -> Response {
    if !is_label_name(&name) {
        return render::error(&PromError::bad_data(format!(
            "invalid label name: {name:?}"
        )));
    }
    answer(&s, "prom_label_values", move |src, _| {
        let values: BTreeSet<String> = match matched(src, &f)? {
            Some(found) => found
                .iter()
                .filter_map(|l| l.get(&name).map(str::to_string))
                .collect(),
            None if name == "__name__" => src.names().iter().map(|(n, _)| n.to_string()).collect(),
            None => src.reads().label_values(&name, None).into_iter().collect(),
        };
        Ok(render::json_string_list(
            &values.into_iter().collect::<Vec<_>>(),
        ))
    })
    .await
}

async fn metadata(State(s): State<ApiState>, Params(f): Params) -> Response {
    answer(&s, "prom_metadata", move |src, _| {
        let limit = match f.get("limit") {
            None => usize::MAX,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n > 0 => n as usize,
                Ok(_) => usize::MAX,
                Err(_) => {
                    return Err(PromError::bad_data(format!(
                        "invalid parameter \"limit\": {v:?} is not a number"
                    )));
                }
            },
        };
        let want = f.get("metric");
        let map: NameMap = src.names();
        let mut out = serde_json::Map::new();
        for (name, fam) in map.families() {
            if out.len() >= limit {
                break;
            }
            if want.is_some_and(|w| w != name) {
                continue;
            }
            out.insert(
                name.to_string(),
                serde_json::json!([{ "type": fam.kind, "help": "", "unit": fam.unit }]),
            );
        }
        Ok(serde_json::Value::Object(out).to_string())
    })
    .await
}

async fn buildinfo() -> Response {
    render::success(
        &serde_json::json!({
            "version": PROMETHEUS_VERSION,
            "revision": format!("skein-{}", env!("CARGO_PKG_VERSION")),
            "branch": "skein",
            "buildUser": "skein",
            "buildDate": "",
            "goVersion": "none (Skein is written in Rust)",
        })
        .to_string(),
        &[],
    )
}

async fn exemplars() -> Response {
    render::success("[]", &[])
}

#[cfg(test)]
mod tests;
