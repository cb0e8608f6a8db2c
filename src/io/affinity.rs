//! Pinning a shard thread to a core, and keeping the processes a shard spawns off it.
#![allow(unsafe_code)]

use std::sync::OnceLock;

/// The CPUs the node was started with, read before any shard thread pinned itself.
static NODE_CPUS: OnceLock<Vec<usize>> = OnceLock::new();

/// Remember the calling thread's CPUs as the node's (call once, before pinning threads).
pub fn remember_node_cpus() {
    NODE_CPUS.get_or_init(allowed_cpus);
}

/// Let the program `cmd` runs have every CPU the node was started with, not only the one its
/// spawning shard thread is pinned to (a worker process would otherwise inherit that one
/// CPU and compete with the shard for it). No-op before [`remember_node_cpus`].
pub fn spread_on_exec(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let Some(cpus) = NODE_CPUS.get().filter(|c| !c.is_empty()) else {
        return;
    };
    // SAFETY: a zeroed `cpu_set_t` is a valid empty set; each index came from a mask read by
    // `sched_getaffinity`, so it is below CPU_SETSIZE.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        // SAFETY: as above.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: the closure runs in the forked child before exec and only calls
    // `sched_setaffinity`, which is async-signal-safe, on a set copied into the closure.
    unsafe {
        cmd.pre_exec(move || {
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            Ok(())
        });
    }
}

/// The CPUs the calling thread may run on (its affinity mask, as set by `taskset` or a
/// cgroup), in increasing order; empty when the mask cannot be read.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `cpu_set_t` is a plain bit array for which all-zero is a valid (empty) value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 names the calling thread; `set` is valid for writes of its exact size.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    // SAFETY: every index is below CPU_SETSIZE, inside the set.
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Pin the calling thread to the `index`-th CPU (modulo their number) of those it may run
/// on: shard `i` of a node started under `taskset -c 2,3` runs on CPU 2 or 3, never outside
/// the set it was given. Failure is logged, never fatal: a node without affinity still works.
pub fn pin_current_thread(index: usize) {
    let allowed = allowed_cpus();
    let Some(&cpu) = allowed.get(index % allowed.len().max(1)) else {
        tracing::warn!("could not pin shard thread: its CPU set is unreadable");
        return;
    };
    // SAFETY: `cpu_set_t` is a plain bit array for which all-zero is a valid (empty) value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` came from the thread's own mask, so it is below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 names the calling thread; `set` is a valid, initialised cpu_set_t and its
    // exact size is passed.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        tracing::warn!(
            cpu,
            "could not pin shard thread: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_thread_stays_inside_the_cpus_it_was_given() {
        let before = allowed_cpus();
        assert!(!before.is_empty());
        let last = before.len() - 1;
        let pinned = std::thread::spawn(move || {
            pin_current_thread(last + before.len());
            allowed_cpus()
        })
        .join()
        .unwrap();
        assert_eq!(pinned, vec![allowed_cpus()[last]]);
    }

    /// CPUs of a `Cpus_allowed_list` value such as `0-1,4`.
    fn parse_list(list: &str) -> Vec<usize> {
        let mut cpus = Vec::new();
        for part in list.trim().split(',').filter(|p| !p.is_empty()) {
            let (lo, hi) = part.split_once('-').unwrap_or((part, part));
            cpus.extend(lo.parse::<usize>().unwrap()..=hi.parse::<usize>().unwrap());
        }
        cpus
    }

    #[test]
    fn a_process_spawned_from_a_pinned_thread_runs_on_all_the_node_cpus() {
        remember_node_cpus();
        let node = NODE_CPUS.get().unwrap().clone();
        let out = std::thread::spawn(|| {
            pin_current_thread(0);
            let mut cmd = std::process::Command::new("grep");
            cmd.args(["Cpus_allowed_list", "/proc/self/status"]);
            spread_on_exec(&mut cmd);
            cmd.output().unwrap()
        })
        .join()
        .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let list = text.split(':').nth(1).unwrap();
        assert_eq!(parse_list(list), node);
    }
}
