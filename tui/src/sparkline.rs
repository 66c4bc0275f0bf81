//! Sparklines: a series as one line of block characters. Drawn by the TUI's overview and
//! metrics view, and by the CLI's monitoring tables (`skein services`, `skein metrics`).

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A sparkline of the values (None leaves a gap), scaled from 0 to the largest.
pub fn sparkline(values: &[Option<f64>]) -> String {
    let max = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    values
        .iter()
        .map(|v| match v {
            Some(v) if v.is_finite() && max > 0.0 => {
                let i = ((v / max) * (SPARKS.len() - 1) as f64).round() as usize;
                SPARKS[i.min(SPARKS.len() - 1)]
            }
            Some(_) => SPARKS[0],
            None => ' ',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_and_gaps() {
        assert_eq!(sparkline(&[Some(0.0), Some(5.0), None, Some(10.0)]), "▁▅ █");
        assert_eq!(sparkline(&[Some(0.0), Some(0.0)]), "▁▁");
    }
}
