//! Renders the registry's figures as Prometheus text (version 0.0.4) with the `prometheus`
//! crate's data model and `TextEncoder`: this module only maps figures to metric families
//! (names, labels, types); escaping and the text syntax are the crate's.

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType, Quantile, Summary as SummaryProto,
};
use prometheus::TextEncoder;

use super::samples::{Buckets, Samples};

/// The quantiles every summary exports (`1` is the maximum of the recent samples).
pub const QUANTILES: [f64; 3] = [0.5, 0.99, 1.0];

/// One metric family being filled.
pub struct Family {
    inner: MetricFamily,
}

impl Family {
    pub fn new(name: &str, help: &str, kind: MetricType) -> Family {
        let mut inner = MetricFamily::default();
        inner.set_name(name.to_string());
        inner.set_help(help.to_string());
        inner.set_field_type(kind);
        Family { inner }
    }

    pub fn counter(name: &str, help: &str) -> Family {
        Family::new(name, help, MetricType::COUNTER)
    }

    pub fn gauge(name: &str, help: &str) -> Family {
        Family::new(name, help, MetricType::GAUGE)
    }

    pub fn summary(name: &str, help: &str) -> Family {
        Family::new(name, help, MetricType::SUMMARY)
    }

    pub fn histogram(name: &str, help: &str) -> Family {
        Family::new(name, help, MetricType::HISTOGRAM)
    }

    fn metric(labels: &[(&str, &str)]) -> Metric {
        let mut m = Metric::default();
        m.set_label(
            labels
                .iter()
                .map(|(k, v)| {
                    let mut l = LabelPair::default();
                    l.set_name(k.to_string());
                    l.set_value(v.to_string());
                    l
                })
                .collect(),
        );
        m
    }

    /// Adds one sample of a counter or gauge family.
    pub fn value(&mut self, labels: &[(&str, &str)], value: f64) {
        let mut m = Family::metric(labels);
        match self.inner.get_field_type() {
            MetricType::COUNTER => {
                let mut c = Counter::default();
                c.set_value(value);
                m.set_counter(c);
            }
            _ => {
                let mut g = Gauge::default();
                g.set_value(value);
                m.set_gauge(g);
            }
        }
        self.inner.mut_metric().push(m);
    }

    /// Adds one summary (quantiles of the recent samples, count and sum of all).
    pub fn samples(&mut self, labels: &[(&str, &str)], s: &Samples) {
        let mut m = Family::metric(labels);
        let mut summary = SummaryProto::default();
        summary.set_sample_count(s.count());
        summary.set_sample_sum(s.sum());
        let quantiles = QUANTILES
            .iter()
            .filter_map(|&q| {
                s.quantile(q).map(|v| {
                    let mut p = Quantile::default();
                    p.set_quantile(q);
                    p.set_value(v);
                    p
                })
            })
            .collect();
        summary.set_quantile(quantiles);
        m.set_summary(summary);
        self.inner.mut_metric().push(m);
    }
}

impl Family {
    /// Adds one histogram (cumulative bucket counts, count and sum of every sample).
    pub fn buckets(&mut self, labels: &[(&str, &str)], b: &Buckets) {
        let mut m = Family::metric(labels);
        let mut h = Histogram::default();
        h.set_sample_count(b.count());
        h.set_sample_sum(b.sum());
        h.set_bucket(
            b.cumulative()
                .map(|(bound, n)| {
                    let mut k = Bucket::default();
                    k.set_upper_bound(bound);
                    k.set_cumulative_count(n);
                    k
                })
                .collect(),
        );
        m.set_histogram(h);
        self.inner.mut_metric().push(m);
    }
}

/// The text of `families` (families without samples are left out: the format has no empty
/// family).
pub fn encode(families: Vec<Family>) -> String {
    let families: Vec<MetricFamily> =
        families.into_iter().map(|f| f.inner).filter(|f| !f.get_metric().is_empty()).collect();
    // Encoding fails only on an empty family or name, which are never passed here.
    TextEncoder::new().encode_to_string(&families).unwrap_or_else(|e| format!("# metrics encoding failed: {e}\n"))
}
