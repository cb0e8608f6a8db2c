//! Pinning a shard thread to a core.
#![allow(unsafe_code)]

/// Pin the calling thread to CPU `index % cpus`. Failure is logged, never fatal: a node
/// without affinity still works.
pub fn pin_current_thread(index: usize) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = index % cpus;
    // SAFETY: `cpu_set_t` is a plain bit array for which all-zero is a valid (empty) value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` < available CPUs <= CPU_SETSIZE, so the bit is inside the set.
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
