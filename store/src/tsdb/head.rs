//! The in-memory head of the store (stub while the store is built).

use super::*;

pub(crate) struct Shared {
    cfg: TsdbConfig,
}

impl Shared {
    pub(crate) fn open(cfg: TsdbConfig) -> Result<Shared> {
        Ok(Shared { cfg })
    }
    pub(crate) fn append(&self, batch: &MetricBatch) -> Result<AppendReport> {
        let _ = (&self.cfg, batch);
        Ok(AppendReport::default())
    }
    pub(crate) fn persist(&self) -> Result<()> {
        Ok(())
    }
    pub(crate) fn maintain(&self) -> Result<()> {
        Ok(())
    }
    pub(crate) fn stats(&self) -> TsdbStats {
        TsdbStats::default()
    }
    pub(crate) fn metrics(&self) -> Vec<MetricInfo> {
        Vec::new()
    }
    pub(crate) fn metric(&self, _family: &str) -> Option<MetricInfo> {
        None
    }
    pub(crate) fn label_names(&self, _family: Option<&str>) -> Vec<String> {
        Vec::new()
    }
    pub(crate) fn label_values(&self, _label: &str, _family: Option<&str>) -> Vec<String> {
        Vec::new()
    }
    pub(crate) fn select(
        &self,
        _name: &str,
        _matchers: &[Matcher],
        _start: i64,
        _end: i64,
        _max_series: usize,
    ) -> Result<Vec<SelectedSeries>> {
        Ok(Vec::new())
    }
}
