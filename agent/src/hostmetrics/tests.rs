//! Tests of the sampler against the machine the tests run on.

use super::*;
use crate::config::ProcessMatch;
use skein_model::proto::common::v1::any_value;
use skein_model::proto::metrics::v1::{
    Metric, NumberDataPoint, ResourceMetrics, metric::Data, number_data_point::Value,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn resource() -> Vec<(String, String)> {
    vec![
        ("host.name".into(), "test-host".into()),
        ("skein.agent.id".into(), "agent-1".into()),
    ]
}

fn cfg(processes: Vec<ProcessMatch>) -> HostMetricsSection {
    HostMetricsSection {
        processes,
        ..HostMetricsSection::default()
    }
}

fn by_name(service: &str, name: &str) -> ProcessMatch {
    ProcessMatch {
        service: service.into(),
        name: Some(name.into()),
        cmdline: None,
    }
}

fn self_name() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    let kv = attrs.iter().find(|kv| kv.key == key)?;
    match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn res_attr(rm: &ResourceMetrics, key: &str) -> Option<String> {
    attr(&rm.resource.as_ref()?.attributes, key)
}

fn metrics(rm: &ResourceMetrics) -> impl Iterator<Item = &Metric> {
    rm.scope_metrics.iter().flat_map(|s| &s.metrics)
}

fn points(m: &Metric) -> &[NumberDataPoint] {
    match &m.data {
        Some(Data::Gauge(g)) => &g.data_points,
        Some(Data::Sum(s)) => &s.data_points,
        _ => &[],
    }
}

fn value(p: &NumberDataPoint) -> f64 {
    match p.value {
        Some(Value::AsDouble(d)) => d,
        Some(Value::AsInt(i)) => i as f64,
        None => f64::NAN,
    }
}

fn metric<'a>(rm: &'a ResourceMetrics, name: &str) -> Option<&'a Metric> {
    metrics(rm).find(|m| m.name == name)
}

/// The single value of a metric without attributes.
fn single(rm: &ResourceMetrics, name: &str) -> Option<f64> {
    let m = metric(rm, name)?;
    points(m)
        .iter()
        .find(|p| p.attributes.is_empty())
        .map(value)
}

fn host(req: &ExportMetricsServiceRequest) -> &ResourceMetrics {
    &req.resource_metrics[0]
}

fn process_resources<'a>(
    req: &'a ExportMetricsServiceRequest,
    service: &'a str,
) -> impl Iterator<Item = &'a ResourceMetrics> {
    req.resource_metrics.iter().filter(move |rm| {
        res_attr(rm, "service.name").as_deref() == Some(service)
            && res_attr(rm, "process.pid").is_some()
    })
}

fn process_count(req: &ExportMetricsServiceRequest, service: &str) -> Option<f64> {
    req.resource_metrics
        .iter()
        .filter(|rm| res_attr(rm, "service.name").as_deref() == Some(service))
        .find_map(|rm| single(rm, "skein.process.count"))
}

#[test]
fn host_sample_has_expected_metrics_and_resource() {
    let cfg = cfg(Vec::new());
    let mut s = HostSampler::new(&cfg, resource()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let req = s.sample();
    assert_eq!(
        req.resource_metrics.len(),
        1,
        "no process section configured"
    );
    let h = host(&req);
    assert_eq!(res_attr(h, "host.name").as_deref(), Some("test-host"));
    assert_eq!(res_attr(h, "skein.agent.id").as_deref(), Some("agent-1"));
    let scope = h.scope_metrics[0].scope.as_ref().unwrap();
    assert_eq!(scope.name, SCOPE_NAME);

    for name in [
        "system.cpu.utilization",
        "system.cpu.logical.count",
        "system.cpu.load_average.1m",
        "system.cpu.load_average.5m",
        "system.cpu.load_average.15m",
        "system.memory.usage",
        "system.memory.utilization",
        "system.memory.limit",
        "system.paging.usage",
        "system.network.io",
    ] {
        assert!(metric(h, name).is_some(), "missing {name}");
    }
    let ncpu = single(h, "system.cpu.logical.count").unwrap();
    assert!(ncpu >= 1.0);
    let total = single(h, "system.memory.limit").unwrap();
    assert!(total > 0.0);

    // Utilizations are fractions; per-CPU points carry cpu.logical_number, the host's none.
    for m in metrics(h).filter(|m| m.name.ends_with(".utilization")) {
        assert_eq!(m.unit, "1");
        for p in points(m) {
            let v = value(p);
            assert!((0.0..=1.0).contains(&v), "{} = {v}", m.name);
        }
    }
    let cpu = metric(h, "system.cpu.utilization").unwrap();
    assert_eq!(points(cpu).len(), ncpu as usize + 1);
    assert!(single(h, "system.cpu.utilization").is_some());

    // Memory states add up to the total.
    let states: f64 = points(metric(h, "system.memory.usage").unwrap())
        .iter()
        .map(value)
        .sum();
    assert_eq!(states, total);

    // Sums are cumulative with a start time; gauges carry none.
    for m in metrics(h) {
        for p in points(m) {
            assert!(p.time_unix_nano > 0);
            match &m.data {
                Some(Data::Sum(sum)) => {
                    assert_eq!(sum.aggregation_temporality, 2, "{} cumulative", m.name);
                    assert!(
                        p.start_time_unix_nano > 0 && p.start_time_unix_nano <= p.time_unix_nano
                    );
                }
                _ => assert_eq!(p.start_time_unix_nano, 0),
            }
        }
    }

    let sum = s.summary();
    assert!((0.0..=1.0).contains(&sum.cpu_utilization));
    assert_eq!(sum.memory_total_bytes as f64, total);
    assert!(sum.memory_used_bytes > 0 && sum.memory_used_bytes <= sum.memory_total_bytes);
    assert!(sum.load1 >= 0.0);
}

#[test]
fn filesystems_listed_unless_excluded() {
    let disks = sysinfo::Disks::new_with_refreshed_list();
    let root = disks
        .list()
        .iter()
        .find(|d| d.mount_point() == std::path::Path::new("/") && d.total_space() > 0);
    let mut cfg = cfg(Vec::new());
    cfg.exclude_fs_types.clear();
    let mut s = HostSampler::new(&cfg, resource()).unwrap();
    let req = s.sample();
    let mounts: Vec<String> = metric(host(&req), "system.filesystem.usage")
        .map(|m| points(m).to_vec())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| attr(&p.attributes, "system.filesystem.mountpoint"))
        .collect();
    let Some(root) = root else {
        eprintln!("no `/` mount listed by sysinfo here; skipping");
        return;
    };
    assert!(mounts.iter().any(|m| m == "/"), "{mounts:?}");

    // Excluding its type removes it.
    cfg.exclude_fs_types = vec![root.file_system().to_string_lossy().into_owned()];
    let mut s = HostSampler::new(&cfg, resource()).unwrap();
    let req = s.sample();
    let has_root = metric(host(&req), "system.filesystem.usage").is_some_and(|m| {
        points(m)
            .iter()
            .any(|p| attr(&p.attributes, "system.filesystem.mountpoint").as_deref() == Some("/"))
    });
    assert!(!has_root);
}

/// Series key: resource pid (if any), metric name and sorted attributes.
fn sums(req: &ExportMetricsServiceRequest) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for rm in &req.resource_metrics {
        let pid = res_attr(rm, "process.pid").unwrap_or_default();
        for m in metrics(rm) {
            let Some(Data::Sum(sum)) = &m.data else {
                continue;
            };
            if !sum.is_monotonic {
                continue;
            }
            for p in &sum.data_points {
                let mut attrs: Vec<String> = p
                    .attributes
                    .iter()
                    .map(|kv| format!("{}={:?}", kv.key, attr(std::slice::from_ref(kv), &kv.key)))
                    .collect();
                attrs.sort();
                out.insert(format!("{pid}/{}/{}", m.name, attrs.join(",")), value(p));
            }
        }
    }
    out
}

#[test]
fn cumulative_sums_are_monotonic() {
    let cfg = cfg(vec![by_name("me", &self_name())]);
    let mut s = HostSampler::new(&cfg, resource()).unwrap();
    let first = sums(&s.sample());
    // Some work (and I/O) between the samples.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x"), vec![7u8; 1 << 20]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let second = sums(&s.sample());
    assert!(
        first
            .keys()
            .any(|k| k.contains("system.network.io") || k.contains("system.disk.io"))
    );
    assert!(first.keys().any(|k| k.contains("process.cpu.time")));
    let mut compared = 0;
    for (k, v1) in &first {
        if let Some(v2) = second.get(k) {
            assert!(v2 >= v1, "{k}: {v1} then {v2}");
            compared += 1;
        }
    }
    assert!(compared > 0);
}

#[test]
fn process_matched_by_name_reports_this_process() {
    let name = self_name();
    let cfg = cfg(vec![by_name("tests", &name)]);
    let mut s = HostSampler::new(&cfg, resource()).unwrap();
    // Burn a little CPU so that the utilization has something to show.
    let t = Instant::now();
    let mut x = 0u64;
    while t.elapsed() < Duration::from_millis(300) {
        x = x.wrapping_mul(31).wrapping_add(1);
    }
    assert_ne!(x, 1);
    let req = s.sample();
    let me = std::process::id().to_string();
    let procs: Vec<&ResourceMetrics> = process_resources(&req, "tests").collect();
    let rm = procs
        .iter()
        .find(|rm| res_attr(rm, "process.pid").as_deref() == Some(me.as_str()))
        .unwrap_or_else(|| panic!("pid {me} not among {} matched", procs.len()));
    assert_eq!(res_attr(rm, "host.name").as_deref(), Some("test-host"));
    assert_eq!(res_attr(rm, "skein.agent.id").as_deref(), Some("agent-1"));
    assert_eq!(
        res_attr(rm, "process.executable.name").as_deref(),
        Some(name.as_str())
    );
    let cmdline = res_attr(rm, "process.command_line").unwrap();
    assert!(cmdline.contains(&name) && cmdline.len() <= 1024);

    assert!(single(rm, "process.memory.usage").unwrap() > 0.0);
    assert!(single(rm, "process.memory.virtual").unwrap() > 0.0);
    assert!(single(rm, "process.cpu.time").unwrap() > 0.0);
    let util = single(rm, "process.cpu.utilization").unwrap();
    assert!((0.0..=1.0).contains(&util) && util > 0.0, "{util}");
    assert!(single(rm, "process.thread.count").unwrap() >= 1.0);
    let io = metric(rm, "process.disk.io").unwrap();
    assert_eq!(points(io).len(), 2);
    assert!(process_count(&req, "tests").unwrap() >= 1.0);
}

#[test]
fn process_matched_by_cmdline_regex() {
    let cfg = cfg(vec![ProcessMatch {
        service: "by-cmdline".into(),
        name: None,
        cmdline: Some(regex::escape(&self_name())),
    }]);
    let mut s = HostSampler::new(&cfg, resource()).unwrap();
    let req = s.sample();
    let me = std::process::id().to_string();
    assert!(
        process_resources(&req, "by-cmdline")
            .any(|rm| res_attr(rm, "process.pid").as_deref() == Some(me.as_str()))
    );
}

#[test]
fn unmatched_service_reports_zero_processes() {
    let cfg = cfg(vec![
        by_name("ghost", "no-such-process-skein"),
        ProcessMatch {
            service: "ghost2".into(),
            name: Some(self_name()),
            cmdline: Some("^this will not match$".into()),
        },
    ]);
    let mut s = HostSampler::new(&cfg, resource()).unwrap();
    let req = s.sample();
    for svc in ["ghost", "ghost2"] {
        assert_eq!(process_count(&req, svc), Some(0.0));
        assert_eq!(process_resources(&req, svc).count(), 0);
    }
    let svc_res = req
        .resource_metrics
        .iter()
        .find(|rm| res_attr(rm, "service.name").as_deref() == Some("ghost"))
        .unwrap();
    assert_eq!(res_attr(svc_res, "host.name").as_deref(), Some("test-host"));
}

#[test]
fn invalid_process_config_is_an_error() {
    let bad = cfg(vec![ProcessMatch {
        service: "x".into(),
        name: None,
        cmdline: Some("(".into()),
    }]);
    assert!(HostSampler::new(&bad, resource()).is_err());
}

/// CPU time (user + system) of the calling thread, from `/proc/thread-self/stat` (in clock
/// ticks, usually 10 ms).
fn thread_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the `(comm)`: state is the 3rd field, utime the 14th, stime the 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Prints the cost of one sample (run with `--nocapture`); no timing assertion.
#[test]
fn sample_cost() {
    for (label, procs) in [
        ("host only", Vec::new()),
        (
            "host + 1 service by name",
            vec![by_name("me", &self_name())],
        ),
        (
            "host + 1 service by cmdline",
            vec![ProcessMatch {
                service: "me".into(),
                name: None,
                cmdline: Some("skein".into()),
            }],
        ),
    ] {
        let rss0 = rss_kib();
        let cfg = cfg(procs);
        let t = Instant::now();
        let mut s = HostSampler::new(&cfg, resource()).unwrap();
        let create = t.elapsed();
        std::thread::sleep(Duration::from_millis(250));
        let _ = s.sample();
        let n = 200u32;
        let (t, cpu0) = (Instant::now(), thread_cpu_ticks());
        let mut bytes = 0;
        for _ in 0..n {
            bytes = prost::Message::encoded_len(&s.sample());
        }
        let per = t.elapsed() / n;
        let cpu_ms = (thread_cpu_ticks() - cpu0) as f64 * 10.0 / f64::from(n);
        println!(
            "hostmetrics cost [{label}]: new {create:?}, sample {per:?} wall, ~{cpu_ms:.2} ms \
             CPU (10 ms ticks), {bytes} B encoded, RSS +{} KiB (approximate when tests run \
             in parallel)",
            rss_kib().saturating_sub(rss0)
        );
    }
}
