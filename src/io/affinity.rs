//! Pinning a shard thread to a core.
#![allow(unsafe_code)]

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
}
