//! Creating many new replicas at once (a CreateTopics of thousands of partitions): the files of
//! every new replica in a batch are written first and made durable by one sync round, instead
//! of the 5 fsyncs each new replica made on its own (`raft-vote` and its directory, `raft-state`'s
//! tmp file and directory, the first segment's directory).
//!
//! The order, for a batch of groups under `groups/`:
//! 1. each replica's files (`raft-state` with its voters, `raft-vote`, `raft-commit`'s absence,
//!    the first segment) are written into `groups/.creating-G`, without fsyncs
//!    (`log::without_syncs`);
//! 2. one `syncfs` of the file system that holds `groups/`: every staged file and directory is
//!    durable;
//! 3. each `groups/.creating-G` is renamed to `groups/G`;
//! 4. one fsync of `groups/`: the renames are durable.
//!
//! Only then is a replica opened and started (its first vote or acknowledgement comes after
//! step 4). After a crash, a `groups/G` that exists is complete (its contents were durable before
//! the rename that named it), and a `.creating-G` left over is recognisably absent: the node
//! removes it at start ([`remove_staged`]) and creates the replica again when `__meta` still
//! assigns it.

use std::path::{Path, PathBuf};

use slog::Logger;

use crate::log::{LogError, LogKind, LogOptions};
use crate::raft::storage::GroupStorage;
use crate::raft::{GroupId, GroupSettings};

/// The prefix of a replica's directory while its batch is created.
pub const STAGING_PREFIX: &str = ".creating-";

/// One replica of a batch: its group, its final directory and its voters.
pub struct NewReplica {
    pub group: GroupId,
    pub dir: PathBuf,
    pub voters: Vec<u64>,
    pub settings: GroupSettings,
}

/// Creates the directories of `batch` (all under `groups`) with the order of the module docs.
/// A replica whose directory exists already is left alone.
pub fn create_batch(groups: &Path, batch: &[NewReplica], logger: &Logger) -> Result<(), LogError> {
    if !groups.exists() {
        std::fs::create_dir_all(groups).map_err(|e| LogError::io(groups, e))?;
        if let Some(parent) = groups.parent() {
            crate::log::sync_dir(parent)?;
        }
    }
    let mut staged = Vec::with_capacity(batch.len());
    crate::log::without_syncs(|| -> Result<(), LogError> {
        for r in batch {
            if r.dir.exists() {
                continue;
            }
            let tmp = groups.join(format!("{STAGING_PREFIX}{}", r.group));
            if tmp.exists() {
                std::fs::remove_dir_all(&tmp).map_err(|e| LogError::io(&tmp, e))?;
            }
            let opts = LogOptions {
                segment_bytes: r.settings.segment_bytes,
                index_interval_bytes: r.settings.index_interval_bytes,
                kind: LogKind::KafkaBatches,
            };
            let (mut storage, _) = GroupStorage::open(&tmp, opts, logger)?;
            storage.initialize_voters(&r.voters)?;
            drop(storage);
            staged.push((tmp, r.dir.clone()));
        }
        Ok(())
    })?;
    if staged.is_empty() {
        return Ok(());
    }
    let root = std::fs::File::open(groups).map_err(|e| LogError::io(groups, e))?;
    rustix::fs::syncfs(&root).map_err(|e| LogError::io(groups, e.into()))?;
    for (tmp, dir) in &staged {
        std::fs::rename(tmp, dir).map_err(|e| LogError::io(dir, e))?;
    }
    root.sync_all().map_err(|e| LogError::io(groups, e))?;
    Ok(())
}

/// Removes the staged directories a crash left under `groups` (see the module docs).
pub fn remove_staged(groups: &Path, logger: &Logger) {
    let Ok(entries) = std::fs::read_dir(groups) else { return };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(STAGING_PREFIX) {
            let path = e.path();
            slog::warn!(logger, "removing a replica whose creation did not finish"; "dir" => path.display().to_string());
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::core::PartitionCore;

    fn replica(groups: &Path, g: GroupId) -> NewReplica {
        NewReplica {
            group: g,
            dir: groups.join(g.to_string()),
            voters: vec![1, 2, 3],
            settings: GroupSettings::for_tests(),
        }
    }

    #[test]
    fn a_batch_creates_complete_replicas_that_open_as_new_groups() {
        let root = tempfile::tempdir().unwrap();
        let groups = root.path().join("groups");
        let batch: Vec<_> = (1..=20).map(|g| replica(&groups, g)).collect();
        create_batch(&groups, &batch, &crate::logging::discard()).unwrap();
        let names: Vec<String> =
            std::fs::read_dir(&groups).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        assert_eq!(names.len(), 20);
        assert!(names.iter().all(|n| !n.starts_with(STAGING_PREFIX)), "{names:?}");
        for r in &batch {
            let core =
                PartitionCore::open(&r.dir, r.group, &[9], false, &r.settings, crate::logging::discard()).unwrap();
            // The voters written by the batch, not the ones given at open (the group is not new).
            assert_eq!(core.raft.storage().conf_state().voters, vec![1, 2, 3]);
            assert_eq!((core.raft.last_index(), core.raft.role().term), (0, 0));
        }
    }

    #[test]
    fn a_leftover_staged_replica_is_removed_and_an_existing_one_kept() {
        let root = tempfile::tempdir().unwrap();
        let groups = root.path().join("groups");
        create_batch(&groups, &[replica(&groups, 1)], &crate::logging::discard()).unwrap();
        let vote = std::fs::read(groups.join("1/raft-state")).unwrap();
        // A crash before the rename: the staged directory is absent after the clean-up.
        std::fs::create_dir_all(groups.join(".creating-2")).unwrap();
        std::fs::write(groups.join(".creating-2/raft-state"), b"partial").unwrap();
        remove_staged(&groups, &crate::logging::discard());
        assert!(!groups.join(".creating-2").exists());
        // Creating again leaves the existing replica's files as they are.
        let mut again = replica(&groups, 1);
        again.voters = vec![4, 5, 6];
        create_batch(&groups, &[again], &crate::logging::discard()).unwrap();
        assert_eq!(std::fs::read(groups.join("1/raft-state")).unwrap(), vote);
        assert!(groups.join("1").is_dir());
    }
}
