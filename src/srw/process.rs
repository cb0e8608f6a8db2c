//! Worker child processes: spawning with the Cocaine argv, cwd and environment, logging
//! their stdout/stderr line by line (tagged with app and worker), reaping them, and
//! signalling them. The pipe readers and the reaper are plain threads, off the data path.

use super::store::Manifest;
use super::SrwError;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The locator address passed to workers (no locator runs; the Python framework only
/// dials it when an app uses Cocaine services).
const LOCATOR_ADDR: &str = "127.0.0.1:10053";

/// A spawned worker process: its pid and whether the reaper has collected it (a pid is
/// never signalled after that, so a reused pid is never hit).
#[derive(Debug, Clone)]
pub struct Child {
    pub pid: u32,
    exited: Arc<AtomicBool>,
}

impl Child {
    pub fn has_exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
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
/// in `app_dir`, with the manifest environment appended.
pub fn spawn(
    app: &str,
    manifest: &Manifest,
    app_dir: &Path,
    endpoint: &Path,
    uuid: &str,
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
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let exited = Arc::new(AtomicBool::new(false));
    let reaped = exited.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("worker-{pid}"))
        .spawn(move || {
            let out_tag = tag.clone();
            let out = stdout.map(|s| std::thread::spawn(move || log_lines(s, &out_tag, "stdout")));
            if let Some(err) = stderr {
                log_lines(err, &tag, "stderr");
            }
            if let Some(t) = out {
                let _ = t.join();
            }
            let status = child.wait();
            reaped.store(true, Ordering::Release);
            match status {
                Ok(status) => tracing::info!(worker = %tag, pid, "worker exited: {status}"),
                Err(e) => tracing::warn!(worker = %tag, pid, "cannot reap worker: {e}"),
            }
        });
    if let Err(e) = spawned {
        kill(pid, true);
        return Err(SrwError::Spawn(format!(
            "cannot start the reaper thread: {e}"
        )));
    }
    Ok(Child { pid, exited })
}

fn log_lines(pipe: impl std::io::Read, tag: &str, stream: &str) {
    let reader = BufReader::new(pipe);
    for line in reader.split(b'\n') {
        match line {
            Ok(line) => {
                tracing::info!(worker = %tag, stream, "{}", String::from_utf8_lossy(&line));
            }
            Err(_) => break,
        }
    }
}

/// Send SIGTERM (or SIGKILL when `force`) to a worker we spawned.
pub fn kill(pid: u32, force: bool) {
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
