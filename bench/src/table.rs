//! The result table: one row per measurement, each against a baseline from the same run.

use std::fmt::Write as _;

/// A measured value with its unit.
#[derive(Clone, Debug)]
pub struct Measure {
    /// The median.
    pub value: f64,
    /// Its unit, e.g. `calls/s`.
    pub unit: &'static str,
}

/// A [`Measure`] from a value and a unit.
pub fn m(value: f64, unit: &'static str) -> Measure {
    Measure { value, unit }
}

/// One line of the table.
#[derive(Clone, Debug)]
pub struct Row {
    /// What was measured through infra.
    pub name: String,
    /// The infra median.
    pub infra: Measure,
    /// What the baseline is, and its median.
    pub baseline: Option<(String, Measure)>,
    /// The target as text (`≥ 0.9×`), and whether the ratio or value meets it.
    pub target: Option<(String, bool)>,
    /// Sizes, sample counts and other facts a reader needs to trust the row.
    pub note: String,
}

impl Row {
    /// infra ÷ baseline.
    pub fn ratio(&self) -> Option<f64> {
        self.baseline
            .as_ref()
            .filter(|(_, b)| b.value != 0.0)
            .map(|(_, b)| self.infra.value / b.value)
    }
}

/// Three significant digits, without scientific notation for the ranges a benchmark sees.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// The markdown table of every row.
pub fn render(rows: &[Row]) -> String {
    let mut s = String::from(
        "| benchmark | infra (median) | baseline | baseline (median) | ratio infra/baseline | target | met | notes |\n\
         |---|---:|---|---:|---:|---|---|---|\n",
    );
    for r in rows {
        let (bname, bval) = match &r.baseline {
            Some((n, b)) => (n.clone(), format!("{} {}", num(b.value), b.unit)),
            None => ("—".into(), "—".into()),
        };
        let ratio = r
            .ratio()
            .map(|x| format!("{}×", num(x)))
            .unwrap_or_else(|| "—".into());
        let (target, met) = match &r.target {
            Some((t, ok)) => (
                t.clone(),
                if *ok { "met" } else { "**missed**" }.to_string(),
            ),
            None => ("—".into(), "—".into()),
        };
        let _ = writeln!(
            s,
            "| {} | {} {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            num(r.infra.value),
            r.infra.unit,
            bname,
            bval,
            ratio,
            target,
            met,
            r.note
        );
    }
    s
}

/// The median of `xs` (the mean of the middle two for an even count); 0 when empty.
pub fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
