//! `dnet_find`: where an object is, on every backend of every node, against where the route
//! table says it should live. Flags of the original: `-r addr:port:family` (repeatable),
//! `-I hexid`, `-l log`, `-m level`, `-h`. One line per backend that answered, as the
//! original printed them:
//! `<group>:<id>: FIND-OK object: <addr>, backend: <n>, should live at: <addr>, backend: <m>,
//! offset: <o>, size: <s>, mtime: <time>, path: <path>` or `<group>:<id>: FIND object:
//! status: <errno>`.

use anyhow::{anyhow, bail, Result};
use elliptics::client::civil::print_time_seconds;
use elliptics::client::{ClientConfig, FindEntry, Node, Session};
use elliptics::key::{hex_string, RawId};

const DEFAULT_WAIT_TIMEOUT_S: u64 = 60;
/// The handshake's index shard count: the original tool left its library default.
const INDEXES_SHARD_COUNT: i32 = 16;

#[derive(Debug, Default)]
struct Options {
    remotes: Vec<String>,
    id: Option<String>,
    help: bool,
}

fn usage(program: &str) -> String {
    format!(
        "Usage: {program} <options>\n\
         \x20 -r addr:port:family            - remote node to connect\n\
         \x20 -l log                         - log file\n\
         \x20 -m level                       - log level\n\
         \x20 -I id                          - object ID\n\
         \x20 -h                             - this help"
    )
}

/// getopt(3) with "r:l:m:I:h": attached or separate values; `-l` and `-m` are accepted
/// (the client logs nothing to a file).
fn parse_args(args: &[String]) -> Result<Options> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let Some(flag) = arg.strip_prefix('-').and_then(|f| f.chars().next()) else {
            continue;
        };
        if flag == 'h' {
            o.help = true;
            continue;
        }
        if !matches!(flag, 'r' | 'l' | 'm' | 'I') {
            bail!("invalid option -- '{flag}'");
        }
        let attached = &arg[1 + flag.len_utf8()..];
        let value = if attached.is_empty() {
            i += 1;
            args.get(i - 1)
                .cloned()
                .ok_or_else(|| anyhow!("option requires an argument -- '{flag}'"))?
        } else {
            attached.to_string()
        };
        match flag {
            'r' => o.remotes.push(value),
            'I' => o.id = Some(value),
            _ => {}
        }
    }
    Ok(o)
}

/// `dnet_dump_id`: group, the first and last six bytes of the id.
fn dump_id(group: u32, id: &RawId) -> String {
    format!(
        "{group}:{}...{}",
        hex_string(&id.0[..6]),
        hex_string(&id.0[58..])
    )
}

fn line(id: &RawId, f: &FindEntry) -> Option<String> {
    let who = dump_id(f.group, id);
    let e = &f.entry;
    if e.status != 0 {
        return Some(format!("{who}: FIND object: status: {}", e.status));
    }
    let should = f.owner.map_or_else(
        || "failed to get route table".to_string(),
        |(addr, backend)| format!("{addr}, backend: {backend}"),
    );
    let here = format!("{}, backend: {}", f.address, f.backend_id);
    Some(match &e.payload {
        Some(info) => format!(
            "{who}: FIND-OK object: {here}, should live at: {should}, offset: {}, size: {}, mtime: {}, path: {}",
            info.offset,
            info.size,
            print_time_seconds(&info.mtime),
            info.path
        ),
        None => format!("{who}: FIND object: {here}: should live at: {should}"),
    })
}

fn run(o: &Options) -> Result<i32> {
    let id =
        o.id.as_deref()
            .map(RawId::from_hex_lenient)
            .ok_or_else(|| anyhow!("You must specify an object id (-I)"))?;
    if o.remotes.is_empty() {
        bail!("You must specify remote address");
    }
    let node = Node::new(ClientConfig {
        wait_timeout_s: DEFAULT_WAIT_TIMEOUT_S,
        indexes_shard_count: INDEXES_SHARD_COUNT,
        ..ClientConfig::default()
    });
    let remotes: Vec<&str> = o.remotes.iter().map(String::as_str).collect();
    node.add_remotes(&remotes)?;
    let found = Session::new(&node).find(&id).wait()?;
    for f in &found {
        if let Some(l) = line(&id, f) {
            println!("{l}");
        }
    }
    Ok(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let program = args.first().cloned().unwrap_or_else(|| "dnet_find".into());
    let outcome = parse_args(args.get(1..).unwrap_or_default());
    let outcome = match outcome {
        Ok(o) if o.help => {
            eprintln!("{}", usage(&program));
            std::process::exit(-1);
        }
        Ok(o) => run(&o),
        Err(e) => {
            eprintln!("{program}: {e}\n{}", usage(&program));
            std::process::exit(-1);
        }
    };
    match outcome {
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

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_of_the_original_parse_and_g_is_refused() {
        let o = parse_args(&args(&["-r", "127.0.0.1:1025:2", "-Iabcd", "-m", "4"])).expect("ok");
        assert_eq!(o.remotes, vec!["127.0.0.1:1025:2"]);
        assert_eq!(o.id.as_deref(), Some("abcd"));
        let e = parse_args(&args(&["-r", "a:1:2", "-g", "1"])).expect_err("no -g");
        assert_eq!(e.to_string(), "invalid option -- 'g'");
    }

    #[test]
    fn ids_print_as_dnet_dump_id() {
        let id = RawId::from_hex_lenient(
            "3ab1736f1f571d7f4eb8d86153089c255ca2411eedf8ce496e3cb7a2b819ac48\
             ac2a355cd0669ddc16d6e56190da79305339ae443d5c7e91abae9d700f8f8fdc",
        );
        assert_eq!(dump_id(1, &id), "1:3ab1736f1f57...9d700f8f8fdc");
    }
}
