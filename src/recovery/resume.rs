//! Where an interrupted `dc` run stopped: a small JSON file named after a hash of the run's
//! arguments, rewritten (write then rename) about once a second while the run copies.
//!
//! Keys are copied in key order, a batch at a time; the file holds the last key of the
//! longest run of finished batches from the start (the watermark) and the counts so far.
//! A run started with the same arguments iterates only the keys above the watermark
//! (ITERATOR with a key range) and continues the counts. A run that reaches its end removes
//! the file, so the next run starts over (and retries what failed).
//!
//! ```text
//! {"arguments": "<the run's arguments>", "after_key": "<128 hex digits>",
//!  "keys_done": N, "copied": N, "failed": N}
//! ```

use crate::key::RawId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the state file is rewritten while batches finish.
const SAVE_PERIOD: Duration = Duration::from_secs(1);

/// What the file holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Saved {
    pub arguments: String,
    pub after_key: String,
    pub keys_done: u64,
    pub copied: u64,
    pub failed: u64,
}

impl Saved {
    /// The watermark key: every key up to it was handled.
    pub fn after(&self) -> Option<RawId> {
        let ok =
            self.after_key.len() == 128 && self.after_key.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| RawId::from_hex_lenient(&self.after_key))
    }
}

/// The state file of one set of arguments.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    arguments: String,
}

impl StateFile {
    /// The file for `arguments` in `dir`.
    pub fn new(dir: &Path, kind: &str, arguments: &str) -> StateFile {
        let digest = Sha256::digest(arguments.as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        StateFile {
            path: dir.join(format!("dnet_recovery-{kind}-{hex}.state")),
            arguments: arguments.to_owned(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What an earlier run with the same arguments saved, if anything.
    pub fn load(&self) -> Option<Saved> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let saved: Saved = serde_json::from_str(&text).ok()?;
        (saved.arguments == self.arguments && saved.after().is_some()).then_some(saved)
    }

    fn tmp_path(&self) -> PathBuf {
        self.path.with_extension("state.tmp")
    }

    fn save(&self, saved: &Saved) -> std::io::Result<()> {
        let tmp = self.tmp_path();
        let text = serde_json::to_string(saved).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)
    }

    /// The run reached its end.
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
        // A run killed between writing and renaming left this behind.
        let _ = std::fs::remove_file(self.tmp_path());
    }
}

/// Finished batches of a run, turned into a watermark and saved now and then.
#[derive(Debug)]
pub struct Tracker {
    file: Option<StateFile>,
    /// The last key of each batch, in batch order.
    last_keys: Vec<RawId>,
    done: BTreeSet<usize>,
    contiguous: usize,
    saved: Saved,
    last_save: Instant,
    base_done: u64,
    planned: u64,
}

impl Tracker {
    /// Track batches as they are planned (`add_batch`); `base` holds the counts of the
    /// earlier runs.
    pub fn new(file: Option<StateFile>, base: Saved) -> Tracker {
        let arguments = file
            .as_ref()
            .map(|f| f.arguments.clone())
            .unwrap_or_default();
        Tracker {
            file,
            last_keys: Vec::new(),
            done: BTreeSet::new(),
            contiguous: 0,
            base_done: base.keys_done,
            saved: Saved { arguments, ..base },
            last_save: Instant::now(),
            planned: 0,
        }
    }

    /// A batch ending at `last_key` (above every earlier batch's keys) was planned and
    /// holds `keys` keys; its index.
    pub fn add_batch(&mut self, last_key: RawId, keys: u64) -> usize {
        self.last_keys.push(last_key);
        self.planned += keys;
        self.last_keys.len() - 1
    }

    /// Keys planned so far, earlier runs included.
    pub fn planned(&self) -> u64 {
        self.base_done + self.planned
    }

    /// Batch `index` finished with `keys` keys, `copied` copies and `failed` failures.
    pub fn finished(&mut self, index: usize, keys: u64, copied: u64, failed: u64) {
        self.done.insert(index);
        self.saved.keys_done += keys;
        self.saved.copied += copied;
        self.saved.failed += failed;
        while self.done.remove(&self.contiguous) {
            self.contiguous += 1;
        }
        if let Some(key) = self
            .contiguous
            .checked_sub(1)
            .and_then(|i| self.last_keys.get(i))
        {
            self.saved.after_key = key.to_hex();
        }
        if self.last_save.elapsed() >= SAVE_PERIOD {
            self.save();
        }
    }

    fn save(&mut self) {
        self.last_save = Instant::now();
        if let Some(file) = &self.file {
            if self.saved.after().is_some() {
                if let Err(e) = file.save(&self.saved) {
                    tracing::warn!(path = %file.path.display(), "state file not written: {e}");
                }
            }
        }
    }

    /// Counts so far, earlier runs included.
    pub fn counts(&self) -> &Saved {
        &self.saved
    }

    /// Every batch finished: the state file goes.
    pub fn complete(&mut self) {
        if let Some(file) = &self.file {
            file.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> RawId {
        RawId([b; 64])
    }

    #[test]
    fn watermark_is_the_end_of_the_finished_prefix() {
        let dir = tempfile::tempdir().expect("dir");
        let file = StateFile::new(dir.path(), "dc", "dc -g 1,2");
        let mut t = Tracker::new(Some(file), Saved::default());
        for k in 1..=3 {
            t.add_batch(key(k), 10);
        }
        assert_eq!(t.planned(), 30);
        t.finished(1, 10, 10, 0);
        assert_eq!(t.counts().after(), None, "batch 0 is not done yet");
        t.finished(0, 10, 9, 1);
        assert_eq!(t.counts().after(), Some(key(2)));
        t.save();
        let again = StateFile::new(dir.path(), "dc", "dc -g 1,2");
        let saved = again.load().expect("saved");
        assert_eq!((saved.keys_done, saved.copied, saved.failed), (20, 19, 1));
        assert!(StateFile::new(dir.path(), "dc", "dc -g 1,3")
            .load()
            .is_none());
        t.complete();
        assert!(again.load().is_none(), "a finished run leaves no state");
    }
}
