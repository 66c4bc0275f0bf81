//! The HTTP routes of metrics, services and dependencies. Each handler does its work on a
//! blocking thread with the query time limit ([`run_blocking`]).

use super::params::{Params, ns_to_ms};
use super::query::RangeQuery;
use super::{deps, query, services};
use crate::api::{ApiError, ApiState, run_blocking};
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

async fn metric_query(
    State(s): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<MetricQueryResponse>, ApiError> {
    let tsdb = s.tsdb.clone();
    let out = run_blocking(&s, "metrics_query", move || {
        let p = Params::parse(raw.as_deref())?;
        let q = RangeQuery::from_params(&p, now_unix_nano())?;
        query::run(&tsdb, &q)
    })
    .await?;
    Ok(Json(out))
}

async fn metric_names(State(s): State<ApiState>) -> Result<Json<MetricNamesResponse>, ApiError> {
    let tsdb = s.tsdb.clone();
    let out = run_blocking(&s, "metrics_names", move || Ok(query::names(&tsdb))).await?;
    Ok(Json(out))
}

async fn metric_labels(
    State(s): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<LabelsResponse>, ApiError> {
    let tsdb = s.tsdb.clone();
    let out = run_blocking(&s, "metrics_labels", move || {
        let p = Params::parse(raw.as_deref())?;
        query::labels(&tsdb, p.get("name"))
    })
    .await?;
    Ok(Json(out))
}

async fn label_values(
    State(s): State<ApiState>,
    Path(label): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<LabelValuesResponse>, ApiError> {
    let tsdb = s.tsdb.clone();
    let out = run_blocking(&s, "metrics_label_values", move || {
        let p = Params::parse(raw.as_deref())?;
        query::label_values(&tsdb, &label, p.get("name"))
    })
    .await?;
    Ok(Json(out))
}

fn window(p: &Params) -> Result<i64, crate::QueryError> {
    Ok(p.duration_ms("window")?
        .unwrap_or(services::DEFAULT_WINDOW_MS))
}

async fn services_list(
    State(s): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ServicesResponse>, ApiError> {
    let tsdb = s.tsdb.clone();
    let out = run_blocking(&s, "services", move || {
        let p = Params::parse(raw.as_deref())?;
        services::services(&tsdb, ns_to_ms(now_unix_nano()), window(&p)?)
    })
    .await?;
    Ok(Json(out))
}

async fn operations(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<OperationsResponse>, ApiError> {
    let tsdb = s.tsdb.clone();
    let out = run_blocking(&s, "operations", move || {
        let p = Params::parse(raw.as_deref())?;
        services::operations(&tsdb, &name, ns_to_ms(now_unix_nano()), window(&p)?)
    })
    .await?;
    Ok(Json(out))
}

async fn dependencies(
    State(s): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<DependenciesResponse>, ApiError> {
    let tsdb = s.tsdb.clone();
    let out = run_blocking(&s, "dependencies", move || {
        let p = Params::parse(raw.as_deref())?;
        let (start, end) = p.range_ms(now_unix_nano(), deps::DEFAULT_RANGE_MS)?;
        deps::run(&tsdb, start, end)
    })
    .await?;
    Ok(Json(out))
}
