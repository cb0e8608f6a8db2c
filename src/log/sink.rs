//! Where log lines go: a file (reopened on SIGHUP, flushed per line under `autoflush`),
//! stderr or stdout, or the local syslog socket. Each sink is a `MakeWriter` whose writer
//! collects one line and hands it to the sink whole, so lines of different threads never
//! interleave.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use tracing_subscriber::fmt::MakeWriter;

/// Bytes a file sink without `autoflush` buffers before writing.
const FILE_BUFFER_BYTES: usize = 64 * 1024;

/// The syslog socket of the local machine.
const SYSLOG_SOCKET: &str = "/dev/log";

/// Syslog facility `user` (1), shifted as the priority field wants it.
const SYSLOG_FACILITY_USER: u8 = 1 << 3;

/// A log file that can be reopened under the same path (logrotate moves it, then sends
/// SIGHUP).
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    autoflush: bool,
    file: Mutex<BufWriter<File>>,
}

impl FileSink {
    fn open_file(path: &Path) -> io::Result<File> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    }

    /// Open (append, create) `path`.
    pub fn open(path: &Path, autoflush: bool) -> io::Result<Arc<FileSink>> {
        let file = Self::open_file(path)?;
        let sink = Arc::new(FileSink {
            path: path.to_path_buf(),
            autoflush,
            file: Mutex::new(BufWriter::with_capacity(FILE_BUFFER_BYTES, file)),
        });
        if let Ok(mut all) = open_files().lock() {
            all.push(Arc::downgrade(&sink));
        }
        Ok(sink)
    }

    fn write_line(&self, line: &[u8]) {
        if let Ok(mut file) = self.file.lock() {
            let _ = file.write_all(line);
            if self.autoflush {
                let _ = file.flush();
            }
        }
    }

    /// Flush what is buffered, then open the path anew (a moved file keeps what it had).
    pub fn reopen(&self) -> io::Result<()> {
        let fresh = Self::open_file(&self.path)?;
        let mut file = self.file.lock().map_err(|_| io::Error::other("poisoned"))?;
        let _ = file.flush();
        *file = BufWriter::with_capacity(FILE_BUFFER_BYTES, fresh);
        Ok(())
    }

    pub fn flush(&self) {
        if let Ok(mut file) = self.file.lock() {
            let _ = file.flush();
        }
    }
}

fn open_files() -> &'static Mutex<Vec<Weak<FileSink>>> {
    static FILES: OnceLock<Mutex<Vec<Weak<FileSink>>>> = OnceLock::new();
    FILES.get_or_init(|| Mutex::new(Vec::new()))
}

/// Reopen every log file (SIGHUP). Returns the paths that failed, with why.
pub fn reopen_files() -> Vec<(PathBuf, io::Error)> {
    let files: Vec<Arc<FileSink>> = match open_files().lock() {
        Ok(all) => all.iter().filter_map(Weak::upgrade).collect(),
        Err(_) => return Vec::new(),
    };
    files
        .iter()
        .filter_map(|f| f.reopen().err().map(|e| (f.path.clone(), e)))
        .collect()
}

/// Write out what file sinks without `autoflush` hold.
pub fn flush_files() {
    if let Ok(all) = open_files().lock() {
        for f in all.iter().filter_map(Weak::upgrade) {
            f.flush();
        }
    }
}

/// One configured destination.
#[derive(Debug, Clone)]
pub enum Sink {
    File(Arc<FileSink>),
    Stderr,
    Stdout,
    /// The local syslog socket, with the identity lines are tagged with.
    Syslog(Arc<Syslog>),
}

impl Sink {
    /// Whether lines may carry colour: only a terminal gets it.
    pub fn is_terminal(&self) -> bool {
        match self {
            Sink::Stderr => io::stderr().is_terminal(),
            Sink::Stdout => io::stdout().is_terminal(),
            Sink::File(_) | Sink::Syslog(_) => false,
        }
    }

    fn write_line(&self, line: &[u8]) {
        match self {
            Sink::File(f) => f.write_line(line),
            Sink::Stderr => {
                let _ = io::stderr().lock().write_all(line);
            }
            Sink::Stdout => {
                let _ = io::stdout().lock().write_all(line);
            }
            Sink::Syslog(s) => s.send(line),
        }
    }
}

/// A connection to the local syslog daemon (RFC 3164 datagrams).
#[derive(Debug)]
pub struct Syslog {
    socket: std::os::unix::net::UnixDatagram,
    identity: String,
}

impl Syslog {
    pub fn connect(identity: &str) -> io::Result<Syslog> {
        let socket = std::os::unix::net::UnixDatagram::unbound()?;
        socket.connect(SYSLOG_SOCKET)?;
        Ok(Syslog {
            socket,
            identity: identity.to_string(),
        })
    }

    fn send(&self, line: &[u8]) {
        // The severity follows the line's own severity word; the time is the daemon's.
        let text = String::from_utf8_lossy(line);
        let severity: u8 = if text.contains(" ERROR: ") {
            3
        } else if text.contains(" WARNING: ") {
            4
        } else if text.contains(" INFO: ") {
            6
        } else {
            7
        };
        let message = text
            .split_once(": ")
            .map_or(text.as_ref(), |(_, m)| m)
            .trim_end();
        let datagram = format!(
            "<{}>{}[{}]: {message}",
            SYSLOG_FACILITY_USER | severity,
            self.identity,
            std::process::id()
        );
        let _ = self.socket.send(datagram.as_bytes());
    }
}

/// `MakeWriter` for one sink: each line is collected, then written whole.
#[derive(Debug, Clone)]
pub struct SinkWriter(pub Sink);

/// One line on its way to a sink.
#[derive(Debug)]
pub struct LineBuffer {
    sink: Sink,
    line: Vec<u8>,
}

impl Write for LineBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.sink.write_line(&self.line);
        }
    }
}

impl<'a> MakeWriter<'a> for SinkWriter {
    type Writer = LineBuffer;

    fn make_writer(&'a self) -> LineBuffer {
        LineBuffer {
            sink: self.0.clone(),
            line: Vec::with_capacity(256),
        }
    }
}
