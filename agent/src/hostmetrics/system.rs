//! Host-wide metrics: CPU, memory, paging, load, file systems, disk and network I/O.

use super::HostSummary;
use super::otlp::{Def, Kind, Metrics, dbl, def, int, int_kv, ratio, str_kv};
use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::time::Instant;
use sysinfo::{DiskRefreshKind, Disks, MINIMUM_CPU_UPDATE_INTERVAL, Networks, System};

const CPU_UTIL: Def = def(
    "system.cpu.utilization",
    "1",
    Kind::Gauge,
    "Busy (non-idle) fraction of CPU time since the previous sample: per logical CPU (with \
     cpu.logical_number) and for the whole host (without it).",
);
const CPU_COUNT: Def = def(
    "system.cpu.logical.count",
    "{cpu}",
    Kind::UpDown,
    "Number of logical CPUs.",
);
const LOAD_1: Def = def(
    "system.cpu.load_average.1m",
    "{thread}",
    Kind::Gauge,
    "Load average over 1 minute.",
);
const LOAD_5: Def = def(
    "system.cpu.load_average.5m",
    "{thread}",
    Kind::Gauge,
    "Load average over 5 minutes.",
);
const LOAD_15: Def = def(
    "system.cpu.load_average.15m",
    "{thread}",
    Kind::Gauge,
    "Load average over 15 minutes.",
);
const MEM_USAGE: Def = def(
    "system.memory.usage",
    "By",
    Kind::UpDown,
    "Memory in use (used), unused (free) and reclaimable (cached: available minus free).",
);
const MEM_UTIL: Def = def(
    "system.memory.utilization",
    "1",
    Kind::Gauge,
    "Fraction of memory per state.",
);
const MEM_LIMIT: Def = def("system.memory.limit", "By", Kind::UpDown, "Total memory.");
const PAGING_USAGE: Def = def(
    "system.paging.usage",
    "By",
    Kind::UpDown,
    "Swap space used and free.",
);
const PAGING_UTIL: Def = def(
    "system.paging.utilization",
    "1",
    Kind::Gauge,
    "Fraction of swap space used and free.",
);
const FS_USAGE: Def = def(
    "system.filesystem.usage",
    "By",
    Kind::UpDown,
    "File system space used and free (available to unprivileged users).",
);
const FS_UTIL: Def = def(
    "system.filesystem.utilization",
    "1",
    Kind::Gauge,
    "Fraction of the file system's space in use.",
);
const DISK_IO: Def = def(
    "system.disk.io",
    "By",
    Kind::Counter,
    "Bytes read from and written to the device since boot.",
);
const NET_IO: Def = def(
    "system.network.io",
    "By",
    Kind::Counter,
    "Bytes received and transmitted by the interface.",
);
const NET_PACKETS: Def = def(
    "system.network.packets",
    "{packet}",
    Kind::Counter,
    "Packets received and transmitted by the interface.",
);
const NET_ERRORS: Def = def(
    "system.network.errors",
    "{error}",
    Kind::Counter,
    "Receive and transmit errors of the interface.",
);

/// Host-wide state kept between samples.
pub(crate) struct HostState {
    disks: Disks,
    networks: Networks,
    exclude_fs_types: HashSet<String>,
    /// Mount device (`/dev/mapper/x`) to kernel device name (`dm-0`), resolved once.
    devices: HashMap<OsString, Option<String>>,
    /// When the CPU times were last read.
    last_cpu_refresh: Instant,
    /// Whether the CPU usage figures cover a real interval (at least two reads).
    cpu_ready: bool,
}

/// What sums start from, in ns since the epoch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Starts {
    /// The agent's (sampler's) start: for up-down counters.
    pub agent: u64,
    /// The host's boot: for counters that count since boot.
    pub boot: u64,
}

impl HostState {
    /// Primes the CPU, memory, disk and network readings.
    pub fn new(sys: &mut System, exclude_fs_types: &[String]) -> Self {
        sys.refresh_cpu_usage();
        HostState {
            disks: Disks::new_with_refreshed_list_specifics(disk_refresh()),
            networks: Networks::new_with_refreshed_list(),
            exclude_fs_types: exclude_fs_types.iter().cloned().collect(),
            devices: HashMap::new(),
            last_cpu_refresh: Instant::now(),
            cpu_ready: false,
        }
    }

    /// Refreshes the host readings and adds the host metrics to `out`.
    pub fn collect(&mut self, sys: &mut System, out: &mut Metrics, starts: Starts) -> HostSummary {
        // The CPU first: the process refresh that follows reuses these times.
        if self.last_cpu_refresh.elapsed() >= MINIMUM_CPU_UPDATE_INTERVAL {
            sys.refresh_cpu_usage();
            self.last_cpu_refresh = Instant::now();
            self.cpu_ready = true;
        }
        sys.refresh_memory();
        let mut summary = HostSummary::default();
        self.cpu(sys, out, starts, &mut summary);
        self.memory(sys, out, starts, &mut summary);
        self.filesystems(out, starts);
        self.networks(out, starts);
        summary
    }

    fn cpu(&self, sys: &System, out: &mut Metrics, starts: Starts, summary: &mut HostSummary) {
        let cpus = sys.cpus();
        out.push(&CPU_COUNT, Vec::new(), int(cpus.len() as u64), starts.agent);
        if self.cpu_ready {
            let total = pct(sys.global_cpu_usage());
            summary.cpu_utilization = total;
            for (i, cpu) in cpus.iter().enumerate() {
                let attrs = vec![int_kv("cpu.logical_number", i as i64)];
                out.push(&CPU_UTIL, attrs, dbl(pct(cpu.cpu_usage())), 0);
            }
            out.push(&CPU_UTIL, Vec::new(), dbl(total), 0);
        }
        let load = System::load_average();
        summary.load1 = load.one;
        out.push(&LOAD_1, Vec::new(), dbl(load.one), 0);
        out.push(&LOAD_5, Vec::new(), dbl(load.five), 0);
        out.push(&LOAD_15, Vec::new(), dbl(load.fifteen), 0);
    }

    fn memory(&self, sys: &System, out: &mut Metrics, starts: Starts, summary: &mut HostSummary) {
        let total = sys.total_memory();
        let available = sys.available_memory().min(total);
        let free = sys.free_memory().min(available);
        let used = total - available;
        let cached = available - free;
        summary.memory_used_bytes = used;
        summary.memory_total_bytes = total;
        for (state, v) in [("used", used), ("free", free), ("cached", cached)] {
            let attrs = vec![str_kv("system.memory.state", state)];
            out.push(&MEM_USAGE, attrs.clone(), int(v), starts.agent);
            if let Some(r) = ratio(v, total) {
                out.push(&MEM_UTIL, attrs, dbl(r), 0);
            }
        }
        out.push(&MEM_LIMIT, Vec::new(), int(total), starts.agent);

        let swap_total = sys.total_swap();
        let swap_free = sys.free_swap().min(swap_total);
        for (state, v) in [("used", swap_total - swap_free), ("free", swap_free)] {
            let attrs = vec![str_kv("system.paging.state", state)];
            out.push(&PAGING_USAGE, attrs.clone(), int(v), starts.agent);
            if let Some(r) = ratio(v, swap_total) {
                out.push(&PAGING_UTIL, attrs, dbl(r), 0);
            }
        }
    }

    fn filesystems(&mut self, out: &mut Metrics, starts: Starts) {
        self.disks.refresh_specifics(true, disk_refresh());
        let mut io_seen = HashSet::new();
        for disk in self.disks.list() {
            let device = disk.name().to_string_lossy();
            let fs_type = disk.file_system().to_string_lossy();
            let total = disk.total_space();
            if !self.exclude_fs_types.contains(fs_type.as_ref()) && total > 0 {
                let free = disk.available_space().min(total);
                let mode = if disk.is_read_only() { "ro" } else { "rw" };
                let attrs = vec![
                    str_kv("system.device", device.as_ref()),
                    str_kv(
                        "system.filesystem.mountpoint",
                        disk.mount_point().to_string_lossy(),
                    ),
                    str_kv("system.filesystem.type", fs_type.as_ref()),
                    str_kv("system.filesystem.mode", mode),
                ];
                for (state, v) in [("used", total - free), ("free", free)] {
                    let mut a = attrs.clone();
                    a.push(str_kv("system.filesystem.state", state));
                    out.push(&FS_USAGE, a, int(v), starts.agent);
                }
                if let Some(r) = ratio(total - free, total) {
                    out.push(&FS_UTIL, attrs, dbl(r), 0);
                }
            }
            // Disk I/O is per block device; several mounts may share one (bind mounts,
            // subvolumes): report each device once.
            let Some(kernel_name) = kernel_device(&mut self.devices, disk.name()) else {
                continue;
            };
            if !io_seen.insert(kernel_name.clone()) {
                continue;
            }
            let usage = disk.usage();
            for (dir, v) in [
                ("read", usage.total_read_bytes),
                ("write", usage.total_written_bytes),
            ] {
                let attrs = vec![
                    str_kv("system.device", kernel_name.as_str()),
                    str_kv("disk.io.direction", dir),
                ];
                out.push(&DISK_IO, attrs, int(v), starts.boot);
            }
        }
    }

    fn networks(&mut self, out: &mut Metrics, starts: Starts) {
        self.networks.refresh(true);
        let mut names: Vec<&String> = self.networks.list().keys().collect();
        names.sort();
        for name in names {
            let Some(data) = self.networks.list().get(name) else {
                continue;
            };
            let series = [
                (&NET_IO, data.total_received(), data.total_transmitted()),
                (
                    &NET_PACKETS,
                    data.total_packets_received(),
                    data.total_packets_transmitted(),
                ),
                (
                    &NET_ERRORS,
                    data.total_errors_on_received(),
                    data.total_errors_on_transmitted(),
                ),
            ];
            for (metric, rx, tx) in series {
                for (dir, v) in [("receive", rx), ("transmit", tx)] {
                    let attrs = vec![
                        str_kv("network.interface.name", name.as_str()),
                        str_kv("network.io.direction", dir),
                    ];
                    out.push(metric, attrs, int(v), starts.boot);
                }
            }
        }
    }
}

/// Space and I/O counters; the disk kind (SSD/HDD) is not needed.
fn disk_refresh() -> DiskRefreshKind {
    DiskRefreshKind::nothing().with_storage().with_io_usage()
}

/// sysinfo's percentage (0..=100) as a fraction (0..=1).
fn pct(p: f32) -> f64 {
    (f64::from(p) / 100.0).clamp(0.0, 1.0)
}

/// The kernel's name for a mounted device (`/dev/mapper/root` → `dm-0`, `/dev/sda1` →
/// `sda1`), as in `/proc/diskstats`; `None` for mounts without a block device (overlay,
/// network file systems). Cached: resolving costs a few syscalls.
fn kernel_device(cache: &mut HashMap<OsString, Option<String>>, device: &OsStr) -> Option<String> {
    if let Some(hit) = cache.get(device) {
        return hit.clone();
    }
    let resolved = if device.to_string_lossy().starts_with("/dev/") {
        let path = std::fs::canonicalize(device).unwrap_or_else(|_| device.into());
        path.strip_prefix("/dev")
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    } else {
        None
    };
    if cache.len() >= 1024 {
        cache.clear();
    }
    cache.insert(device.to_owned(), resolved.clone());
    resolved
}
