//! Worker child processes: spawning with the Cocaine argv, cwd and environment, logging
//! their stdout/stderr line by line (tagged with app and worker, bounded by
//! [`output`](super::output)), reaping them, and signalling them. The pipe readers and the
//! reaper are plain threads, off the data path. An exit the node did not ask for (a
//! failure status, or a signal it did not send) is logged at WARN with the last lines of
//! output.

use super::output::Output;
use super::store::Manifest;
use super::SrwError;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The locator address passed to workers (no locator runs; the Python framework only
/// dials it when an app uses Cocaine services).
const LOCATOR_ADDR: &str = "127.0.0.1:10053";

/// A spawned worker process: its pid and whether the reaper has collected it (a pid is
/// never signalled after that, so a reused pid is never hit).
#[derive(Debug, Clone)]
pub struct Child {
    pub pid: u32,
    exited: Arc<AtomicBool>,
    status: Arc<Mutex<Option<ExitStatus>>>,
    /// Set once the node signals the worker: its exit is then expected.
    stopped: Arc<AtomicBool>,
    pub output: Arc<Output>,
}

impl Child {
    pub fn has_exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    /// How the process ended, once reaped ("exit status: 3", "signal: 9 (SIGKILL)").
    pub fn exit_status(&self) -> Option<String> {
        let status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.map(|s| s.to_string())
    }

    /// Signal the worker (SIGTERM, or SIGKILL when `force`) unless it was reaped already (a
    /// reused pid is never hit); its exit is then expected.
    pub fn kill(&self, force: bool) {
        self.stopped.store(true, Ordering::Release);
        if !self.has_exited() {
            kill(self.pid, force);
        }
    }
}

/// A random RFC 4122 version-4 uuid in its text form.
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    if getrandom::getrandom(&mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = nanos.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h.get(0..8).unwrap_or_default(),
        h.get(8..12).unwrap_or_default(),
        h.get(12..16).unwrap_or_default(),
        h.get(16..20).unwrap_or_default(),
        h.get(20..32).unwrap_or_default()
    )
}

/// Start a worker: `slave --app NAME --endpoint SOCK --locator ADDR --protocol 1 --uuid ID`
/// in `app_dir`, with the manifest environment appended; its last `tail_lines` lines of
/// output are kept for the failure log.
pub fn spawn(
    app: &str,
    manifest: &Manifest,
    app_dir: &Path,
    endpoint: &Path,
    uuid: &str,
    tail_lines: usize,
) -> Result<Child, SrwError> {
    let slave = if Path::new(&manifest.slave).is_absolute() {
        Path::new(&manifest.slave).to_path_buf()
    } else {
        app_dir.join(&manifest.slave)
    };
    let mut cmd = Command::new(&slave);
    crate::io::affinity::spread_on_exec(&mut cmd);
    let mut child = cmd
        .arg("--app")
        .arg(app)
        .arg("--endpoint")
        .arg(endpoint)
        .arg("--locator")
        .arg(LOCATOR_ADDR)
        .arg("--protocol")
        .arg("1")
        .arg("--uuid")
        .arg(uuid)
        .current_dir(app_dir)
        .envs(manifest.environment.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SrwError::Spawn(format!("{}: {e}", slave.display())))?;
    let pid = child.id();
    let tag = format!("{app}/{uuid}");
    let output = Output::new(tag.clone(), tail_lines);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let exited = Arc::new(AtomicBool::new(false));
    let status = Arc::new(Mutex::new(None));
    let stopped = Arc::new(AtomicBool::new(false));
    let handle = Child {
        pid,
        exited: exited.clone(),
        status: status.clone(),
        stopped: stopped.clone(),
        output: output.clone(),
    };
    let spawned = std::thread::Builder::new()
        .name(format!("worker-{pid}"))
        .spawn(move || {
            let out = output.clone();
            let out = stdout.map(|s| std::thread::spawn(move || out.read_pipe(s, "stdout")));
            if let Some(err) = stderr {
                output.read_pipe(err, "stderr");
            }
            if let Some(t) = out {
                let _ = t.join();
            }
            let waited = child.wait();
            if let Ok(s) = &waited {
                *status.lock().unwrap_or_else(|p| p.into_inner()) = Some(*s);
            }
            exited.store(true, Ordering::Release);
            let (dropped, cut) = output.dropped();
            match waited {
                Ok(s) if s.success() || stopped.load(Ordering::Acquire) => tracing::info!(
                    worker = %tag, pid, dropped_lines = dropped, cut_bytes = cut,
                    "worker exited: {s}"
                ),
                Ok(s) => tracing::warn!(
                    worker = %tag, pid, dropped_lines = dropped, cut_bytes = cut,
                    "worker exited: {s}; last output: {}", output.tail()
                ),
                Err(e) => tracing::warn!(worker = %tag, pid, "cannot reap worker: {e}"),
            }
        });
    if let Err(e) = spawned {
        kill(pid, true);
        return Err(SrwError::Spawn(format!(
            "cannot start the reaper thread: {e}"
        )));
    }
    Ok(handle)
}

/// Send SIGTERM (or SIGKILL when `force`) to a worker we spawned.
fn kill(pid: u32, force: bool) {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let signal = if force {
        rustix::process::Signal::KILL
    } else {
        rustix::process::Signal::TERM
    };
    let _ = rustix::process::kill_process(pid, signal);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_v4_shaped_and_distinct() {
        let a = new_uuid();
        let b = new_uuid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes().get(14), Some(&b'4'));
    }
}
