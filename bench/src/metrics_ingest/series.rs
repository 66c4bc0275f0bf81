//! The generated host-metric series: 20 metric names and the point attributes that make each
//! series of a host distinct.

/// Metric names of the generated host metrics: name, unit, scale of the values, the label
/// whose value cycles through a list, and the label that counts up (`cpu="0"`,
/// `device="eth1"`) so that a host can have as many series of a metric as needed.
pub(super) struct MetricDef {
    pub(super) name: &'static str,
    pub(super) unit: &'static str,
    pub(super) scale: f64,
    cycle: (&'static str, &'static [&'static str]),
    count: (&'static str, &'static str),
}

const CPU_STATES: &[&str] = &["user", "system", "idle", "iowait"];
const MEM_STATES: &[&str] = &["used", "free", "cached", "buffered", "slab_reclaimable"];
const DIRECTIONS: &[&str] = &["read", "write"];
const NET_DIRECTIONS: &[&str] = &["transmit", "receive"];
const FS_STATES: &[&str] = &["used", "free", "reserved"];
const TCP_STATES: &[&str] = &[
    "ESTABLISHED",
    "TIME_WAIT",
    "CLOSE_WAIT",
    "LISTEN",
    "SYN_SENT",
];
const PROC_STATUS: &[&str] = &["running", "sleeping", "blocked"];
const PAGING: &[&str] = &["used", "free"];
const ONE: &[&str] = &["all"];

pub(super) const METRICS: [MetricDef; 20] = [
    MetricDef {
        name: "system.cpu.utilization",
        unit: "1",
        scale: 1.0,
        cycle: ("state", CPU_STATES),
        count: ("cpu", ""),
    },
    MetricDef {
        name: "system.cpu.time",
        unit: "s",
        scale: 1e5,
        cycle: ("state", CPU_STATES),
        count: ("cpu", ""),
    },
    MetricDef {
        name: "system.cpu.frequency",
        unit: "Hz",
        scale: 3e9,
        cycle: ("kind", ONE),
        count: ("cpu", ""),
    },
    MetricDef {
        name: "system.memory.usage",
        unit: "By",
        scale: 8e9,
        cycle: ("state", MEM_STATES),
        count: ("numa_node", ""),
    },
    MetricDef {
        name: "system.memory.utilization",
        unit: "1",
        scale: 1.0,
        cycle: ("state", MEM_STATES),
        count: ("numa_node", ""),
    },
    MetricDef {
        name: "system.disk.io",
        unit: "By",
        scale: 1e11,
        cycle: ("direction", DIRECTIONS),
        count: ("device", "nvme0n"),
    },
    MetricDef {
        name: "system.disk.operations",
        unit: "{operation}",
        scale: 1e7,
        cycle: ("direction", DIRECTIONS),
        count: ("device", "nvme0n"),
    },
    MetricDef {
        name: "system.disk.io_time",
        unit: "s",
        scale: 1e4,
        cycle: ("kind", ONE),
        count: ("device", "nvme0n"),
    },
    MetricDef {
        name: "system.disk.pending_operations",
        unit: "{operation}",
        scale: 20.0,
        cycle: ("kind", ONE),
        count: ("device", "nvme0n"),
    },
    MetricDef {
        name: "system.filesystem.usage",
        unit: "By",
        scale: 5e11,
        cycle: ("state", FS_STATES),
        count: ("device", "nvme0n1p"),
    },
    MetricDef {
        name: "system.filesystem.utilization",
        unit: "1",
        scale: 1.0,
        cycle: ("kind", ONE),
        count: ("device", "nvme0n1p"),
    },
    MetricDef {
        name: "system.network.io",
        unit: "By",
        scale: 1e12,
        cycle: ("direction", NET_DIRECTIONS),
        count: ("device", "eth"),
    },
    MetricDef {
        name: "system.network.packets",
        unit: "{packet}",
        scale: 1e9,
        cycle: ("direction", NET_DIRECTIONS),
        count: ("device", "eth"),
    },
    MetricDef {
        name: "system.network.errors",
        unit: "{error}",
        scale: 100.0,
        cycle: ("direction", NET_DIRECTIONS),
        count: ("device", "eth"),
    },
    MetricDef {
        name: "system.network.dropped",
        unit: "{packet}",
        scale: 1000.0,
        cycle: ("direction", NET_DIRECTIONS),
        count: ("device", "eth"),
    },
    MetricDef {
        name: "system.network.connections",
        unit: "{connection}",
        scale: 500.0,
        cycle: ("state", TCP_STATES),
        count: ("protocol", "tcp"),
    },
    MetricDef {
        name: "system.paging.usage",
        unit: "By",
        scale: 2e9,
        cycle: ("state", PAGING),
        count: ("device", "swap"),
    },
    MetricDef {
        name: "system.processes.count",
        unit: "{process}",
        scale: 400.0,
        cycle: ("status", PROC_STATUS),
        count: ("cgroup", "slice"),
    },
    MetricDef {
        name: "system.cpu.load_average.1m",
        unit: "{thread}",
        scale: 4.0,
        cycle: ("kind", ONE),
        count: ("cpu_set", ""),
    },
    MetricDef {
        name: "system.uptime",
        unit: "s",
        scale: 1e6,
        cycle: ("kind", ONE),
        count: ("boot", ""),
    },
];

/// One generated series: host, metric and its two point attributes.
#[derive(Debug, Clone)]
pub(super) struct SeriesDef {
    pub(super) host: usize,
    pub(super) metric: usize,
    pub(super) attrs: [(&'static str, String); 2],
}

/// The series, host by host: series `i` is on host `i / per_host`; within a host the
/// metrics take turns, and the n-th series of a metric on a host gets variant n (its
/// cycling label takes the next value, and the counting label goes up once they are used).
pub(super) fn series_defs(series: usize, hosts: usize) -> Vec<SeriesDef> {
    let per_host = series.div_ceil(hosts.max(1)).max(1);
    (0..series)
        .map(|i| {
            let (host, k) = (i / per_host, i % per_host);
            let metric = k % METRICS.len();
            let v = k / METRICS.len();
            let m = &METRICS[metric];
            let (cname, cvals) = m.cycle;
            let (nname, prefix) = m.count;
            SeriesDef {
                host,
                metric,
                attrs: [
                    (cname, cvals[v % cvals.len()].to_string()),
                    (nname, format!("{prefix}{}", v / cvals.len())),
                ],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn series_are_unique_and_counted() {
        for (n, hosts) in [(10_000, 100), (2000, 100), (37, 5), (1, 100)] {
            let defs = series_defs(n, hosts);
            assert_eq!(defs.len(), n);
            let keys: HashSet<String> = defs
                .iter()
                .map(|d| format!("{}/{}/{:?}", d.host, d.metric, d.attrs))
                .collect();
            assert_eq!(keys.len(), n);
            assert!(defs.iter().all(|d| d.host < hosts));
        }
    }
}
