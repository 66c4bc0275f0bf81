//! Host and process resource metrics, sampled with `sysinfo` and returned as OTLP
//! ([`HostSampler::sample`] gives one `ExportMetricsServiceRequest` per sample).
//!
//! Names, units and attributes follow the OpenTelemetry semantic conventions and the
//! collector's `hostmetrics` receiver. Instrument kinds: *gauge*, *counter* (monotonic
//! cumulative sum) and *up-down* (non-monotonic cumulative sum).
//!
//! ## Host resource (the caller's attributes only)
//!
//! | metric | kind | unit | attributes |
//! |---|---|---|---|
//! | `system.cpu.utilization` | gauge | `1` | `cpu.logical_number` (per CPU), or none (host) |
//! | `system.cpu.logical.count` | up-down | `{cpu}` | |
//! | `system.cpu.load_average.1m` / `.5m` / `.15m` | gauge | `{thread}` | |
//! | `system.memory.usage` | up-down | `By` | `system.memory.state` = used, free, cached |
//! | `system.memory.utilization` | gauge | `1` | `system.memory.state` |
//! | `system.memory.limit` | up-down | `By` | |
//! | `system.paging.usage` | up-down | `By` | `system.paging.state` = used, free |
//! | `system.paging.utilization` | gauge | `1` | `system.paging.state` (no swap: absent) |
//! | `system.filesystem.usage` | up-down | `By` | `system.device`, `system.filesystem.mountpoint`, `.type`, `.mode`, `.state` = used, free |
//! | `system.filesystem.utilization` | gauge | `1` | the same but `.state` |
//! | `system.disk.io` | counter | `By` | `system.device` (kernel name: `sda1`, `dm-0`), `disk.io.direction` = read, write |
//! | `system.network.io` | counter | `By` | `network.interface.name`, `network.io.direction` = receive, transmit |
//! | `system.network.packets` | counter | `{packet}` | the same |
//! | `system.network.errors` | counter | `{error}` | the same |
//!
//! **CPU**: `system.cpu.utilization` is the busy (non-idle) fraction of CPU time since the
//! previous sample, 0..=1. Each logical CPU gets a point with `cpu.logical_number`; the
//! whole host gets one point *without* `cpu.logical_number` (filter on its absence for the
//! host figure, on its presence for per-CPU figures). There is no `cpu.mode` split. It needs
//! two readings at least 200 ms apart: [`HostSampler::new`] takes the first, so a sample
//! taken sooner than that after `new` carries no `system.cpu.utilization` (nor
//! `process.cpu.utilization`) and [`HostSummary::cpu_utilization`] is 0.
//!
//! **Memory**: `used` = total − available, `free` = MemFree, `cached` = available − free
//! (page cache, buffers and reclaimable slab: what the kernel can hand back); the three add
//! up to the total. The heartbeat's "used" is the same `used`.
//!
//! **File systems**: mounts whose type is in `exclude_fs_types` are left out (sysinfo itself
//! already skips proc, sysfs, tmpfs, cgroup, network file systems and the like); `free` is
//! the space available to unprivileged users, so `used` includes the root reserve. Disk I/O
//! is reported once per block device even when several mounts share it.
//!
//! ## Service resources
//!
//! For every configured service (`[[host_metrics.process]]`, entries with the same `service`
//! are merged), one resource with the caller's attributes plus `service.name` carries the
//! gauge `skein.process.count` (`{process}`): how many processes matched, 0 when none, so an
//! alert can notice a stopped service.
//!
//! ## Process resources
//!
//! Following the process semantic conventions, every matched process gets its own resource:
//! the caller's attributes, `service.name`, `process.pid`, `process.executable.name`,
//! `process.executable.path` (when readable) and `process.command_line` (arguments joined by
//! spaces, cut at 1 KiB; note that it shows whatever the arguments hold). Metrics:
//!
//! | metric | kind | unit | attributes |
//! |---|---|---|---|
//! | `process.cpu.time` | counter | `s` | |
//! | `process.cpu.utilization` | gauge | `1` | |
//! | `process.memory.usage` (RSS) | up-down | `By` | |
//! | `process.memory.virtual` | up-down | `By` | |
//! | `process.disk.io` | counter | `By` | `disk.io.direction` = read, write |
//! | `process.thread.count` | up-down | `{thread}` | |
//!
//! `process.cpu.utilization` is, as in the conventions, CPU time used since the previous
//! sample divided by the elapsed time **and by the number of logical CPUs**: 1 means the
//! process kept every CPU of the host busy. A process seen for the first time has no point
//! yet. `process.disk.io` is left out for processes whose `/proc/<pid>/io` the agent may not
//! read (other users' processes when not privileged).
//!
//! A process matches an entry when its executable name equals `name` (Linux keeps only the
//! first 15 bytes of it, so a longer `name` matches on those), and/or its command line matches
//! the `cmdline` regex; with both given, both must hold (write two entries for "either").
//!
//! ## Start times
//!
//! Counters counting since boot (`system.disk.io`, `system.network.*`) start at the host's
//! boot time, process counters at the process's start, up-down counters at the sampler's
//! creation (the agent's start). Gauges have no start time.
//!
//! ## Cost
//!
//! Only what is reported is refreshed: CPU times, memory, mounts with their space and I/O
//! counters, interface counters. Processes are not listed at all when no service is
//! configured; otherwise every process's `stat` file is read once per sample (plus its
//! command line once per process when a `cmdline` matcher exists), and only the matched
//! processes get their memory, I/O, threads and arguments read.

mod otlp;
mod process;
mod system;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use crate::config::HostMetricsSection;
use otlp::{Metrics, now_nanos, secs_to_nanos, str_kv};
use process::ProcessState;
use serde::Serialize;
use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use skein_model::proto::common::v1::KeyValue;
use sysinfo::System;
use system::{HostState, Starts};

pub use otlp::SCOPE_NAME;

/// A short summary of the latest sample, for the heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct HostSummary {
    /// Busy fraction of all CPUs since the previous sample, 0..=1 (0 until two readings).
    pub cpu_utilization: f64,
    /// Memory in use (total − available), in bytes.
    pub memory_used_bytes: u64,
    /// Total memory, in bytes.
    pub memory_total_bytes: u64,
    /// Load average over one minute.
    pub load1: f64,
}

/// Samples host and process resources; see the [module documentation](self) for the
/// metrics. Keep one for the agent's lifetime: CPU figures and counters rely on the
/// previous sample.
pub struct HostSampler {
    sys: System,
    host: HostState,
    processes: Option<ProcessState>,
    resource: Vec<KeyValue>,
    starts: Starts,
    summary: HostSummary,
}

impl HostSampler {
    /// Checks the process matchers and takes the first readings.
    ///
    /// `resource`: attributes every metric's resource carries (`host.name`,
    /// `skein.agent.id`, ...), as (key, value) strings. Fails on a process entry without
    /// `name` nor `cmdline`, with an empty `service` or with an invalid `cmdline` regex.
    pub fn new(
        cfg: &HostMetricsSection,
        resource: Vec<(String, String)>,
    ) -> Result<HostSampler, String> {
        let processes = ProcessState::new(&cfg.processes)?;
        let agent = now_nanos();
        let boot = match System::boot_time() {
            0 => agent,
            b => secs_to_nanos(b),
        };
        let mut sys = System::new();
        let host = HostState::new(&mut sys, &cfg.exclude_fs_types);
        let mut processes = processes;
        if let Some(p) = &mut processes {
            p.prime(&mut sys);
        }
        Ok(HostSampler {
            sys,
            host,
            processes,
            resource: resource.into_iter().map(|(k, v)| str_kv(&k, v)).collect(),
            starts: Starts { agent, boot },
            summary: HostSummary::default(),
        })
    }

    /// Takes one sample (refreshing only what is needed) and returns it as one OTLP export
    /// request: one `ResourceMetrics` for the host, one per configured service
    /// (`skein.process.count`) and one per matched process.
    pub fn sample(&mut self) -> ExportMetricsServiceRequest {
        let now = now_nanos();
        let mut host = Metrics::new(now);
        self.summary = self.host.collect(&mut self.sys, &mut host, self.starts);
        let mut resource_metrics = Vec::new();
        if !host.is_empty() {
            resource_metrics.push(host.into_resource_metrics(self.resource.clone()));
        }
        if let Some(p) = &mut self.processes {
            resource_metrics.extend(p.collect(
                &mut self.sys,
                &self.resource,
                now,
                self.starts.agent,
            ));
        }
        ExportMetricsServiceRequest { resource_metrics }
    }

    /// A short summary of the latest sample (all zeros before the first).
    pub fn summary(&self) -> HostSummary {
        self.summary
    }
}
