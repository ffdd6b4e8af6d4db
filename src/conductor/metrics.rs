//! The conductor's Prometheus metrics: deploy counters, nodes per provision state, and the
//! text of other modules' renderers (cache, image server) registered at start-up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Renders one module's metrics in the Prometheus text format.
pub type MetricsSource = Arc<dyn Fn() -> String + Send + Sync>;

/// Counters the conductor bumps, and the registered sources.
#[derive(Default)]
pub struct Metrics {
    pub deploys_started: AtomicU64,
    pub deploys_succeeded: AtomicU64,
    pub deploys_failed: AtomicU64,
    pub nodes_taken_over: AtomicU64,
    /// Cache leases released at start-up because no node recorded them.
    pub leases_reconciled: AtomicU64,
    /// Publications revoked at start-up because no node in use recorded them.
    pub publications_reconciled: AtomicU64,
    sources: Mutex<Vec<MetricsSource>>,
}

impl Metrics {
    pub fn add_source(&self, source: MetricsSource) {
        self.sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(source);
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The whole exposition: counters, then `nodes` (provision state, count) as a gauge per
    /// state, then every source's text.
    pub fn render(&self, nodes: &[(String, i64)]) -> String {
        let mut s = String::new();
        for (name, v) in [
            ("ironcast_deploys_started_total", &self.deploys_started),
            ("ironcast_deploys_succeeded_total", &self.deploys_succeeded),
            ("ironcast_deploys_failed_total", &self.deploys_failed),
            ("ironcast_nodes_taken_over_total", &self.nodes_taken_over),
            ("ironcast_leases_reconciled_total", &self.leases_reconciled),
            (
                "ironcast_publications_reconciled_total",
                &self.publications_reconciled,
            ),
        ] {
            let v = v.load(Ordering::Relaxed);
            s.push_str(&format!("# TYPE {name} counter\n{name} {v}\n"));
        }
        s.push_str("# TYPE ironcast_nodes gauge\n");
        for (state, count) in nodes {
            let state = state.replace('\\', "\\\\").replace('"', "\\\"");
            s.push_str(&format!(
                "ironcast_nodes{{provision_state=\"{state}\"}} {count}\n"
            ));
        }
        let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        for source in sources.iter() {
            s.push_str(&source());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_per_state_and_sources() {
        let m = Metrics::default();
        Metrics::bump(&m.deploys_started);
        Metrics::bump(&m.deploys_started);
        Metrics::bump(&m.deploys_failed);
        m.add_source(Arc::new(|| "# TYPE x gauge\nx 7\n".to_string()));
        let text = m.render(&[("active".into(), 3), ("deploy failed".into(), 1)]);
        assert!(
            text.contains("ironcast_deploys_started_total 2\n"),
            "{text}"
        );
        assert!(text.contains("ironcast_deploys_failed_total 1\n"), "{text}");
        assert!(
            text.contains("ironcast_nodes{provision_state=\"active\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("ironcast_nodes{provision_state=\"deploy failed\"} 1\n"));
        assert!(text.ends_with("x 7\n"));
    }
}
