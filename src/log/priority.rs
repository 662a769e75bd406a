//! Background work at a lower CPU priority: the log cleaner's threads and the replay of a
//! partition's retained log at start run at an OS niceness above the default, so that the
//! threads serving produce, fetch and Raft (ticks, heartbeats, the disk writer) get the CPU first
//! and the background work uses what is left. The two threads heartbeats depend on ask for a
//! little more than the default ([`HEARTBEAT_NICE`]). Linux `setpriority(PRIO_PROCESS, tid)` changes one
//! thread; a thread cannot take a lowered priority back without privileges, so work that runs
//! on a shared pool gets a thread of its own ([`on_low_priority_thread`]).

/// Sets the calling thread's niceness to `nice` (0: leaves it as it is; below 0 needs
/// privileges, see [`HEARTBEAT_NICE`]).
pub fn set_this_thread_nice(nice: i32) -> std::io::Result<()> {
    if nice == 0 {
        return Ok(());
    }
    rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice).map_err(std::io::Error::from)
}

/// Names the calling thread (Linux `PR_SET_NAME`, at most 15 bytes kept), so that `top -H`,
/// `ps -L` and profiles tell the node's threads apart (actix names every arbiter alike). Best
/// effort: a name the OS refuses leaves the old one.
pub fn name_this_thread(name: &str) {
    if let Ok(c) = std::ffi::CString::new(name.as_bytes().iter().copied().take(15).collect::<Vec<u8>>()) {
        let _ = rustix::thread::set_name(&c);
    }
}

/// Starts an arbiter (an actix event loop on a thread of its own) whose thread is named `name`
/// (see [`name_this_thread`]).
pub fn named_arbiter(name: &'static str) -> actix::prelude::Arbiter {
    named_arbiter_at(name, 0)
}

/// The niceness the threads that carry heartbeats (the ticker, whose beat builds each link's
/// heartbeat frame, and the peers thread, which builds and writes it) ask for: a little above
/// the default, so that on a machine whose cores are all busy (a node replaying a large log
/// beside its peers, stop 28's CI: load 6.5 on 2 cores) the scheduler wakes them first and a
/// heartbeat leaves on time. Best effort: raising a priority needs `CAP_SYS_NICE` (root has it)
/// or a nice rlimit; without it the threads stay at the default, as before.
pub const HEARTBEAT_NICE: i32 = -5;

/// [`named_arbiter`] whose thread also asks for niceness `nice` (0: the default; best effort,
/// see [`HEARTBEAT_NICE`]).
pub fn named_arbiter_at(name: &'static str, nice: i32) -> actix::prelude::Arbiter {
    let arbiter = actix::prelude::Arbiter::new();
    arbiter.spawn_fn(move || {
        name_this_thread(name);
        let _ = set_this_thread_nice(nice);
    });
    arbiter
}

/// Runs `work` on a scoped thread of its own, named `name`, at niceness `nice`, and returns its
/// result (with `nice` 0, or when no thread can be started, on the calling thread). A failure to
/// lower the priority is returned beside the result, for the caller to log: the work runs anyway.
pub fn on_low_priority_thread<T: Send>(
    name: &str,
    nice: i32,
    work: impl FnOnce() -> T + Send,
) -> (T, Option<std::io::Error>) {
    if nice == 0 {
        return (work(), None);
    }
    let work = std::sync::Mutex::new(Some(work));
    let take = || work.lock().unwrap_or_else(|p| p.into_inner()).take().expect("the work runs once");
    std::thread::scope(|s| {
        let run = || {
            let lowered = set_this_thread_nice(nice).err();
            (take()(), lowered)
        };
        match std::thread::Builder::new().name(name.to_string()).spawn_scoped(s, run) {
            Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Err(e) => (take()(), Some(e)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_runs_at_the_niceness_and_the_caller_keeps_its_own() {
        let base = rustix::process::getpriority_process(None).unwrap();
        let nice = (base + 5).min(19);
        let (seen, err) = on_low_priority_thread("test", nice, || rustix::process::getpriority_process(None).unwrap());
        assert!(err.is_none(), "{err:?}");
        assert_eq!(seen, nice);
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), base);
        // Niceness 0 runs on the calling thread, unchanged.
        let (seen, _) = on_low_priority_thread("test", 0, || rustix::process::getpriority_process(None).unwrap());
        assert_eq!(seen, base);
    }
}
