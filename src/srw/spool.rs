//! App packages: checking a tar (or tar.gz) before it is stored, and unpacking it into
//! `<spool>/<app>` with the permission bits kept and nothing written outside that directory.
//!
//! A package may hold directories, regular files and relative symlinks that resolve inside
//! the app. Refused, with the entry named: absolute paths and `..` components in entry
//! names; any entry whose path runs through a symlink of the package (`d/l -> ..` followed
//! by `d/l/x`); symlinks whose target is absolute, climbs out of the app with `..`, or
//! resolves through another symlink before its last component; hard links; device, fifo
//! and other special entries; more than [`PACKAGE_ENTRIES_MAX`] entries or
//! [`PACKAGE_UNPACKED_BYTES_MAX`] bytes of files.
//!
//! The unpack itself never follows a link either: it builds a fresh directory next to the
//! app's (`<spool>/.<app>.unpack.<pid>.<n>`), checks every parent of every entry with
//! `lstat` (a real directory or nothing, which it then creates), and replaces the app's
//! directory only once every entry is written, so files of an earlier version (or links an
//! earlier, unsafe version left) are gone.

use super::SrwError;
use std::collections::HashSet;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The gzip magic bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Most entries a package may hold.
pub const PACKAGE_ENTRIES_MAX: usize = 100_000;
/// Most bytes of regular files a package may unpack to (a small tar.gz may claim more).
pub const PACKAGE_UNPACKED_BYTES_MAX: u64 = 1 << 30;
/// Permission bits never set on unpacked entries (group and world write).
const UNPACK_MODE_MASK: u32 = 0o022;

/// Staging directories made by this process (their names must differ).
static NEXT_STAGING: AtomicU64 = AtomicU64::new(0);

fn reader(package: &[u8]) -> Box<dyn Read + '_> {
    if package.starts_with(&GZIP_MAGIC) {
        Box::new(flate2::read::GzDecoder::new(package))
    } else {
        Box::new(package)
    }
}

/// A relative path made only of normal components (`.` components are dropped).
fn contained(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

fn refuse(entry: &Path, why: &str) -> SrwError {
    SrwError::Package(format!("entry {:?} {why}", entry.display().to_string()))
}

/// What an accepted entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink(PathBuf),
}

type TarEntry<'a, 'b> = tar::Entry<'a, Box<dyn Read + 'b>>;

/// Walk every entry with its contained path and kind, refusing names and types no app
/// may hold; pax/gnu extension headers are consumed by the tar reader.
fn walk(
    package: &[u8],
    mut on_entry: impl FnMut(&mut TarEntry<'_, '_>, &Path, &Kind) -> Result<(), SrwError>,
) -> Result<(), SrwError> {
    let mut archive = tar::Archive::new(reader(package));
    let entries = archive
        .entries()
        .map_err(|e| SrwError::Package(format!("not a tar archive: {e}")))?;
    let (mut count, mut file_bytes) = (0usize, 0u64);
    for entry in entries {
        let mut entry = entry.map_err(|e| SrwError::Package(format!("bad tar entry: {e}")))?;
        let raw = entry
            .path()
            .map_err(|e| SrwError::Package(format!("bad entry path: {e}")))?
            .into_owned();
        let Some(path) = contained(&raw) else {
            return Err(refuse(&raw, "escapes the app directory"));
        };
        count += 1;
        if count > PACKAGE_ENTRIES_MAX {
            return Err(SrwError::Package(format!(
                "more than {PACKAGE_ENTRIES_MAX} entries"
            )));
        }
        let kind = match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                file_bytes = file_bytes.saturating_add(entry.size());
                if file_bytes > PACKAGE_UNPACKED_BYTES_MAX {
                    return Err(SrwError::Package(format!(
                        "unpacks to more than {PACKAGE_UNPACKED_BYTES_MAX} bytes"
                    )));
                }
                Kind::File
            }
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => {
                let target = entry.link_name().ok().flatten().map(|t| t.into_owned());
                match target {
                    Some(t) if !t.as_os_str().is_empty() => Kind::Symlink(t),
                    _ => return Err(refuse(&raw, "is a symlink without a target")),
                }
            }
            tar::EntryType::Link => return Err(refuse(&raw, "is a hard link (not allowed)")),
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            _ => {
                return Err(refuse(
                    &raw,
                    "has an unsupported type (only files, dirs, symlinks)",
                ))
            }
        };
        if path.as_os_str().is_empty() {
            if kind == Kind::Dir {
                continue;
            }
            return Err(refuse(&raw, "has no name"));
        }
        on_entry(&mut entry, &path, &kind)?;
    }
    Ok(())
}

/// The symlinks a package declares, then each entry checked against them: no entry lies
/// under one, and every link resolves inside the app without passing through another.
fn check_entries(entries: &[(PathBuf, Kind)]) -> Result<(), SrwError> {
    let links: HashSet<&Path> = entries
        .iter()
        .filter(|(_, k)| matches!(k, Kind::Symlink(_)))
        .map(|(p, _)| p.as_path())
        .collect();
    for (path, kind) in entries {
        if let Some(link) = path.ancestors().skip(1).find(|a| links.contains(a)) {
            return Err(refuse(
                path,
                &format!(
                    "lies under the symlink {:?} (entries may not pass through links)",
                    link.display().to_string()
                ),
            ));
        }
        if let Kind::Symlink(target) = kind {
            let base = path.parent().unwrap_or(Path::new(""));
            if let Err(why) = resolve_inside(base, target, &links) {
                return Err(refuse(
                    path,
                    &format!(
                        "is a symlink to {:?} that {why}",
                        target.display().to_string()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Resolve link `target` from the directory `base` (both relative to the app) by text: it
/// must stay inside and name no package link before its last component.
fn resolve_inside(base: &Path, target: &Path, links: &HashSet<&Path>) -> Result<(), &'static str> {
    let mut at = base.to_path_buf();
    let mut parts = target.components().peekable();
    while let Some(c) = parts.next() {
        match c {
            Component::Normal(p) => {
                at.push(p);
                if parts.peek().is_some() && links.contains(at.as_path()) {
                    return Err("resolves through another symlink");
                }
            }
            Component::CurDir => {}
            Component::ParentDir => {
                if !at.pop() {
                    return Err("points outside the app");
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err("is absolute"),
        }
    }
    Ok(())
}

/// Check a package before upload: a readable tar whose entries are all safe and which
/// contains `slave` as a regular file (unless `slave` is an absolute path).
pub fn check_package(package: &[u8], slave: &str) -> Result<(), SrwError> {
    let mut entries = Vec::new();
    walk(package, |_, path, kind| {
        entries.push((path.to_path_buf(), kind.clone()));
        Ok(())
    })?;
    check_entries(&entries)?;
    if Path::new(slave).is_absolute() {
        return Ok(());
    }
    let want = contained(Path::new(slave))
        .ok_or_else(|| SrwError::Manifest(format!("slave {slave:?} escapes the app directory")))?;
    if entries.iter().any(|(p, k)| *p == want && *k == Kind::File) {
        Ok(())
    } else {
        Err(SrwError::Package(format!(
            "the package does not contain the slave {slave:?}"
        )))
    }
}

fn io_error(path: &Path, e: std::io::Error) -> SrwError {
    SrwError::Io(format!("{}: {e}", path.display()))
}

/// Make every parent of `rel` under `root` a real directory: an existing one must not be
/// a symlink (or anything else), a missing one is created.
fn real_parents(root: &Path, rel: &Path) -> Result<(), SrwError> {
    let mut at = root.to_path_buf();
    let parents: Vec<_> = rel
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    for c in parents {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => return Err(refuse(rel, "lies under a symlink or a file")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&at).map_err(|e| io_error(&at, e))?;
            }
            Err(e) => return Err(io_error(&at, e)),
        }
    }
    Ok(())
}

/// Write one entry at `root/rel`, replacing an earlier entry of the same name (a
/// directory is only ever merged with a directory).
fn write_entry(
    entry: &mut TarEntry<'_, '_>,
    root: &Path,
    rel: &Path,
    kind: &Kind,
) -> Result<(), SrwError> {
    real_parents(root, rel)?;
    let dest = root.join(rel);
    match std::fs::symlink_metadata(&dest) {
        Ok(m) if m.file_type().is_dir() => {
            if *kind != Kind::Dir {
                return Err(refuse(rel, "replaces a directory"));
            }
        }
        Ok(_) => std::fs::remove_file(&dest).map_err(|e| io_error(&dest, e))?,
        Err(_) => {}
    }
    entry.set_mask(UNPACK_MODE_MASK);
    entry.unpack(&dest).map_err(|e| io_error(&dest, e))?;
    Ok(())
}

/// Unpack `package` as the app directory `dir`: checked as [`check_package`] does (the
/// slave aside), written into a fresh staging directory beside `dir`, then swapped in.
/// Mode bits come from the tar, less group and world write.
pub fn unpack(package: &[u8], dir: &Path) -> Result<(), SrwError> {
    let mut entries = Vec::new();
    walk(package, |_, path, kind| {
        entries.push((path.to_path_buf(), kind.clone()));
        Ok(())
    })?;
    check_entries(&entries)?;
    let (Some(spool), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(SrwError::Io(format!(
            "{}: not an app directory",
            dir.display()
        )));
    };
    std::fs::create_dir_all(spool).map_err(|e| io_error(spool, e))?;
    let unique = |what: &str| {
        let n = NEXT_STAGING.fetch_add(1, Ordering::Relaxed);
        spool.join(format!(
            ".{}.{what}.{}.{n}",
            name.to_string_lossy(),
            std::process::id()
        ))
    };
    let staging = unique("unpack");
    std::fs::create_dir(&staging).map_err(|e| io_error(&staging, e))?;
    let written = walk(package, |entry, path, kind| {
        write_entry(entry, &staging, path, kind)
    });
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let old = unique("old");
    let had_old = match std::fs::rename(dir, &old) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(io_error(dir, e));
        }
    };
    if let Err(e) = std::fs::rename(&staging, dir) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(io_error(dir, e));
    }
    if had_old {
        // The old directory (or an old link in its place) goes; a link is removed, never
        // followed.
        let _ = std::fs::remove_dir_all(&old).or_else(|_| std::fs::remove_file(&old));
    }
    Ok(())
}
