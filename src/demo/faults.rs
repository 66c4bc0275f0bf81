//! Faults: payment slows down, coupon fails in bursts, delivery stops and comes back. On a
//! repeating schedule, and on demand through the demo's control endpoint
//! (`skein demo fault <kind> --for 30s`, which finds it in `<data>/demo.json`).

use super::events::Events;
use super::procs::{Proc, STOP_TIMEOUT};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use skein_demo::{Addresses, Fault, ServiceName};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A fault the demo can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Payment answers 1.5 s late.
    PaymentSlow,
    /// Coupon fails half of its calls.
    CouponFailing,
    /// The delivery process stops (events wait in order's outbox until it is back).
    DeliveryDown,
    /// End every fault.
    Clear,
}

impl FaultKind {
    /// The name `skein demo fault` takes.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FaultKind::PaymentSlow => "payment-slow",
            FaultKind::CouponFailing => "coupon-failing",
            FaultKind::DeliveryDown => "delivery-down",
            FaultKind::Clear => "clear",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            FaultKind::PaymentSlow => "payment slows down (+1.5 s per payment)",
            FaultKind::CouponFailing => "coupon fails in bursts (50 % of calls)",
            FaultKind::DeliveryDown => "delivery stops",
            FaultKind::Clear => "every fault ends",
        }
    }
}

/// The schedule's cycle: (seconds into the cycle, fault, on or off). Timed with the rules of
/// `alerts/demo.toml` so that a 60 s run sees PaymentSlow fire and resolve, and a 2-minute run
/// every fault's alert.
const CYCLE: Duration = Duration::from_secs(120);
const SCHEDULE: &[(u64, FaultKind, bool)] = &[
    (5, FaultKind::PaymentSlow, true),
    (20, FaultKind::PaymentSlow, false),
    (30, FaultKind::CouponFailing, true),
    (50, FaultKind::CouponFailing, false),
    (60, FaultKind::DeliveryDown, true),
    (105, FaultKind::DeliveryDown, false),
];

/// Longest `--for` accepted.
const MAX_FOR: Duration = Duration::from_secs(3600);

/// Starts the delivery process again (the demo knows how).
pub(crate) type Restart = Box<dyn Fn() -> Result<Proc, String> + Send + Sync>;

/// Applies faults to the running services.
pub(crate) struct Controller {
    client: reqwest::Client,
    addresses: Addresses,
    events: Arc<Events>,
    /// The delivery process, None while it is stopped.
    delivery: Mutex<Option<Proc>>,
    restart: Restart,
    active: Mutex<Vec<FaultKind>>,
}

impl Controller {
    /// A controller over the services at `addresses`; `delivery` is its running process.
    pub(crate) fn new(
        addresses: Addresses,
        events: Arc<Events>,
        delivery: Proc,
        restart: Restart,
    ) -> Controller {
        Controller {
            client: reqwest::Client::new(),
            addresses,
            events,
            delivery: Mutex::new(Some(delivery)),
            restart,
            active: Mutex::new(Vec::new()),
        }
    }

    /// The faults in force now.
    pub(crate) fn active(&self) -> Vec<FaultKind> {
        self.active.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Turns a fault on or off. Blocking (it may stop or start a process): call from a
    /// blocking thread.
    pub(crate) fn set(&self, kind: FaultKind, on: bool) -> Result<(), String> {
        if kind == FaultKind::Clear {
            for k in [
                FaultKind::PaymentSlow,
                FaultKind::CouponFailing,
                FaultKind::DeliveryDown,
            ] {
                self.set(k, false)?;
            }
            return Ok(());
        }
        let was_on = self.active().contains(&kind);
        match kind {
            FaultKind::PaymentSlow => {
                let f = Fault {
                    delay_ms: if on { 1500 } else { 0 },
                    error_rate: 0.0,
                };
                self.send(ServiceName::Payment, f)?;
            }
            FaultKind::CouponFailing => {
                let f = Fault {
                    delay_ms: 0,
                    error_rate: if on { 0.5 } else { 0.0 },
                };
                self.send(ServiceName::Coupon, f)?;
            }
            FaultKind::DeliveryDown => self.delivery(on)?,
            FaultKind::Clear => {}
        }
        if let Ok(mut a) = self.active.lock() {
            a.retain(|k| *k != kind);
            if on {
                a.push(kind);
            }
        }
        if was_on != on {
            let verb = if on { "on" } else { "off" };
            self.events
                .say(&format!("fault {verb}: {}", kind.describe()));
        }
        Ok(())
    }

    fn send(&self, s: ServiceName, f: Fault) -> Result<(), String> {
        let handle = tokio::runtime::Handle::current();
        handle
            .block_on(skein_demo::set_fault(&self.client, self.addresses.of(s), f))
            .map_err(|e| format!("cannot set the fault on {}: {e}", s.as_str()))
    }

    fn delivery(&self, down: bool) -> Result<(), String> {
        let mut slot = self
            .delivery
            .lock()
            .map_err(|_| "the delivery process slot is poisoned".to_string())?;
        if down {
            if let Some(mut p) = slot.take() {
                p.stop(STOP_TIMEOUT);
            }
        } else if slot.as_mut().is_none_or(|p| !p.running()) {
            *slot = Some((self.restart)()?);
        }
        Ok(())
    }

    /// Stops the delivery process for good (the demo is ending).
    pub(crate) fn stop_delivery(&self) -> String {
        match self.delivery.lock().ok().and_then(|mut s| s.take()) {
            Some(mut p) => p.stop(STOP_TIMEOUT),
            None => "already stopped".into(),
        }
    }
}

/// Runs the schedule until the task is dropped.
pub(crate) async fn schedule(c: Arc<Controller>) {
    let start = tokio::time::Instant::now();
    let mut cycle_start = start;
    loop {
        for &(at, kind, on) in SCHEDULE {
            tokio::time::sleep_until(cycle_start + Duration::from_secs(at)).await;
            let c2 = c.clone();
            let r = tokio::task::spawn_blocking(move || c2.set(kind, on)).await;
            if let Ok(Err(e)) = r {
                c.events.say(&format!("fault schedule: {e}"));
            }
        }
        cycle_start += CYCLE;
    }
}

#[derive(Serialize, Deserialize)]
struct FaultRequest {
    fault: FaultKind,
    /// Seconds until the fault ends (0: until cleared).
    for_s: u64,
}

/// The control endpoint: `POST /fault` `{fault, for_s}`, `GET /faults`.
pub(crate) fn router(c: Arc<Controller>) -> Router {
    Router::new()
        .route("/fault", post(inject))
        .route("/faults", get(list))
        .with_state(c)
}

async fn list(State(c): State<Arc<Controller>>) -> impl IntoResponse {
    Json(serde_json::json!({ "active": c.active() }))
}

async fn inject(
    State(c): State<Arc<Controller>>,
    body: Result<Json<FaultRequest>, axum::extract::rejection::JsonRejection>,
) -> impl IntoResponse {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => {
            let error = format!("bad fault request: {e}");
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": error })),
            );
        }
    };
    if req.for_s > MAX_FOR.as_secs() {
        let error = format!("for_s {} is longer than {} s", req.for_s, MAX_FOR.as_secs());
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": error })),
        );
    }
    let c2 = c.clone();
    let on = req.fault != FaultKind::Clear;
    let applied = tokio::task::spawn_blocking(move || c2.set(req.fault, on)).await;
    match applied {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return (
                StatusCode::BAD_GATEWAY,
                Json(serde_json::json!({ "error": e })),
            );
        }
        Err(e) => {
            let error = format!("the fault task failed: {e}");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({ "error": error })),
            );
        }
    }
    if on && req.for_s > 0 {
        let kind = req.fault;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(req.for_s)).await;
            let _ = tokio::task::spawn_blocking(move || c.set(kind, false)).await;
        });
    }
    (
        StatusCode::OK,
        Json(serde_json::json!({ "fault": req.fault, "for_s": req.for_s })),
    )
}

/// `skein demo fault`.
#[derive(Args)]
pub(crate) struct FaultArgs {
    /// The fault.
    #[arg(value_enum)]
    fault: FaultKind,
    /// How long it lasts (e.g. 30s, 2m; 0 until `skein demo fault clear`).
    #[arg(long = "for", default_value = "60s")]
    for_: String,
    /// The running demo's data directory.
    #[arg(long, default_value = super::DEFAULT_DATA)]
    data: PathBuf,
}

/// Runs `skein demo fault`.
pub(crate) async fn command(args: FaultArgs) -> ExitCode {
    match inject_now(&args).await {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("skein demo fault: {e}");
            ExitCode::from(crate::cli::EXIT_ERROR)
        }
    }
}

async fn inject_now(args: &FaultArgs) -> Result<String, String> {
    let for_ = skein_model::time::parse_duration(&args.for_)
        .map_err(|e| format!("--for {}: {e}", args.for_))?;
    if for_ > MAX_FOR {
        return Err(format!("--for {}: at most 1h", args.for_));
    }
    let state_path = args.data.join(super::setup::STATE_FILE);
    let state = std::fs::read_to_string(&state_path).map_err(|e| {
        format!(
            "no demo is running on {} (cannot read {}: {e}); start one with `skein demo`",
            args.data.display(),
            state_path.display()
        )
    })?;
    let state: serde_json::Value = serde_json::from_str(&state)
        .map_err(|e| format!("{} is not a demo's state: {e}", state_path.display()))?;
    let control = state
        .get("control")
        .and_then(|v| v.as_str())
        .ok_or_else(|| format!("{} names no control address", state_path.display()))?;
    let body = FaultRequest {
        fault: args.fault,
        for_s: for_.as_secs(),
    };
    let r = reqwest::Client::new()
        .post(format!("http://{control}/fault"))
        .timeout(Duration::from_secs(30))
        .json(&body)
        .send()
        .await
        .map_err(|e| {
            format!(
                "no demo answers at {control} (from {}): {e}",
                state_path.display()
            )
        })?;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("the demo refused: {status} {text}"));
    }
    Ok(match (args.fault, body.for_s) {
        (FaultKind::Clear, _) => "every fault cleared".to_string(),
        (k, 0) => format!("{} until `skein demo fault clear`", k.describe()),
        (k, s) => format!("{} for {s} s", k.describe()),
    })
}
