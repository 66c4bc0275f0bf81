//! Runs all five services in this process on 127.0.0.1 port 0, each under its own shutdown.

use crate::{Addresses, DemoError, ServiceConfig, ServiceName, server};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Longest wait for something that happens in the background (an event reaching delivery).
/// Generous on purpose: it only bounds a failing run, it measures nothing.
pub(super) const PATIENCE: Duration = Duration::from_secs(30);

/// A running service: its stop switch and its task.
type Running = (watch::Sender<bool>, JoinHandle<Result<(), DemoError>>);

pub(super) struct System {
    pub(super) addresses: Addresses,
    pub(super) client: reqwest::Client,
    logs: PathBuf,
    otlp: String,
    running: HashMap<ServiceName, Running>,
}

impl System {
    /// Starts the five services, logging into `logs` and exporting spans to `otlp`.
    pub(super) async fn start(logs: &Path, otlp: &str) -> System {
        let mut listeners = Vec::new();
        for _ in ServiceName::ALL {
            listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let at = |i: usize| listeners[i].local_addr().unwrap();
        let addresses = Addresses {
            gateway: at(0),
            order: at(1),
            coupon: at(2),
            payment: at(3),
            delivery: at(4),
        };
        let mut sys = System {
            addresses,
            client: reqwest::Client::new(),
            logs: logs.to_path_buf(),
            otlp: otlp.to_owned(),
            running: HashMap::new(),
        };
        for (name, listener) in ServiceName::ALL.into_iter().zip(listeners) {
            sys.launch(name, listener).await;
        }
        sys
    }

    /// Runs `name` on `listener`; returns once it is ready.
    async fn launch(&mut self, name: ServiceName, listener: tokio::net::TcpListener) {
        let cfg = ServiceConfig {
            name,
            addresses: self.addresses.clone(),
            otlp_endpoint: self.otlp.clone(),
            log_file: self.logs.join(format!("{name}.log")),
            host_name: "test-host".into(),
        };
        let (stop, mut stopped) = watch::channel(false);
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(server::serve(cfg, listener, shutdown, move |a| {
            let _ = ready_tx.send(a);
        }));
        assert_eq!(ready_rx.await.unwrap(), self.addresses.of(name));
        self.running.insert(name, (stop, task));
    }

    /// Stops one service and waits until it has shut down cleanly.
    pub(super) async fn stop_one(&mut self, name: ServiceName) {
        let (stop, task) = self.running.remove(&name).unwrap();
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
    }

    /// Starts a stopped service again on its old address.
    pub(super) async fn restart(&mut self, name: ServiceName) {
        let listener = tokio::net::TcpListener::bind(self.addresses.of(name))
            .await
            .unwrap();
        self.launch(name, listener).await;
    }

    /// Stops every service; each must shut down cleanly.
    pub(super) async fn stop(mut self) {
        for name in ServiceName::ALL {
            self.stop_one(name).await;
        }
    }

    pub(super) fn url(&self, s: ServiceName, path: &str) -> String {
        format!("http://{}{path}", self.addresses.of(s))
    }

    /// Places an order through the gateway; gives status, request ID header and body.
    pub(super) async fn order(&self, rid: &str, coupon: Option<&str>) -> (u16, String, Value) {
        let body = json!({
            "customer_id": "cust-test",
            "items": [{"sku": "pizza", "qty": 2, "price_cents": 1200}],
            "coupon": coupon,
        });
        let resp = self
            .client
            .post(self.url(ServiceName::Gateway, "/orders"))
            .header("x-request-id", rid)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let header = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        (status, header, resp.json().await.unwrap())
    }

    /// Lines of one service's log file.
    pub(super) fn log(&self, s: ServiceName) -> Vec<Value> {
        std::fs::read_to_string(self.logs.join(format!("{s}.log")))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits until delivery shows the order with `status`.
    pub(super) async fn wait_for_delivery(&self, order_id: &str, status: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let resp = self
                .client
                .get(self.url(ServiceName::Delivery, &format!("/deliveries/{order_id}")))
                .send()
                .await;
            if let Ok(resp) = resp
                && resp.status() == 200
            {
                let d: Value = resp.json().await.unwrap();
                if d["status"] == status {
                    return d;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "delivery never showed {order_id} as {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `service` has logged a line for which `pred` holds.
    pub(super) async fn wait_for_log(&self, service: ServiceName, pred: impl Fn(&Value) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !self.log(service).iter().any(&pred) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{service} never logged the line"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Places an order, again while the payment service declines it at random (3 %).
pub(super) async fn order_until_not_declined(
    sys: &System,
    tag: &str,
    coupon: &str,
) -> (String, Value) {
    for attempt in 0..10 {
        let rid = format!("test-{tag}-{attempt}");
        let (status, header, body) = sys.order(&rid, Some(coupon)).await;
        assert_eq!(header, rid, "the request ID is passed back");
        if status == 402 {
            continue;
        }
        assert_eq!(status, 201, "{body}");
        return (rid, body);
    }
    panic!("ten orders in a row were declined");
}
