//! The transaction coordinator's figures (`txn::actor`): per node, the open transactions it
//! coordinates (a gauge) and the transactions it completed, by result (counters). Kept under
//! their own lock in the [`Registry`].

use std::collections::BTreeMap;

use super::exposition::Family;
use super::Registry;

#[derive(Debug, Default)]
pub(super) struct Figures {
    /// node → (open, committed, aborted)
    nodes: BTreeMap<u64, (u64, u64, u64)>,
}

impl Registry {
    fn txn_with<T>(&self, f: impl FnOnce(&mut Figures) -> T) -> T {
        f(&mut self.transactions.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The open transactions (Ongoing or preparing) the coordinator on `node` holds.
    pub fn txn_open(&self, node: u64, open: u64) {
        self.txn_with(|f| f.nodes.entry(node).or_default().0 = open);
    }

    /// The coordinator on `node` completed a transaction (its markers are all written).
    pub fn txn_completed(&self, node: u64, commit: bool) {
        self.txn_with(|f| {
            let e = f.nodes.entry(node).or_default();
            if commit {
                e.1 += 1;
            } else {
                e.2 += 1;
            }
        });
    }

    /// (open, committed, aborted) of `node`.
    pub fn txn_figures(&self, node: u64) -> (u64, u64, u64) {
        self.txn_with(|f| f.nodes.get(&node).copied().unwrap_or_default())
    }
}

/// The transaction families, for the nodes `keep` accepts.
pub(super) fn families(r: &Registry, keep: &dyn Fn(u64) -> bool) -> Vec<Family> {
    r.txn_with(|f| {
        let mut open = Family::gauge(
            "chronik_transactions_open",
            "Open transactions (Ongoing, PrepareCommit, PrepareAbort) of the coordinator on this node.",
        );
        let mut done = Family::counter(
            "chronik_transactions_completed_total",
            "Transactions the coordinator on this node completed, by `result` (commit or abort).",
        );
        for (n, (o, c, a)) in f.nodes.iter().filter(|(n, _)| keep(**n)) {
            let n = n.to_string();
            open.value(&[("node", n.as_str())], *o as f64);
            done.value(&[("node", n.as_str()), ("result", "commit")], *c as f64);
            done.value(&[("node", n.as_str()), ("result", "abort")], *a as f64);
        }
        vec![open, done]
    })
}
