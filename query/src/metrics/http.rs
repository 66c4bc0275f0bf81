//! The HTTP routes of metrics, services and dependencies. Each handler does its work on a
//! blocking thread with the query time limit (`crate::api::run_blocking`).

use super::params::{Params, ns_to_ms};
use super::query::RangeQuery;
use super::{deps, query, services};
use crate::QueryError;
use crate::api::{ApiError, ApiState, run_blocking};
use crate::metric_reads::MetricReads;
use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use skein_model::metrics_api::{
    DependenciesResponse, LabelValuesResponse, LabelsResponse, MetricNamesResponse,
    MetricQueryResponse, OperationsResponse, ServicesResponse,
};
use skein_model::time::now_unix_nano;

/// The routes (the caller adds authentication and the state):
///
/// - `GET /api/v1/metrics/query?name=&match=&start=&end=&step=&agg=&by=`
/// - `GET /api/v1/metrics/names`
/// - `GET /api/v1/metrics/labels?name=`
/// - `GET /api/v1/metrics/labels/{label}/values?name=`
/// - `GET /api/v1/services?window=1m`
/// - `GET /api/v1/services/{name}/operations?window=1m`
/// - `GET /api/v1/dependencies?start=&end=`
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/metrics/query", get(metric_query))
        .route("/api/v1/metrics/names", get(metric_names))
        .route("/api/v1/metrics/labels", get(metric_labels))
        .route("/api/v1/metrics/labels/{label}/values", get(label_values))
        .route("/api/v1/services", get(services_list))
        .route("/api/v1/services/{name}/operations", get(operations))
        .route("/api/v1/dependencies", get(dependencies))
}

/// The shape of every handler here: parse the query string, run `f` over the metrics store on
/// a blocking thread under the time limit, answer JSON.
async fn over_tsdb<T, F>(
    s: &ApiState,
    route: &'static str,
    raw: Option<String>,
    f: F,
) -> Result<Json<T>, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&dyn MetricReads, &Params) -> Result<T, QueryError> + Send + 'static,
{
    let tsdb = s.metric_reads.clone();
    let out = run_blocking(s, route, move || {
        let p = Params::parse(raw.as_deref())?;
        f(tsdb.as_ref(), &p)
    })
    .await?;
    Ok(Json(out))
}

async fn metric_query(
    State(s): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<MetricQueryResponse>, ApiError> {
    over_tsdb(&s, "metrics_query", raw, |tsdb, p| {
        query::run(tsdb, &RangeQuery::from_params(p, now_unix_nano())?)
    })
    .await
}

async fn metric_names(State(s): State<ApiState>) -> Result<Json<MetricNamesResponse>, ApiError> {
    over_tsdb(&s, "metrics_names", None, |tsdb, _| Ok(query::names(tsdb))).await
}

async fn metric_labels(
    State(s): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<LabelsResponse>, ApiError> {
    over_tsdb(&s, "metrics_labels", raw, |tsdb, p| {
        query::labels(tsdb, p.get("name"))
    })
    .await
}

async fn label_values(
    State(s): State<ApiState>,
    Path(label): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<LabelValuesResponse>, ApiError> {
    over_tsdb(&s, "metrics_label_values", raw, move |tsdb, p| {
        query::label_values(tsdb, &label, p.get("name"))
    })
    .await
}

fn window(p: &Params) -> Result<i64, QueryError> {
    Ok(p.duration_ms("window")?
        .unwrap_or(services::DEFAULT_WINDOW_MS))
}

async fn services_list(
    State(s): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ServicesResponse>, ApiError> {
    over_tsdb(&s, "services", raw, |tsdb, p| {
        services::services(tsdb, ns_to_ms(now_unix_nano()), window(p)?)
    })
    .await
}

async fn operations(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<OperationsResponse>, ApiError> {
    over_tsdb(&s, "operations", raw, move |tsdb, p| {
        services::operations(tsdb, &name, ns_to_ms(now_unix_nano()), window(p)?)
    })
    .await
}

async fn dependencies(
    State(s): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<DependenciesResponse>, ApiError> {
    over_tsdb(&s, "dependencies", raw, |tsdb, p| {
        let (start, end) = p.range_ms(now_unix_nano(), deps::DEFAULT_RANGE_MS)?;
        deps::run(tsdb, start, end)
    })
    .await
}
