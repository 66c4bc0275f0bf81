//! The metrics store's reads, as one seam: [`MetricReads`].
//!
//! Every metric route (queries, names, labels, services, dependencies) and the alert engine's
//! metric rules read through it. On one node it is the node's [`Tsdb`]. In a cluster the
//! cluster crate answers it by reading every partition's store and merging, so those routes
//! work on any node with no code of their own. Series of different partitions are listed side
//! by side: the span-derived ones repeat a label set once per partition, and every view sums
//! over them. New metric features (PromQL) should read through it too, and merge repeated
//! label sets before they are shown.

use skein_store::tsdb::{Matcher, MetricInfo, SelectedSeries, Tsdb};
use std::collections::BTreeMap;

/// The reads of a metrics store.
pub trait MetricReads: Send + Sync {
    /// Every metric family.
    fn metrics(&self) -> Vec<MetricInfo>;
    /// One family (`x` for the series `x_bucket`, `x_sum`, `x_count`).
    fn metric(&self, family: &str) -> Option<MetricInfo>;
    /// Label names, of one family or of all, sorted.
    fn label_names(&self, family: Option<&str>) -> Vec<String>;
    /// Values of one label, of one family or of all, sorted.
    fn label_values(&self, label: &str, family: Option<&str>) -> Vec<String>;
    /// The series named `name` passing every matcher, with their chunks overlapping
    /// `[start, end]` (ms); more than `max_series` is an error saying so.
    fn select(
        &self,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        max_series: usize,
    ) -> skein_store::Result<Vec<SelectedSeries>>;
}

impl MetricReads for Tsdb {
    fn metrics(&self) -> Vec<MetricInfo> {
        Tsdb::metrics(self)
    }
    fn metric(&self, family: &str) -> Option<MetricInfo> {
        Tsdb::metric(self, family)
    }
    fn label_names(&self, family: Option<&str>) -> Vec<String> {
        Tsdb::label_names(self, family)
    }
    fn label_values(&self, label: &str, family: Option<&str>) -> Vec<String> {
        Tsdb::label_values(self, label, family)
    }
    fn select(
        &self,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        max_series: usize,
    ) -> skein_store::Result<Vec<SelectedSeries>> {
        Tsdb::select(self, name, matchers, start, end, max_series)
    }
}

/// Merges the families of several stores: one entry per name, series counts added.
pub fn merge_metrics(parts: impl IntoIterator<Item = Vec<MetricInfo>>) -> Vec<MetricInfo> {
    let mut by: BTreeMap<String, MetricInfo> = BTreeMap::new();
    for m in parts.into_iter().flatten() {
        match by.get_mut(&m.name) {
            Some(e) => e.series += m.series,
            None => {
                by.insert(m.name.clone(), m);
            }
        }
    }
    by.into_values().collect()
}

/// Merges sorted lists of names into one sorted list without repeats.
pub fn merge_names(parts: impl IntoIterator<Item = Vec<String>>) -> Vec<String> {
    let mut all: Vec<String> = parts.into_iter().flatten().collect();
    all.sort();
    all.dedup();
    all
}
