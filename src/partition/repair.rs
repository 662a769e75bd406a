//! Entry repair of a partition actor: a damaged committed frame is replaced by an intact copy
//! asked from another replica (the leader, else the other voters of the current configuration
//! in turn), and the copies this replica sends when asked.

use super::PartitionActor;

impl PartitionActor {
    /// Asks another replica for a copy of each damaged entry (at most 16 at a time): the leader
    /// when another node leads, else the other voters in turn.
    pub(super) fn request_repairs(&mut self, tick: u64) {
        let log = self.core.raft.storage().log();
        if !log.has_damage() {
            return;
        }
        let me = self.links.transport.me();
        let leader = self.core.raft.role().leader;
        let others: Vec<u64> = self.core.raft.conf_state().voters.into_iter().filter(|v| *v != me).collect();
        if others.is_empty() {
            return;
        }
        for (k, (index, d)) in log.damaged().into_iter().take(16).enumerate() {
            let to = if leader != 0 && leader != me { leader } else { others[(tick as usize + k) % others.len()] };
            slog::debug!(self.logger, "asking for a copy of a damaged entry"; "index" => index, "term" => d.term, "from_node" => to);
            let repair =
                crate::peer::frame::Repair { group: self.reopen.group, index, term: d.term, entry: Default::default() };
            self.links.transport.send_repair(to, repair);
        }
    }

    /// A repair request (send our copy if it is intact) or a copy (write it over our damage).
    pub(super) fn on_repair(&mut self, from: u64, r: crate::peer::frame::Repair) {
        use protobuf::Message as _;
        if r.entry.is_empty() {
            let log = self.core.raft.storage().log();
            if r.index < log.first_index() || r.index > log.last_index() {
                return;
            }
            match log.entries(r.index, r.index + 1, None) {
                Ok(mut ents) if ents.len() == 1 && ents[0].term == r.term => {
                    let entry = ents.remove(0).write_to_bytes().unwrap_or_default().into();
                    self.links.transport.send_repair(from, crate::peer::frame::Repair { entry, ..r });
                }
                Ok(_) => {}
                Err(e) => {
                    slog::debug!(self.logger, "cannot send a copy of an entry"; "index" => r.index, "error" => %e)
                }
            }
            return;
        }
        let entry = match raft::eraftpb::Entry::parse_from_bytes(&r.entry) {
            Ok(e) if e.index == r.index && e.term == r.term => e,
            _ => {
                slog::warn!(self.logger, "dropping an undecodable or mismatched entry copy"; "from" => from, "index" => r.index);
                return;
            }
        };
        match self.core.raft.repair_entry(&entry) {
            Ok(true) => slog::info!(self.logger, "repaired from a peer"; "from" => from, "index" => r.index),
            Ok(false) => {}
            Err(e) => {
                slog::warn!(self.logger, "an entry copy does not repair the damaged entry"; "from" => from, "index" => r.index, "error" => %e)
            }
        }
    }
}
