//! The overview's state: the order and selected row of the services table, and the hosts'
//! recent resource figures behind their sparklines. The services, hosts and alerts themselves
//! are the shared [`Snapshot`], which the alerts view reads too.

use crate::app::Snapshot;
use skein_model::metrics_api::ServiceHealth;
use std::collections::BTreeMap;

/// How the services table is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// By name.
    Name,
    /// Busiest first.
    Rate,
    /// Most failing first.
    Errors,
    /// Slowest p99 first.
    P99,
}

impl SortBy {
    /// Next order (`s` cycles).
    pub fn next(self) -> SortBy {
        match self {
            SortBy::Name => SortBy::Rate,
            SortBy::Rate => SortBy::Errors,
            SortBy::Errors => SortBy::P99,
            SortBy::P99 => SortBy::Name,
        }
    }

    /// In words, for the table title.
    pub fn label(self) -> &'static str {
        match self {
            SortBy::Name => "name",
            SortBy::Rate => "rate",
            SortBy::Errors => "error %",
            SortBy::P99 => "p99",
        }
    }
}

/// A host's recent resource figures (oldest first), for the overview's sparklines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostSeries {
    /// CPU in use, 0 to 1.
    pub cpu: Vec<f64>,
    /// Memory in use, 0 to 1.
    pub mem: Vec<f64>,
    /// The fullest filesystem, 0 to 1.
    pub disk: Vec<f64>,
    /// Network bytes per second, both ways.
    pub net: Vec<f64>,
}

/// What the overview shows and how.
#[derive(Debug, Clone)]
pub struct Overview {
    /// Services order.
    pub sort: SortBy,
    /// Selected row of the services table.
    pub selected: usize,
    /// Hosts' recent resource figures, by host.
    pub host_series: BTreeMap<String, HostSeries>,
}

impl Default for Overview {
    fn default() -> Overview {
        Overview {
            sort: SortBy::Name,
            selected: 0,
            host_series: BTreeMap::new(),
        }
    }
}

impl Overview {
    /// The services of `data` in the chosen order.
    pub fn services<'a>(&self, data: Option<&'a Snapshot>) -> Vec<&'a ServiceHealth> {
        let Some(d) = data else {
            return Vec::new();
        };
        let mut v: Vec<&ServiceHealth> = d.services.services.iter().collect();
        let desc = |a: Option<f64>, b: Option<f64>| {
            b.unwrap_or(f64::MIN)
                .partial_cmp(&a.unwrap_or(f64::MIN))
                .unwrap_or(std::cmp::Ordering::Equal)
        };
        match self.sort {
            SortBy::Name => v.sort_by(|a, b| a.name.cmp(&b.name)),
            SortBy::Rate => v.sort_by(|a, b| desc(Some(a.rate), Some(b.rate))),
            SortBy::Errors => v.sort_by(|a, b| desc(a.error_rate, b.error_rate)),
            SortBy::P99 => v.sort_by(|a, b| desc(a.p99_ms, b.p99_ms)),
        }
        v
    }
}
