//! `dnet_ioclient`: the Elliptics 2.26 command-line client. getopt-style short flags
//! (`-r -g -W -R -D -u -L -I -H -N -c -k -w -U -B -b -d -C -i -O -S -p`), output formats of
//! the original, non-zero exit status with the message on stderr on failure. `-a`, `-s` and
//! `-z` print per-node statistics (`ioclient/stats.rs`); `--help` lists every flag.

#[path = "ioclient/args.rs"]
mod args;
#[path = "ioclient/help.rs"]
mod help;
#[path = "ioclient/stats.rs"]
mod stats;

use anyhow::{anyhow, bail, Context, Result};
use args::{parse_args, Options};
use elliptics::client::civil::print_time;
use elliptics::client::{
    backend_command, writer_sink, BackendStatus, ClientConfig, Entry, Key, Node, NodeStatus,
    Session,
};
use elliptics::key::{RawId, ID_SIZE_BYTES};
use elliptics::protocol::{cmd_flags, DnetTime};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

const DEFAULT_WAIT_TIMEOUT_S: u64 = 60;

/// The key for an IO operation: `-I` hex id, `-H` raw bytes of the name, or the name hashed.
fn key_for(o: &Options, name: &str) -> Key {
    if let Some(hex) = &o.raw_id {
        return Key::Id(RawId::from_hex_lenient(hex));
    }
    if o.id_is_data {
        let mut raw = [0u8; ID_SIZE_BYTES];
        for (slot, b) in raw.iter_mut().zip(name.as_bytes()) {
            *slot = *b;
        }
        return Key::Id(RawId(raw));
    }
    Key::from(name)
}

fn addr_of<T>(e: &Entry<T>) -> String {
    e.address
        .map_or_else(|| "<unknown>".to_string(), |a| a.to_string())
}

fn run(o: &Options) -> Result<i32> {
    if o.help {
        print!("{}", help::USAGE);
        return Ok(0);
    }
    if o.remotes.is_empty() {
        bail!("You must specify remote address");
    }
    let (node, first_remote) = connect(o)?;
    let mut s = Session::new(&node);
    s.set_groups(&o.groups);
    if let Some(ns) = &o.namespace {
        s.set_namespace(ns);
    }
    s.set_cflags(o.cflags);
    s.set_ioflags(o.ioflags);

    if let Some(flags) = o.node_status {
        let st = NodeStatus {
            nflags: -1,
            status_flags: flags,
            log_level: u32::MAX,
        };
        s.node_status(first_remote, st).wait()?;
    }
    if let Some(cmd) = &o.backend_cmd {
        backend_control(o, &s, first_remote, cmd)?;
    }
    if let Some(cmd) = &o.defrag {
        defrag(o, &s, first_remote, cmd)?;
    }
    if let Some(file) = &o.write_file {
        write_file(o, &mut s, file)?;
    }
    if let Some(file) = &o.read_file {
        s.read_file(&key_for(o, file), Path::new(file), o.offset, o.size)
            .wait()
            .with_context(|| format!("{file}: can not read"))?;
    }
    if let Some(key) = &o.read_latest {
        read_latest_to_stdout(o, &s, key)?;
    }
    if let Some(key) = &o.remove {
        s.remove(&key_for(o, key)).wait()?;
    }
    if let Some(key) = &o.lookup {
        lookup(o, &s, key)?;
    }
    if o.all_nodes_stat || o.io_counter_stat || o.vfs_stat {
        let only_all = !o.io_counter_stat && !o.vfs_stat;
        let parts = stats::StatParts {
            vfs: o.vfs_stat || only_all,
            counters: o.io_counter_stat || only_all,
        };
        stats::print_node_stats(&s, parts)?;
    }
    match &o.exec {
        Some(cmd) => exec(o, &mut s, cmd),
        None => Ok(0),
    }
}

/// The client node, connected to the -r remotes; and the first remote's address.
fn connect(o: &Options) -> Result<(Node, SocketAddr)> {
    let wait_s = o.wait_s.unwrap_or(DEFAULT_WAIT_TIMEOUT_S);
    let config = ClientConfig {
        wait_timeout_s: wait_s,
        check_timeout_s: o.wait_s.unwrap_or(ClientConfig::default().check_timeout_s),
        // Only the -r node, as the original: a defrag, or stats without -a.
        no_route_list: o.defrag.is_some()
            || (!o.all_nodes_stat && (o.io_counter_stat || o.vfs_stat)),
        ..ClientConfig::default()
    };
    let node = Node::new(config);
    let remotes: Vec<&str> = o.remotes.iter().map(String::as_str).collect();
    node.add_remotes(&remotes)?;
    let first_remote =
        elliptics::client::parse_remote(remotes.first().copied().unwrap_or_default())?;
    Ok((node, first_remote))
}

/// -B: backend control or status on the -b backend of the -r node.
fn backend_control(o: &Options, s: &Session, remote: SocketAddr, cmd: &str) -> Result<()> {
    let backend = o
        .backend_id
        .ok_or_else(|| anyhow!("-B needs a backend id (-b)"))?;
    let code = match cmd {
        "enable" => Some(backend_command::ENABLE),
        "disable" => Some(backend_command::DISABLE),
        "enable_write" => Some(backend_command::WRITEABLE),
        "disable_write" => Some(backend_command::READ_ONLY),
        "delay" => Some(backend_command::CTL),
        "status" => None,
        other => bail!("unknown backend command '{other}'"),
    };
    let entries = match code {
        Some(c) => s
            .backend_control(remote, backend, c, 0, o.delay_ms, &[])
            .wait()?,
        None => s.backend_status(remote).wait()?,
    };
    print_backends(&entries, code.is_none().then_some(backend));
    Ok(())
}

/// -d: start, compact, stop or show the defragmentation of the -b backend.
fn defrag(o: &Options, s: &Session, remote: SocketAddr, cmd: &str) -> Result<()> {
    let backend = o
        .backend_id
        .ok_or_else(|| anyhow!("-d needs a backend id (-b)"))?;
    let (command, level) = match cmd {
        "start" => (backend_command::START_DEFRAG, 0),
        "compact" => (backend_command::START_DEFRAG, 1),
        "stop" => (backend_command::STOP_DEFRAG, 0),
        "status" => {
            print_backends(&s.backend_status(remote).wait()?, Some(backend));
            return Ok(());
        }
        other => bail!("unknown defrag command '{other}'"),
    };
    let entries = s
        .backend_control(remote, backend, command, level, 0, &[])
        .wait()?;
    print_backends(&entries, Some(backend));
    Ok(())
}

/// -W: the file (from -O, -S bytes or to its end) as one WRITE frame per group, its data
/// streamed from the file to the socket; stored at remote offset -O.
fn write_file(o: &Options, s: &mut Session, file: &str) -> Result<()> {
    let now = DnetTime::now();
    s.set_timestamp(DnetTime {
        tsec: now.tsec,
        tnsec: 0,
    });
    let written = s
        .write_file(
            &key_for(o, file),
            Path::new(file),
            o.offset,
            o.offset,
            o.size,
        )
        .wait();
    s.set_timestamp(DnetTime::EMPTY);
    written.with_context(|| format!("{file}: can not write"))?;
    Ok(())
}

/// -D: the newest copy's data to stdout, streamed in bounded pieces.
fn read_latest_to_stdout(o: &Options, s: &Session, key: &str) -> Result<()> {
    let out = writer_sink(std::io::stdout());
    s.read_latest_to(&key_for(o, key), o.offset, o.size, out)
        .wait()?;
    std::io::stdout().flush()?;
    Ok(())
}

/// -L: where the key lives in each group.
fn lookup(o: &Options, s: &Session, key: &str) -> Result<()> {
    let entries = s.lookup(&key_for(o, key)).wait()?;
    for e in entries {
        let Some(info) = &e.payload else { continue };
        println!("Storage address: {}", info.address);
        println!("Group: {}", e.group);
        println!("Backend: {}", e.backend);
        println!("File path: {}", info.path);
        println!("File info:");
        println!("\tsize: {}", info.size);
        println!("\toffset: {}", info.offset);
        println!("\tmtime: {}", print_time(&info.mtime));
    }
    Ok(())
}

/// -c: run `app@event [data]` and print every node's answer; -1 when one failed.
fn exec(o: &Options, s: &mut Session, cmd: &str) -> Result<i32> {
    let (event, data) = cmd.split_once(' ').unwrap_or((cmd, ""));
    s.set_cflags(o.cflags | cmd_flags::NOLOCK);
    let key = (!data.is_empty()).then(|| key_for(o, data));
    let entries = s
        .exec_unchecked(key.as_ref(), event, data.as_bytes(), o.src_key)
        .wait()?;
    if entries.is_empty() {
        bail!(
            "exec {event}: no node to send to in groups {:?}: -6",
            o.groups
        );
    }
    let mut status = 0;
    for e in &entries {
        if let Some(err) = &e.error {
            eprintln!(
                "{}: failed to process: \"{}\": {}",
                addr_of(e),
                err.message,
                err.status
            );
            status = -1;
        } else if let Some(p) = &e.payload {
            let addr = p.address.map_or_else(|| addr_of(e), |a| a.to_string());
            println!(
                "{addr}: {} \"{}\"",
                p.event,
                String::from_utf8_lossy(&p.data)
            );
        } else {
            println!("{}: acknowledge", addr_of(e));
        }
    }
    Ok(status)
}

fn print_backends(entries: &[Entry<Vec<BackendStatus>>], only: Option<u32>) {
    for e in entries {
        for b in e
            .payload
            .iter()
            .flatten()
            .filter(|b| only.is_none_or(|id| id == b.backend_id))
        {
            let state = match b.state {
                0 => "disabled",
                1 => "enabled",
                2 => "activating",
                3 => "deactivating",
                _ => "uninitialized",
            };
            let defrag = match b.defrag_state {
                0 => "not started",
                1 => "data-sort",
                2 => "index-sort",
                3 => "compact",
                _ => "unknown",
            };
            println!("backend_id: {}", b.backend_id);
            println!("\taddress: {}", addr_of(e));
            println!("\tbackend state: {state}");
            println!("\tdefrag state: {defrag}");
            println!("\tread-only: {}", b.read_only);
            println!("\tdelay: {}", b.delay_ms);
            println!("\tlast start: {}", print_time(&b.last_start));
            println!("\tlast start error: {}", b.last_start_err);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = parse_args(&args).and_then(|o| run(&o));
    match outcome {
        Ok(0) => {}
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("{e:#}");
            std::process::exit(-1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_prints_like_dnet_print_time() {
        let t = DnetTime {
            tsec: 1_795_806_197,
            tnsec: 268_558_000,
        };
        assert_eq!(print_time(&t), "2026-11-27 19:03:17.268558");
    }

    #[test]
    fn h_flag_uses_the_name_bytes_as_the_id() {
        let o = Options {
            id_is_data: true,
            ..Options::default()
        };
        let Key::Id(id) = key_for(&o, "AB") else {
            panic!("expected raw id")
        };
        assert_eq!(&id.0[..3], b"AB\0");
    }
}
