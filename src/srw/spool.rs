//! App packages: checking a tar (or tar.gz) before it is stored, and unpacking it into
//! `<spool>/<app>` with the permission bits kept and no entry escaping that directory.
//!
//! Refused: absolute paths, `..` components, symlinks whose target is absolute or climbs
//! out with `..`, hard links, device and fifo entries. Directories and regular files only,
//! plus contained symlinks.

use super::SrwError;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The gzip magic bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

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

fn refuse(entry: &str, why: &str) -> SrwError {
    SrwError::Package(format!("entry {entry:?} {why}"))
}

/// Walk every entry, refusing the unsafe ones; returns the contained paths of regular files.
fn walk(
    package: &[u8],
    mut on_entry: impl FnMut(&mut tar::Entry<'_, Box<dyn Read + '_>>, &Path) -> Result<(), SrwError>,
) -> Result<Vec<PathBuf>, SrwError> {
    let mut archive = tar::Archive::new(reader(package));
    let entries = archive
        .entries()
        .map_err(|e| SrwError::Package(format!("not a tar archive: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| SrwError::Package(format!("bad tar entry: {e}")))?;
        let raw = entry
            .path()
            .map_err(|e| SrwError::Package(format!("bad entry path: {e}")))?
            .into_owned();
        let shown = raw.display().to_string();
        let Some(path) = contained(&raw) else {
            return Err(refuse(&shown, "escapes the app directory"));
        };
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => files.push(path.clone()),
            tar::EntryType::Directory => {}
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
                if !symlink_stays_inside(&base, &target) {
                    return Err(refuse(&shown, "is a symlink pointing outside the app"));
                }
            }
            // pax/gnu extension headers are consumed by the tar reader; anything else is
            // not something an app needs.
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            _ => {
                return Err(refuse(
                    &shown,
                    "has an unsupported type (only files, dirs, symlinks)",
                ))
            }
        }
        if path.as_os_str().is_empty() {
            continue;
        }
        on_entry(&mut entry, &path)?;
    }
    Ok(files)
}

fn symlink_stays_inside(base: &Path, target: &Path) -> bool {
    let mut depth: usize = base.components().count();
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => return false,
        }
    }
    true
}

/// Check a package before upload: a readable tar whose entries are all safe and which
/// contains `slave` as a regular file (unless `slave` is an absolute path).
pub fn check_package(package: &[u8], slave: &str) -> Result<(), SrwError> {
    let files = walk(package, |_, _| Ok(()))?;
    if Path::new(slave).is_absolute() {
        return Ok(());
    }
    let want = contained(Path::new(slave))
        .ok_or_else(|| SrwError::Manifest(format!("slave {slave:?} escapes the app directory")))?;
    if files.contains(&want) {
        Ok(())
    } else {
        Err(SrwError::Package(format!(
            "the package does not contain the slave {slave:?}"
        )))
    }
}

/// Unpack `package` into `dir` (created if missing; existing files are overwritten, as
/// Cocaine's spooler did). Mode bits come from the tar.
pub fn unpack(package: &[u8], dir: &Path) -> Result<(), SrwError> {
    std::fs::create_dir_all(dir).map_err(|e| SrwError::Io(format!("{}: {e}", dir.display())))?;
    walk(package, |entry, path| {
        let dest = dir.join(path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| SrwError::Io(format!("{}: {e}", parent.display())))?;
        }
        if entry.header().entry_type().is_symlink() {
            let _ = std::fs::remove_file(&dest);
        }
        entry
            .unpack(&dest)
            .map_err(|e| SrwError::Io(format!("{}: {e}", dest.display())))?;
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tar_of(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data, mode) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(*mode);
            h.set_entry_type(tar::EntryType::Regular);
            // set_path refuses "..", so write the name bytes directly.
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn unpack_keeps_exec_bits() {
        use std::os::unix::fs::PermissionsExt;
        let pkg = tar_of(&[("app.py", b"#!/bin/sh\n", 0o755), ("lib/x", b"x", 0o644)]);
        check_package(&pkg, "app.py").unwrap();
        let dir = tempfile::tempdir().unwrap();
        unpack(&pkg, &dir.path().join("app")).unwrap();
        let mode = std::fs::metadata(dir.path().join("app/app.py"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(std::fs::read(dir.path().join("app/lib/x")).unwrap(), b"x");
    }

    #[test]
    fn dotdot_entry_is_refused_and_nothing_escapes() {
        let pkg = tar_of(&[("../evil", b"x", 0o644)]);
        assert!(matches!(
            check_package(&pkg, "evil"),
            Err(SrwError::Package(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        assert!(unpack(&pkg, &dir.path().join("app")).is_err());
        assert!(!dir.path().join("evil").exists());
    }

    #[test]
    fn missing_slave_and_non_tar_are_refused() {
        let pkg = tar_of(&[("other", b"x", 0o755)]);
        assert!(check_package(&pkg, "app.py").is_err());
        assert!(check_package(b"definitely not a tar archive at all", "a").is_err());
    }

    #[test]
    fn gzipped_tar_is_accepted() {
        use std::io::Write;
        let pkg = tar_of(&[("app", b"bin", 0o755)]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&pkg).unwrap();
        let gz = gz.finish().unwrap();
        check_package(&gz, "app").unwrap();
    }

    #[test]
    fn symlinks_must_stay_inside() {
        assert!(symlink_stays_inside(Path::new("a"), Path::new("../b")));
        assert!(!symlink_stays_inside(Path::new(""), Path::new("../b")));
        assert!(!symlink_stays_inside(
            Path::new("a"),
            Path::new("/etc/passwd")
        ));
    }
}
