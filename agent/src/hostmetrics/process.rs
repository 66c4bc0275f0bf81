//! Per-service process metrics: finds the processes of each configured service (by
//! executable name and/or a regular expression over the command line) and reports their CPU,
//! memory, disk I/O and thread count, one resource per process.

use super::otlp::{Def, Kind, Metrics, dbl, def, int, int_kv, secs_to_nanos, str_kv};
use crate::config::ProcessMatch;
use regex::Regex;
use skein_model::proto::common::v1::KeyValue;
use skein_model::proto::metrics::v1::ResourceMetrics;
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::time::Instant;
use sysinfo::{
    Pid, Process, ProcessRefreshKind, ProcessesToUpdate, System, ThreadKind, UpdateKind,
};

const PROC_COUNT: Def = def(
    "skein.process.count",
    "{process}",
    Kind::Gauge,
    "Number of running processes matched for the service (0 when none).",
);
const PROC_CPU_TIME: Def = def(
    "process.cpu.time",
    "s",
    Kind::Counter,
    "CPU time (user + system) used by the process since it started.",
);
const PROC_CPU_UTIL: Def = def(
    "process.cpu.utilization",
    "1",
    Kind::Gauge,
    "CPU time used since the previous sample divided by the elapsed time and the number of \
     logical CPUs (1 = every CPU of the host busy with this process).",
);
const PROC_MEM: Def = def(
    "process.memory.usage",
    "By",
    Kind::UpDown,
    "Resident set size (physical memory) of the process.",
);
const PROC_VMEM: Def = def(
    "process.memory.virtual",
    "By",
    Kind::UpDown,
    "Virtual memory size of the process.",
);
const PROC_DISK_IO: Def = def(
    "process.disk.io",
    "By",
    Kind::Counter,
    "Bytes the process read from and wrote to storage since it started.",
);
const PROC_THREADS: Def = def(
    "process.thread.count",
    "{thread}",
    Kind::UpDown,
    "Number of threads of the process.",
);

/// Longest `process.command_line` kept, in bytes.
const MAX_CMDLINE: usize = 1024;
/// Linux keeps only this many bytes of an executable's name (`comm`).
const COMM_LEN: usize = 15;

/// One `[[host_metrics.process]]` entry. When both `name` and `cmdline` are given a process
/// must satisfy both.
struct Matcher {
    name: Option<String>,
    cmdline: Option<Regex>,
}

/// The matchers of one service (entries with the same `service` are merged).
struct Service {
    name: String,
    matchers: Vec<Matcher>,
}

/// What is kept per watched process between samples.
struct Prev {
    start_time: u64,
    cpu_ms: u64,
    at: Instant,
    io_readable: bool,
}

/// Process matching and the state process metrics need between samples.
pub(crate) struct ProcessState {
    services: Vec<Service>,
    /// Whether any matcher needs command lines (read for every process, once per process).
    need_cmdline: bool,
    prev: HashMap<Pid, Prev>,
}

impl ProcessState {
    /// Compiles the matchers; `None` when there is nothing to watch.
    pub fn new(cfg: &[ProcessMatch]) -> Result<Option<Self>, String> {
        if cfg.is_empty() {
            return Ok(None);
        }
        let mut services: Vec<Service> = Vec::new();
        for (i, m) in cfg.iter().enumerate() {
            if m.service.trim().is_empty() {
                return Err(format!("host_metrics.process[{i}]: `service` is empty"));
            }
            let name = m.name.clone().filter(|n| !n.is_empty());
            let cmdline = match &m.cmdline {
                Some(re) => Some(Regex::new(re).map_err(|e| {
                    format!(
                        "host_metrics.process[{i}] ({}): bad `cmdline` regex: {e}",
                        m.service
                    )
                })?),
                None => None,
            };
            if name.is_none() && cmdline.is_none() {
                return Err(format!(
                    "host_metrics.process[{i}] ({}): give `name` or `cmdline`",
                    m.service
                ));
            }
            let matcher = Matcher { name, cmdline };
            match services.iter_mut().find(|s| s.name == m.service) {
                Some(s) => s.matchers.push(matcher),
                None => services.push(Service {
                    name: m.service.clone(),
                    matchers: vec![matcher],
                }),
            }
        }
        let need_cmdline = services
            .iter()
            .flat_map(|s| &s.matchers)
            .any(|m| m.cmdline.is_some());
        Ok(Some(ProcessState {
            services,
            need_cmdline,
            prev: HashMap::new(),
        }))
    }

    /// First reading, so the first sample already has a CPU utilization for the processes
    /// running now.
    pub fn prime(&mut self, sys: &mut System) {
        let matched = self.refresh(sys);
        let at = Instant::now();
        let pids: HashSet<Pid> = matched.into_iter().flatten().collect();
        for pid in pids {
            if let Some(p) = sys.process(pid) {
                self.prev.insert(pid, prev_of(p, at, None));
            }
        }
    }

    /// Lists processes, finds the watched ones and refreshes their figures. Returns the pids
    /// per service (sorted, in the order of `self.services`).
    fn refresh(&self, sys: &mut System) -> Vec<Vec<Pid>> {
        // Pass 1, every process: the name comes with the `stat` file that sysinfo reads anyway;
        // command lines only when a matcher needs them, and only once per process.
        let cmd = if self.need_cmdline {
            UpdateKind::OnlyIfNotSet
        } else {
            UpdateKind::Never
        };
        let list = ProcessRefreshKind::nothing().without_tasks().with_cmd(cmd);
        sys.refresh_processes_specifics(ProcessesToUpdate::All, true, list);

        let mut matched = vec![Vec::new(); self.services.len()];
        for (pid, p) in sys.processes() {
            if p.thread_kind() == Some(ThreadKind::Kernel) {
                continue;
            }
            let mut cmdline = None;
            for (i, s) in self.services.iter().enumerate() {
                if s.matchers.iter().any(|m| m.matches(p, &mut cmdline)) {
                    matched[i].push(*pid);
                }
            }
        }
        let mut all: Vec<Pid> = matched.iter().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        if !all.is_empty() {
            // Pass 2, the watched processes only: CPU, memory, I/O, threads, path, arguments.
            let details = ProcessRefreshKind::nothing()
                .with_cpu()
                .with_memory()
                .with_disk_usage()
                .with_tasks()
                .with_exe(UpdateKind::OnlyIfNotSet)
                .with_cmd(UpdateKind::OnlyIfNotSet);
            sys.refresh_processes_specifics(ProcessesToUpdate::Some(&all), true, details);
        }
        for pids in &mut matched {
            pids.retain(|pid| sys.process(*pid).is_some());
            pids.sort_unstable();
        }
        matched
    }

    /// Refreshes and returns one `ResourceMetrics` per service (`skein.process.count`) and
    /// one per matched process.
    pub fn collect(
        &mut self,
        sys: &mut System,
        resource: &[KeyValue],
        now: u64,
        agent_start: u64,
    ) -> Vec<ResourceMetrics> {
        let matched = self.refresh(sys);
        let at = Instant::now();
        let ncpu = sys.cpus().len().max(1) as f64;
        let mut next: HashMap<Pid, Prev> = HashMap::new();
        let mut out = Vec::new();
        for (service, pids) in self.services.iter().zip(&matched) {
            let mut res = resource.to_vec();
            res.push(str_kv("service.name", service.name.as_str()));
            let mut m = Metrics::new(now);
            m.push(&PROC_COUNT, Vec::new(), int(pids.len() as u64), 0);
            out.push(m.into_resource_metrics(res));

            for pid in pids {
                let Some(p) = sys.process(*pid) else {
                    continue;
                };
                let old = self
                    .prev
                    .get(pid)
                    .filter(|o| o.start_time == p.start_time());
                let cur = prev_of(p, at, old);
                let mut m = Metrics::new(now);
                let start = match p.start_time() {
                    0 => agent_start,
                    s => secs_to_nanos(s),
                };
                let cpu_s = cur.cpu_ms as f64 / 1000.0;
                m.push(&PROC_CPU_TIME, Vec::new(), dbl(cpu_s), start);
                if let Some(old) = old {
                    let wall_ms = at.duration_since(old.at).as_secs_f64() * 1000.0;
                    if wall_ms > 0.0 {
                        let busy = cur.cpu_ms.saturating_sub(old.cpu_ms) as f64;
                        let util = (busy / (wall_ms * ncpu)).clamp(0.0, 1.0);
                        m.push(&PROC_CPU_UTIL, Vec::new(), dbl(util), 0);
                    }
                }
                m.push(&PROC_MEM, Vec::new(), int(p.memory()), start);
                m.push(&PROC_VMEM, Vec::new(), int(p.virtual_memory()), start);
                if cur.io_readable {
                    let io = p.disk_usage();
                    for (dir, v) in [
                        ("read", io.total_read_bytes),
                        ("write", io.total_written_bytes),
                    ] {
                        let attrs = vec![str_kv("disk.io.direction", dir)];
                        m.push(&PROC_DISK_IO, attrs, int(v), start);
                    }
                }
                if let Some(tasks) = p.tasks() {
                    // sysinfo lists the other threads; the main one is the process itself.
                    let threads = tasks.len() as u64 + 1;
                    m.push(&PROC_THREADS, Vec::new(), int(threads), start);
                }
                out.push(m.into_resource_metrics(process_resource(resource, &service.name, p)));
                next.insert(*pid, cur);
            }
        }
        self.prev = next;
        out
    }
}

impl Matcher {
    /// Whether `p` matches; `cmdline` caches the joined command line across matchers.
    fn matches(&self, p: &Process, cmdline: &mut Option<String>) -> bool {
        if let Some(name) = &self.name
            && !name_matches(p.name().as_encoded_bytes(), name.as_bytes())
        {
            return false;
        }
        if let Some(re) = &self.cmdline {
            let line = cmdline.get_or_insert_with(|| join_cmd(p.cmd()));
            if !re.is_match(line) {
                return false;
            }
        }
        true
    }
}

/// `comm` equals the wanted name, or its first 15 bytes when the name is longer (Linux
/// truncates `comm`).
fn name_matches(comm: &[u8], want: &[u8]) -> bool {
    comm == want || (want.len() > COMM_LEN && comm.len() == COMM_LEN && comm == &want[..COMM_LEN])
}

/// Arguments joined by spaces.
fn join_cmd(cmd: &[OsString]) -> String {
    let mut s = String::new();
    for (i, a) in cmd.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Cuts `s` to at most `max` bytes, on a character boundary.
fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The figures kept for the next sample. Whether `/proc/<pid>/io` is readable is checked on
/// first sight only (it is not for other users' processes unless the agent is privileged,
/// and sysinfo then reports zeros).
fn prev_of(p: &Process, at: Instant, old: Option<&Prev>) -> Prev {
    Prev {
        start_time: p.start_time(),
        cpu_ms: p.accumulated_cpu_time(),
        at,
        io_readable: old.map_or_else(|| io_readable(p.pid()), |o| o.io_readable),
    }
}

#[cfg(target_os = "linux")]
fn io_readable(pid: Pid) -> bool {
    std::fs::File::open(format!("/proc/{pid}/io")).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn io_readable(_pid: Pid) -> bool {
    true
}

/// The per-process resource: the caller's attributes, `service.name` and the process
/// identity.
fn process_resource(base: &[KeyValue], service: &str, p: &Process) -> Vec<KeyValue> {
    let mut res = base.to_vec();
    res.push(str_kv("service.name", service));
    res.push(int_kv("process.pid", i64::from(p.pid().as_u32())));
    let exe_name = p
        .exe()
        .and_then(|e| e.file_name())
        .unwrap_or_else(|| p.name());
    res.push(str_kv(
        "process.executable.name",
        exe_name.to_string_lossy(),
    ));
    if let Some(exe) = p.exe() {
        res.push(str_kv("process.executable.path", exe.to_string_lossy()));
    }
    if !p.cmd().is_empty() {
        res.push(str_kv(
            "process.command_line",
            cut(join_cmd(p.cmd()), MAX_CMDLINE),
        ));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_matching_handles_comm_truncation() {
        assert!(name_matches(b"nginx", b"nginx"));
        assert!(!name_matches(b"nginx", b"nginx2"));
        assert!(name_matches(b"skein_agent-012", b"skein_agent-0123456789"));
        assert!(!name_matches(b"skein_agent", b"skein_agent-0123456789"));
    }

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut("abc".into(), 10), "abc");
        assert_eq!(cut("abcdef".into(), 3), "abc");
        assert_eq!(cut("aé".into(), 2), "a");
    }

    #[test]
    fn bad_configs_are_rejected() {
        let m = |name: Option<&str>, cmdline: Option<&str>| ProcessMatch {
            service: "svc".into(),
            name: name.map(String::from),
            cmdline: cmdline.map(String::from),
        };
        assert!(matches!(ProcessState::new(&[]), Ok(None)));
        assert!(ProcessState::new(&[m(None, None)]).is_err());
        assert!(ProcessState::new(&[m(None, Some("(unclosed"))]).is_err());
        let ok = ProcessState::new(&[m(Some("a"), None), m(None, Some("b"))]);
        assert!(matches!(ok, Ok(Some(ref s)) if s.services.len() == 1 && s.need_cmdline));
    }
}
