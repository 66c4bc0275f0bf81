//! `skein demo` itself: take the data directory, start everything in order, run the
//! dashboard (or wait, headless), stop everything in order, print the summary.

use super::events::{Events, Sink};
use super::faults::{self, Controller, FaultKind};
use super::fresh::{self, Freshness};
use super::procs::{Proc, STOP_TIMEOUT};
use super::service::ServiceArgs;
use super::setup::{self, DataDir, Ports};
use super::summary;
use super::webhook::{self, Received};
use super::{FaultMode, RunArgs};
use skein_demo::ServiceName;
use skein_demo::load::{LoadConfig, LoadStats};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// How long the collector may take to be ready (it opens its indexes).
const COLLECTOR_READY: Duration = Duration::from_secs(60);
/// How long the agent and each service may take to be ready.
const READY: Duration = Duration::from_secs(30);
/// How long requests in flight (10 s at most each) and freshness probes (30 s at most) may
/// take to finish when the load stops.
const PROBES_DRAIN: Duration = Duration::from_secs(35);
/// Progress line interval, headless.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Everything the demo started, stopped in reverse order.
#[derive(Default)]
struct Stack {
    collector: Option<Proc>,
    /// With --cluster: the other collectors, and the NATS servers.
    nodes: Vec<Proc>,
    nats: Option<super::cluster::NatsServers>,
    agent: Option<Proc>,
    /// gateway, order, coupon, payment (delivery is the fault controller's).
    services: Vec<Proc>,
    controller: Option<Arc<Controller>>,
    /// The schedule, control and webhook servers, progress.
    tasks: Vec<JoinHandle<()>>,
    load: Option<(JoinHandle<()>, tokio::sync::oneshot::Sender<()>)>,
    stats: Option<Arc<LoadStats>>,
    /// Headless: the freshness probes.
    probes: Option<(JoinHandle<()>, tokio::sync::oneshot::Sender<()>)>,
}

impl Stack {
    /// Stops the load generator and waits for its requests in flight, then for the
    /// freshness probes running (each ends within 30 s).
    fn stop_load(&mut self, rt: &Runtime) {
        for (task, stop) in [self.load.take(), self.probes.take()].into_iter().flatten() {
            let _ = stop.send(());
            let _ = rt.block_on(async { tokio::time::timeout(PROBES_DRAIN, task).await });
        }
    }

    /// Stops everything: load, schedule, services (at once), agent, collector, servers.
    fn stop(&mut self, rt: &Runtime, say: &dyn Fn(&str)) {
        self.stop_load(rt);
        for t in self.tasks.drain(..) {
            t.abort();
        }
        for p in &mut self.services {
            p.request_stop();
        }
        if let Some(c) = self.controller.take() {
            say(&format!("delivery: {}", c.stop_delivery()));
        }
        for mut p in self.services.drain(..) {
            let how = p.stop(STOP_TIMEOUT);
            say(&format!("{}: {how}", p.name));
        }
        // The agent ships what the services wrote last before it stops.
        for mut p in [self.agent.take(), self.collector.take()]
            .into_iter()
            .flatten()
            .chain(self.nodes.drain(..))
        {
            let how = p.stop(STOP_TIMEOUT);
            say(&format!("{}: {how}", p.name));
        }
        if let Some(mut n) = self.nats.take() {
            n.stop();
            say("nats: stopped");
        }
    }
}

/// What `start` learned.
struct Started {
    api: SocketAddr,
    gateway: SocketAddr,
    stats: Arc<LoadStats>,
    received: Arc<Received>,
    freshness: Arc<Freshness>,
}

/// Runs the demo.
pub(crate) fn run(args: RunArgs, rt: &Runtime) -> ExitCode {
    let bad = |msg: String| {
        eprintln!("skein demo: {msg}");
        ExitCode::from(crate::cli::EXIT_ERROR)
    };
    if !(0.1..=500.0).contains(&args.rate) {
        return bad(format!(
            "--rate {}: use 0.1 to 500 requests per second",
            args.rate
        ));
    }
    let duration = match args
        .duration
        .as_deref()
        .map(skein_model::time::parse_duration)
    {
        None => None,
        Some(Ok(d)) if d >= Duration::from_secs(1) => Some(d),
        Some(Ok(_)) => return bad("--duration: at least 1s".into()),
        Some(Err(e)) => return bad(format!("--duration: {e}")),
    };
    if !args.headless && !std::io::stdout().is_terminal() {
        return bad(
            "standard output is not a terminal, so the dashboard cannot open; \
             run `skein demo --headless` (with --duration to stop on its own)"
                .into(),
        );
    }
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return bad(format!("cannot find the skein binary itself: {e}")),
    };
    let dir = match DataDir::take(&args.data) {
        Ok(d) => d,
        Err(e) => return bad(e),
    };
    let to_stderr = args.headless && args.json;
    // A closed pipe (`skein demo --headless | head`) must not stop the demo half-way: write
    // errors are ignored.
    let say = move |text: &str| {
        if to_stderr {
            let _ = writeln!(std::io::stderr(), "{text}");
        } else {
            let _ = writeln!(std::io::stdout(), "{text}");
        }
    };
    let file = match std::fs::File::create(dir.join(setup::EVENTS_FILE)) {
        Ok(f) => f,
        Err(e) => {
            let path = dir.join(setup::EVENTS_FILE);
            return bad(format!("cannot write {}: {e}", path.display()));
        }
    };
    let events = Arc::new(if !args.headless {
        Events::new(Sink::File(std::sync::Mutex::new(file)), None)
    } else if to_stderr {
        Events::new(Sink::Stderr, Some(file))
    } else {
        Events::new(Sink::Stdout, Some(file))
    });
    let mut stack = Stack::default();
    let started = match start(&args, &dir, &exe, rt, &events, &mut stack, &say) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("skein demo: {e}");
            stack.stop(rt, &say);
            return ExitCode::FAILURE;
        }
    };
    let api_url = format!("http://{}", started.api);
    say(&format!(
        "\nSkein demo running. Data in {}.\n  query API  {api_url}   (skein trace <request-id> --api {api_url})\n  gateway    http://{}/orders\n  faults     skein demo fault payment-slow|coupon-failing|delivery-down|clear --data {}\n",
        dir.path.display(),
        started.gateway,
        dir.path.display(),
    ));
    let code = if args.headless {
        let why = wait(rt, &mut stack, &events, duration);
        events.say(&format!("stopping the load: {why}"));
        stack.stop_load(rt);
        // Faults end, so every request's story can finish (delivery's backlog drains).
        if let Some(c) = stack.controller.clone() {
            let cleared = rt.block_on(async {
                tokio::task::spawn_blocking(move || c.set(FaultKind::Clear, false)).await
            });
            if let Ok(Err(e)) = cleared {
                events.say(&format!("cannot clear the faults: {e}"));
            }
        }
        events.say("checking every request's story in the collector ...");
        let figures = rt.block_on(summary::collect(
            &api_url,
            &started.stats,
            &started.received,
            events.elapsed_s(),
            args.rate,
            started.freshness.summary(),
        ));
        say("stopping ...");
        stack.stop(rt, &say);
        match figures {
            Ok(f) => {
                if args.json {
                    let json = serde_json::to_string_pretty(&f).unwrap_or_default();
                    let _ = writeln!(std::io::stdout(), "{json}");
                } else {
                    let _ = writeln!(std::io::stdout(), "{}", f.render());
                }
                if f.consistent() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("skein demo: cannot make the summary: {e}");
                ExitCode::FAILURE
            }
        }
    } else {
        let opts = skein_tui::Options {
            api: api_url.clone(),
            token: None,
            // The demo's collector is plain HTTP on loopback.
            tls: skein_client::ClientTls::default(),
            refresh: Duration::from_millis(1500),
            dashboard: None,
        };
        let shown = skein_tui::run(opts);
        say("stopping ...");
        stack.stop(rt, &say);
        match shown {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("skein demo: the dashboard failed: {e}");
                ExitCode::FAILURE
            }
        }
    };
    // Nothing answers at its addresses any more: `skein demo fault` says no demo runs.
    let _ = std::fs::remove_file(dir.join(setup::STATE_FILE));
    say(&format!("stopped; data kept in {}", dir.path.display()));
    code
}

/// Headless: waits for the duration, Ctrl-C or SIGTERM, or the collector's end; a progress
/// line every 10 s. Returns why it stopped.
fn wait(rt: &Runtime, stack: &mut Stack, events: &Events, duration: Option<Duration>) -> String {
    rt.block_on(async {
        let until = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(until);
        let signals = crate::shutdown::signals();
        tokio::pin!(signals);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = &mut until => return "the duration is over".to_string(),
                _ = &mut signals => return "interrupted".to_string(),
                _ = tick.tick() => {
                    for p in [stack.collector.as_mut(), stack.agent.as_mut()].into_iter().flatten() {
                        if !p.running() {
                            return format!("the {} stopped on its own (see its .err file under logs/)", p.name);
                        }
                    }
                    let faults: Vec<&str> = stack
                        .controller
                        .as_ref()
                        .map(|c| c.active())
                        .unwrap_or_default()
                        .iter()
                        .map(|k| k.name())
                        .collect();
                    let faults = if faults.is_empty() { "none".to_string() } else { faults.join(", ") };
                    if let Some(n) = stack.stats.as_ref().map(|s| s.snapshot()) {
                        events.say(&format!(
                            "sent {} (2xx {}, 4xx {}, 5xx or no answer {}) · faults: {faults}",
                            n.sent, n.ok, n.rejected, n.failed
                        ));
                    }
                }
            }
        }
    })
}

/// Starts everything in order: webhook receiver, collector, agent, the five services
/// (callees first), the fault controller and its endpoint, the load. Each step waits for the
/// one before to be ready.
fn start(
    args: &RunArgs,
    dir: &DataDir,
    exe: &Path,
    rt: &Runtime,
    events: &Arc<Events>,
    stack: &mut Stack,
    say: &dyn Fn(&str),
) -> Result<Started, String> {
    let ports = Ports::pick()?;
    for n in &ports.notes {
        say(n);
    }
    let logs = dir.join("logs");
    let rules = setup::write_rules(dir)?;
    let cluster = match args.cluster {
        Some(n) => {
            let n = usize::from(n);
            let bin = super::cluster::find_nats()?;
            say(&format!(
                "starting {n} NATS server(s) with JetStream ({}) ...",
                bin.display()
            ));
            let nats = super::cluster::NatsServers::start(&bin, n, &dir.path, &logs)?;
            let urls = nats.urls.clone();
            stack.nats = Some(nats);
            Some((n, urls))
        }
        None => None,
    };
    let collector_cfg = match &cluster {
        None => setup::write_collector_config(dir, &ports, &rules)?,
        Some((n, urls)) => setup::write_node_config(
            dir,
            "collector",
            [ports.otlp_http, ports.otlp_grpc, ports.api],
            ports.webhook,
            &rules,
            &super::cluster::section(urls, 0, *n),
        )?,
    };

    let received = Arc::new(Received::default());
    let hook = webhook::router(received.clone(), events.clone());
    stack
        .tasks
        .push(serve(rt, ports.webhook, "webhook receiver", hook)?);

    say(&format!("starting the collector (API {}) ...", ports.api));
    let mut c = Proc::spawn(
        "collector",
        exe,
        &args_of(&["collector", "--config"], &collector_cfg),
        &logs,
    )?;
    let ready = c.wait_ready(COLLECTOR_READY);
    stack.collector = Some(c);
    let ready = ready?;
    let api = addr(&ready, "api", ports.api);
    let otlp_http = addr(&ready, "otlp_http", ports.otlp_http);
    if let Some((n, urls)) = &cluster {
        for i in 1..*n {
            let name = format!("collector-{}", i + 1);
            let listen = [
                super::cluster::free_addr()?,
                super::cluster::free_addr()?,
                super::cluster::free_addr()?,
            ];
            let section = super::cluster::section(urls, i, *n);
            let cfg =
                setup::write_node_config(dir, &name, listen, ports.webhook, &rules, &section)?;
            let mut c = Proc::spawn(
                &name,
                exe,
                &args_of(&["collector", "--config"], &cfg),
                &logs,
            )?;
            let ready = c.wait_ready(COLLECTOR_READY);
            stack.nodes.push(c);
            let ready = ready?;
            say(&format!(
                "cluster node {} of {n}: API {}",
                i + 1,
                addr(&ready, "api", listen[2])
            ));
        }
    }

    say("starting the agent ...");
    let agent_cfg = setup::write_agent_config(dir, &ports, otlp_http)?;
    let mut a = Proc::spawn(
        "agent",
        exe,
        &args_of(&["agent", "--config"], &agent_cfg),
        &logs,
    )?;
    let ready = a.wait_ready(READY);
    stack.agent = Some(a);
    let ready = ready?;
    let agent_grpc = addr(&ready, "otlp_grpc", ports.agent_grpc);
    let otlp = format!("http://{agent_grpc}");

    let addresses = ports.services.clone();
    let spawn_service = {
        let exe = exe.to_path_buf();
        let logs = logs.clone();
        let addresses = addresses.clone();
        move |s: ServiceName| -> Result<Proc, String> {
            let log = setup::log_file(&logs, s);
            let args = ServiceArgs::command_line(s, &addresses, &otlp, &log, "demo-host");
            let mut p = Proc::spawn(s.as_str(), &exe, &args, &logs)?;
            p.wait_ready(READY)?;
            Ok(p)
        }
    };
    say(&format!(
        "starting the services: gateway {}, order {}, coupon {}, payment {}, delivery {} ...",
        addresses.gateway, addresses.order, addresses.coupon, addresses.payment, addresses.delivery
    ));
    let delivery = spawn_service(ServiceName::Delivery)?;
    let spawn_service = Arc::new(spawn_service);
    for s in [
        ServiceName::Payment,
        ServiceName::Coupon,
        ServiceName::Order,
        ServiceName::Gateway,
    ] {
        stack.services.push(spawn_service(s)?);
    }
    let restart = {
        let spawn_service = spawn_service.clone();
        Box::new(move || spawn_service(ServiceName::Delivery)) as faults::Restart
    };
    let controller = Arc::new(Controller::new(
        addresses.clone(),
        events.clone(),
        delivery,
        restart,
    ));
    stack.controller = Some(controller.clone());
    stack.tasks.push(serve(
        rt,
        ports.control,
        "demo control endpoint",
        faults::router(controller.clone()),
    )?);
    if args.faults == FaultMode::Schedule {
        stack
            .tasks
            .push(rt.spawn(faults::schedule(controller.clone())));
    }

    let stats = Arc::new(LoadStats::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let load = LoadConfig {
        gateway: addresses.gateway,
        rate: args.rate,
        seed: std::process::id() as u64,
    };
    let load_task = rt.spawn(skein_demo::load::run(load, stats.clone(), async move {
        let _ = stop_rx.await;
    }));
    stack.load = Some((load_task, stop_tx));
    stack.stats = Some(stats.clone());
    let freshness = Arc::new(Freshness::default());
    if args.headless {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let probes = rt.spawn(fresh::run(
            format!("http://{api}"),
            stats.clone(),
            freshness.clone(),
            async move {
                let _ = stop_rx.await;
            },
        ));
        stack.probes = Some((probes, stop_tx));
    }
    say(&format!("load: {} requests/s to the gateway", args.rate));

    let pids: serde_json::Map<String, serde_json::Value> =
        [stack.collector.as_ref(), stack.agent.as_ref()]
            .into_iter()
            .flatten()
            .chain(stack.services.iter())
            .map(|p| (p.name.clone(), p.pid().into()))
            .collect();
    let state = serde_json::json!({
        "pid": std::process::id(),
        "processes": pids,
        "api": format!("http://{api}"),
        "control": ports.control.to_string(),
        "gateway": addresses.gateway.to_string(),
        "webhook": ports.webhook.to_string(),
        "services": addresses,
    });
    let state_path = dir.join(setup::STATE_FILE);
    std::fs::write(&state_path, state.to_string())
        .map_err(|e| format!("cannot write {}: {e}", state_path.display()))?;
    Ok(Started {
        api,
        gateway: addresses.gateway,
        stats,
        received,
        freshness,
    })
}

fn args_of(head: &[&str], path: &Path) -> Vec<String> {
    let mut v: Vec<String> = head.iter().map(|s| s.to_string()).collect();
    v.push(path.display().to_string());
    v
}

fn addr(
    ready: &std::collections::HashMap<String, String>,
    key: &str,
    or: SocketAddr,
) -> SocketAddr {
    ready.get(key).and_then(|v| v.parse().ok()).unwrap_or(or)
}

/// Serves `app` on `addr` in the background.
fn serve(
    rt: &Runtime,
    addr: SocketAddr,
    what: &str,
    app: axum::Router,
) -> Result<JoinHandle<()>, String> {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(addr))
        .map_err(|e| format!("cannot listen on {addr} for the {what}: {e}"))?;
    Ok(rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    }))
}
