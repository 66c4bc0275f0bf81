//! Tests of binary operators: arithmetic and comparisons between scalars and vectors, `bool`,
//! vector matching with `on` / `ignoring` / `group_left` / `group_right`, set operators, the
//! errors of ambiguous matching, unary minus.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::tests_support::*;
use crate::promql::ErrorType;
use crate::promql::source::RawSeries;

fn data() -> Vec<RawSeries> {
    vec![
        series("req", &[("job", "a"), ("code", "200")], 0, 10, &[10.0]),
        series("req", &[("job", "a"), ("code", "500")], 0, 10, &[2.0]),
        series("req", &[("job", "b"), ("code", "200")], 0, 10, &[30.0]),
        series("limit", &[("job", "a")], 0, 10, &[5.0]),
        series("limit", &[("job", "b")], 0, 10, &[50.0]),
        series("info", &[("job", "a"), ("version", "1.0")], 0, 10, &[1.0]),
    ]
}

#[test]
fn promql_scalar_arithmetic_and_comparison() {
    let e = engine(vec![]);
    assert_eq!(scalar(&e, "7 % 3", 0.0), 1.0);
    assert_eq!(scalar(&e, "-7 % 3", 0.0), -1.0);
    assert_eq!(scalar(&e, "2 ^ 10", 0.0), 1024.0);
    assert_eq!(scalar(&e, "1 / 0", 0.0), f64::INFINITY);
    assert!(scalar(&e, "0 / 0", 0.0).is_nan());
    assert_eq!(scalar(&e, "1 atan2 1", 0.0), std::f64::consts::FRAC_PI_4);
    assert_eq!(scalar(&e, "1 < bool 2", 0.0), 1.0);
    assert_eq!(scalar(&e, "2 == bool 3", 0.0), 0.0);
    // Comparing scalars needs bool.
    assert_eq!(error(&e, "1 < 2", 0.0).kind, ErrorType::BadData);
}

#[test]
fn promql_vector_scalar() {
    let e = engine(data());
    // Arithmetic drops the name.
    assert_vector(
        &vector(&e, "limit * 2", 0.0),
        &[("{job=\"a\"}", 10.0), ("{job=\"b\"}", 100.0)],
    );
    assert_vector(
        &vector(&e, "100 - limit", 0.0),
        &[("{job=\"a\"}", 95.0), ("{job=\"b\"}", 50.0)],
    );
    // A comparison filters and keeps the name and the vector's value, whichever side.
    assert_vector(
        &vector(&e, "limit > 10", 0.0),
        &[("{__name__=\"limit\", job=\"b\"}", 50.0)],
    );
    assert_vector(
        &vector(&e, "10 < limit", 0.0),
        &[("{__name__=\"limit\", job=\"b\"}", 50.0)],
    );
    // With bool: 0/1 for every element, name dropped.
    assert_vector(
        &vector(&e, "limit > bool 10", 0.0),
        &[("{job=\"a\"}", 0.0), ("{job=\"b\"}", 1.0)],
    );
    // atan2 keeps the name.
    assert_vector(
        &vector(&e, "limit{job=\"a\"} atan2 5", 0.0),
        &[(
            "{__name__=\"limit\", job=\"a\"}",
            std::f64::consts::FRAC_PI_4,
        )],
    );
    // Unary minus drops the name.
    assert_vector(
        &vector(&e, "-limit", 0.0),
        &[("{job=\"a\"}", -5.0), ("{job=\"b\"}", -50.0)],
    );
}

#[test]
fn promql_one_to_one_matching() {
    let e = engine(data());
    // Same labels apart from the name: limit / limit.
    assert_vector(
        &vector(&e, "limit / limit", 0.0),
        &[("{job=\"a\"}", 1.0), ("{job=\"b\"}", 1.0)],
    );
    // on(job): the result keeps only the `on` labels.
    assert_vector(
        &vector(&e, "req{code=\"200\"} / on(job) limit", 0.0),
        &[("{job=\"a\"}", 2.0), ("{job=\"b\"}", 0.6)],
    );
    // ignoring(code): the result drops `code`.
    assert_vector(
        &vector(&e, "req{code=\"200\"} - ignoring(code) limit", 0.0),
        &[("{job=\"a\"}", 5.0), ("{job=\"b\"}", -20.0)],
    );
    // Comparison keeps the left side's labels (name included) and value.
    assert_vector(
        &vector(&e, "req{code=\"200\"} > ignoring(code) limit", 0.0),
        &[("{__name__=\"req\", job=\"a\"}", 10.0)],
    );
    assert_vector(
        &vector(&e, "req{code=\"200\"} > bool ignoring(code) limit", 0.0),
        &[("{job=\"a\"}", 1.0), ("{job=\"b\"}", 0.0)],
    );
    // Unmatched elements are dropped.
    assert_vector(&vector(&e, "req + limit", 0.0), &[]);
}

#[test]
fn promql_group_left_and_right() {
    let e = engine(data());
    // Many req per job, one limit per job.
    assert_vector(
        &vector(&e, "req / on(job) group_left limit", 0.0),
        &[
            ("{code=\"200\", job=\"a\"}", 2.0),
            ("{code=\"200\", job=\"b\"}", 0.6),
            ("{code=\"500\", job=\"a\"}", 0.4),
        ],
    );
    // group_right: the right side is the "many" side; values stay in operand order.
    assert_vector(
        &vector(&e, "limit / on(job) group_right req", 0.0),
        &[
            ("{code=\"200\", job=\"a\"}", 0.5),
            ("{code=\"200\", job=\"b\"}", 50.0 / 30.0),
            ("{code=\"500\", job=\"a\"}", 2.5),
        ],
    );
    // Extra labels come from the "one" side; `*` drops the name.
    assert_vector(
        &vector(&e, "req * on(job) group_left(version) info", 0.0),
        &[
            ("{code=\"200\", job=\"a\", version=\"1.0\"}", 10.0),
            ("{code=\"500\", job=\"a\", version=\"1.0\"}", 2.0),
        ],
    );
}

#[test]
fn promql_matching_errors() {
    let e = engine(data());
    // Two req series per job on the "one" side.
    let err = error(&e, "limit + on(job) req", 0.0);
    assert_eq!(err.kind, ErrorType::Execution);
    assert_eq!(
        err.message,
        "found duplicate series for the match group {job=\"a\"} on the right hand-side of the operation: [{__name__=\"req\", code=\"500\", job=\"a\"}, {__name__=\"req\", code=\"200\", job=\"a\"}];many-to-many matching not allowed: matching labels must be unique on one side"
    );
    let err = error(&e, "req / on(job) group_right limit", 0.0);
    assert!(
        err.message.contains("on the left hand-side"),
        "{}",
        err.message
    );
    // One-to-one with two matches on the left.
    let err = error(&e, "req + on(job) limit", 0.0);
    assert_eq!(
        err.message,
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    );
    // group_left where two "many" series differ only by name: the same result labels twice.
    let mut d = data();
    d.push(series(
        "req2",
        &[("job", "a"), ("code", "200")],
        0,
        10,
        &[1.0],
    ));
    let e2 = engine(d);
    let err = error(
        &e2,
        "{__name__=~\"req|req2\", code=\"200\"} / on(job) group_left limit",
        0.0,
    );
    assert_eq!(
        err.message,
        "multiple matches for labels: grouping labels must ensure unique matches"
    );
    // A filtered-out pair does not count as a match: of job a only code 200 passes (10 > 5),
    // and `on` keeps only the job label.
    assert_vector(
        &vector(&e, "req > on(job) limit", 0.0),
        &[("{job=\"a\"}", 10.0)],
    );
}

#[test]
fn promql_set_operators() {
    let e = engine(data());
    assert_vector(
        &vector(&e, "req and on(job) limit > 10", 0.0),
        &[("{__name__=\"req\", code=\"200\", job=\"b\"}", 30.0)],
    );
    assert_vector(
        &vector(&e, "req unless on(job) info", 0.0),
        &[("{__name__=\"req\", code=\"200\", job=\"b\"}", 30.0)],
    );
    // `or` adds right-hand elements whose signature is not on the left.
    assert_vector(
        &vector(&e, "limit or info", 0.0),
        &[
            ("{__name__=\"info\", job=\"a\", version=\"1.0\"}", 1.0),
            ("{__name__=\"limit\", job=\"a\"}", 5.0),
            ("{__name__=\"limit\", job=\"b\"}", 50.0),
        ],
    );
    assert_vector(
        &vector(&e, "limit or on(job) info", 0.0),
        &[
            ("{__name__=\"limit\", job=\"a\"}", 5.0),
            ("{__name__=\"limit\", job=\"b\"}", 50.0),
        ],
    );
    assert_vector(&vector(&e, "nothing or vector(3)", 0.0), &[("{}", 3.0)]);
    assert_vector(&vector(&e, "limit and nothing", 0.0), &[]);
    assert_vector(
        &vector(&e, "limit unless nothing", 0.0),
        &[
            ("{__name__=\"limit\", job=\"a\"}", 5.0),
            ("{__name__=\"limit\", job=\"b\"}", 50.0),
        ],
    );
    assert_eq!(error(&e, "limit and 1", 0.0).kind, ErrorType::BadData);
}

#[test]
fn promql_binary_in_range_query_matches_per_step() {
    // a has points at 0 and 60 s only (lookback 30 s); b everywhere.
    let limits = super::Limits {
        lookback_ms: 30_000,
        ..super::Limits::default()
    };
    let e = engine_with(
        vec![
            series("a", &[("k", "1")], 0, 60, &[1.0, 2.0]),
            series("b", &[("k", "1")], 0, 60, &[10.0, 20.0, 30.0]),
        ],
        limits,
    );
    let m = matrix(&e, "a + b", 0, 120, 60);
    assert_eq!(
        m,
        vec![("{k=\"1\"}".to_string(), vec![(0, 11.0), (60, 22.0)])]
    );
    // `or` fills the step where a is missing from b.
    let m = matrix(&e, "a or b", 0, 120, 60);
    assert_eq!(
        m,
        vec![
            (
                "{__name__=\"a\", k=\"1\"}".to_string(),
                vec![(0, 1.0), (60, 2.0)]
            ),
            ("{__name__=\"b\", k=\"1\"}".to_string(), vec![(120, 30.0)]),
        ]
    );
    let m = matrix(&e, "b unless a", 0, 120, 60);
    assert_eq!(
        m,
        vec![("{__name__=\"b\", k=\"1\"}".to_string(), vec![(120, 30.0)])]
    );
    // A scalar that changes per step.
    let m = matrix(&e, "b - time()", 0, 120, 60);
    assert_eq!(
        m,
        vec![(
            "{k=\"1\"}".to_string(),
            vec![(0, 10.0), (60, -40.0), (120, -90.0)]
        )]
    );
}
