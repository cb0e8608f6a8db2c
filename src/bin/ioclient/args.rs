//! `dnet_ioclient`'s arguments: getopt(3)-style short flags with the original's option
//! string, the last occurrence winning (remotes accumulate).

use anyhow::{anyhow, Context, Result};

const OPTSTRING: &str = "i:d:C:A:f:F:M:N:g:u:O:S:m:zsU:aL:w:l:c:k:I:r:W:R:D:hHb:B:p:";

#[derive(Debug, Default)]
pub struct Options {
    pub remotes: Vec<String>,
    pub groups: Vec<u32>,
    pub write_file: Option<String>,
    pub read_file: Option<String>,
    pub read_latest: Option<String>,
    pub remove: Option<String>,
    pub lookup: Option<String>,
    pub exec: Option<String>,
    pub raw_id: Option<String>,
    pub id_is_data: bool,
    pub namespace: Option<String>,
    pub src_key: i32,
    pub wait_s: Option<u64>,
    pub node_status: Option<i32>,
    pub backend_cmd: Option<String>,
    pub backend_id: Option<u32>,
    pub defrag: Option<String>,
    pub delay_ms: u32,
    pub all_nodes_stat: bool,
    pub io_counter_stat: bool,
    pub vfs_stat: bool,
    pub cflags: u64,
    pub ioflags: u32,
    pub offset: u64,
    pub size: u64,
    pub help: bool,
}

fn num<T: std::str::FromStr>(flag: char, v: &str) -> Result<T> {
    v.trim()
        .parse()
        .map_err(|_| anyhow!("invalid value '{v}' for -{flag}"))
}

/// Parse arguments the way getopt(3) does with `OPTSTRING`: clustered flags, attached or
/// separate values, the last occurrence wins (remotes accumulate).
pub fn parse_args(args: &[String]) -> Result<Options> {
    let mut o = Options {
        src_key: -1,
        ..Options::default()
    };
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--help" {
            o.help = true;
            continue;
        }
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            continue;
        };
        let chars = flags.char_indices();
        for (pos, flag) in chars {
            let spec = OPTSTRING
                .find(flag)
                .ok_or_else(|| anyhow!("invalid option -- '{flag}'"))?;
            let takes_value = OPTSTRING[spec + flag.len_utf8()..].starts_with(':');
            if !takes_value {
                match flag {
                    'H' => o.id_is_data = true,
                    'h' => o.help = true,
                    'a' => o.all_nodes_stat = true,
                    's' => o.io_counter_stat = true,
                    'z' => o.vfs_stat = true,
                    _ => {}
                }
                continue;
            }
            let rest = &flags[pos + flag.len_utf8()..];
            let value = if !rest.is_empty() {
                rest.to_string()
            } else {
                let v = args
                    .get(i)
                    .cloned()
                    .ok_or_else(|| anyhow!("option requires an argument -- '{flag}'"))?;
                i += 1;
                v
            };
            apply(&mut o, flag, value)?;
            break;
        }
    }
    Ok(o)
}

fn apply(o: &mut Options, flag: char, v: String) -> Result<()> {
    match flag {
        'r' => o.remotes.push(v),
        'g' => {
            o.groups = v
                .split(':')
                .filter(|s| !s.is_empty())
                .map(|g| num('g', g))
                .collect::<Result<_>>()?
        }
        'W' => o.write_file = Some(v),
        'R' => o.read_file = Some(v),
        'D' => o.read_latest = Some(v),
        'u' => o.remove = Some(v),
        'L' => o.lookup = Some(v),
        'c' => o.exec = Some(v),
        'I' => o.raw_id = Some(v),
        'N' => o.namespace = Some(v),
        'k' => o.src_key = num('k', &v)?,
        'w' => o.wait_s = Some(num('w', &v)?),
        'U' => o.node_status = Some(num('U', &v)?),
        'B' => o.backend_cmd = Some(v),
        'b' => o.backend_id = Some(num('b', &v)?),
        'd' => o.defrag = Some(v),
        'p' => o.delay_ms = num('p', &v)?,
        'C' => o.cflags = parse_flags(&v)?,
        'i' => {
            o.ioflags = u32::try_from(parse_flags(&v)?).context("-i flags do not fit 32 bits")?
        }
        'O' => o.offset = num('O', &v)?,
        'S' => o.size = num('S', &v)?,
        // Accepted for compatibility, no effect here: -A -f -F -M -m -l.
        _ => {}
    }
    Ok(())
}

fn parse_flags(v: &str) -> Result<u64> {
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).map_err(|_| anyhow!("invalid flags '{v}'")),
        None => num('C', v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn getopt_style_values_attached_or_separate_and_last_wins() {
        let o = parse_args(&args(&[
            "-r",
            "localhost:1025:2",
            "-g1:2",
            "-g",
            "3:4",
            "-D",
            "TESTKEY",
            "-H",
        ]))
        .expect("parse");
        assert_eq!(o.remotes, vec!["localhost:1025:2"]);
        assert_eq!(o.groups, vec![3, 4]);
        assert_eq!(o.read_latest.as_deref(), Some("TESTKEY"));
        assert!(o.id_is_data);
        assert_eq!(o.src_key, -1);
    }

    #[test]
    fn exec_argument_keeps_spaces_and_flags_parse_hex() {
        let o = parse_args(&args(&[
            "-c",
            "test_app@test_event SOME DATA",
            "-C",
            "0x10",
            "-k",
            "5",
        ]))
        .expect("parse");
        assert_eq!(o.exec.as_deref(), Some("test_app@test_event SOME DATA"));
        assert_eq!((o.cflags, o.src_key), (0x10, 5));
    }

    #[test]
    fn unknown_flag_and_missing_value_are_errors() {
        assert!(parse_args(&args(&["-x"])).is_err());
        assert!(parse_args(&args(&["-r"])).is_err());
    }
}
