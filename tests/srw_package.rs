//! App packages on a real filesystem: what `dnet_srw app upload` checks and `start-task`
//! unpacks. Links may not carry an entry out of the app (the chain `d/l -> ..`,
//! `d/l/m -> ..`, … then `d/l/m/n/o/pwned`), nor may absolute or escaping links, hard links
//! or special files get in.
#![allow(clippy::unwrap_used)]

use elliptics::srw::spool::{check_package, unpack};
use elliptics::srw::SrwError;

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

/// A tar of `(name, kind, link target or file bytes)` entries, names written raw.
fn tar_raw(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, extra) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        let data: &[u8] = if *kind == tar::EntryType::Regular {
            extra.as_bytes()
        } else {
            b""
        };
        h.set_size(data.len() as u64);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if *kind != tar::EntryType::Regular {
            gnu.linkname[..extra.len()].copy_from_slice(extra.as_bytes());
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Check and unpack `pkg` into `<tmp>/spool/app`; the error of each, and what appeared
/// outside the app directory.
fn try_both(pkg: &[u8]) -> (Result<(), SrwError>, Result<(), SrwError>, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let spool = tmp.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let checked = check_package(pkg, "app.py");
    let unpacked = unpack(pkg, &spool.join("app"));
    let mut outside: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .chain(std::fs::read_dir(&spool).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "spool" && n != "app")
        .collect();
    outside.sort();
    (checked, unpacked, outside)
}

fn refused_everywhere(pkg: &[u8], why: &str) {
    let (checked, unpacked, outside) = try_both(pkg);
    for r in [&checked, &unpacked] {
        match r {
            Err(SrwError::Package(m)) => assert!(m.contains(why), "{m}"),
            other => panic!("expected a refusal ({why}), got {other:?}"),
        }
    }
    assert!(outside.is_empty(), "written outside the app: {outside:?}");
}

#[test]
fn chain_of_dotdot_links_cannot_carry_a_file_out_of_the_app() {
    use tar::EntryType::{Directory, Regular, Symlink};
    let pkg = tar_raw(&[
        ("app.py", Regular, "#!/bin/sh\n"),
        ("d", Directory, ""),
        ("d/l", Symlink, ".."),
        ("d/l/m", Symlink, ".."),
        ("d/l/m/n", Symlink, ".."),
        ("d/l/m/n/o", Symlink, ".."),
        ("d/l/m/n/o/pwned", Regular, "owned\n"),
    ]);
    refused_everywhere(&pkg, "lies under the symlink");
}

#[test]
fn absolute_and_escaping_links_are_refused() {
    use tar::EntryType::{Regular, Symlink};
    let app = ("app.py", Regular, "#!/bin/sh\n");
    refused_everywhere(&tar_raw(&[app, ("etc", Symlink, "/etc")]), "is absolute");
    refused_everywhere(&tar_raw(&[app, ("up", Symlink, "..")]), "points outside");
    refused_everywhere(
        &tar_raw(&[app, ("a/b", Symlink, "../../x")]),
        "points outside",
    );
    // Each link alone stays inside; together `y` would reach the spool.
    refused_everywhere(
        &tar_raw(&[app, ("d/y", Symlink, "../x/.."), ("x", Symlink, ".")]),
        "through another symlink",
    );
}

#[test]
fn hard_links_and_special_files_are_refused() {
    use tar::EntryType::{Block, Char, Fifo, Link, Regular};
    let app = ("app.py", Regular, "#!/bin/sh\n");
    refused_everywhere(&tar_raw(&[app, ("h", Link, "app.py")]), "hard link");
    refused_everywhere(&tar_raw(&[app, ("h", Link, "/etc/shadow")]), "hard link");
    for kind in [Char, Block, Fifo] {
        refused_everywhere(&tar_raw(&[app, ("dev", kind, "")]), "unsupported type");
    }
}

#[test]
fn contained_links_are_kept_and_a_new_version_replaces_the_old_directory() {
    use tar::EntryType::{Directory, Regular, Symlink};
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    // What an earlier, unsafe unpack may have left: the app directory a link outside.
    std::fs::create_dir(tmp.path().join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("elsewhere"), &app).unwrap();
    let pkg = tar_raw(&[
        ("app.py", Regular, "#!/bin/sh\n"),
        ("lib", Directory, ""),
        ("lib/real.py", Regular, "x = 1\n"),
        ("lib/alias.py", Symlink, "real.py"),
        ("top", Symlink, "lib/../app.py"),
    ]);
    check_package(&pkg, "app.py").unwrap();
    unpack(&pkg, &app).unwrap();
    assert!(!std::fs::symlink_metadata(&app)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(app.join("lib/alias.py")).unwrap(), b"x = 1\n");
    assert_eq!(std::fs::read(app.join("top")).unwrap(), b"#!/bin/sh\n");
    assert_eq!(
        std::fs::read_dir(tmp.path().join("elsewhere"))
            .unwrap()
            .count(),
        0
    );
    let v2 = tar_raw(&[("app.py", Regular, "#!/bin/sh\necho 2\n")]);
    unpack(&v2, &app).unwrap();
    assert!(
        !app.join("lib").exists(),
        "files of the old version are gone"
    );
    let left = std::fs::read_dir(tmp.path()).unwrap().count();
    assert_eq!(left, 2, "only the app and the untouched directory remain");
}
