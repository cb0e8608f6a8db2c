//! `dnet_srw`: app management, the job cocaine-tool did. Writes the `apps`, `manifests` and
//! `profiles` namespaces in cocaine-tool's format (see `elliptics::srw::store`), keeps the
//! `.list` records, and sends the `start-task`/`stop-task`/`info` exec events.
//!
//! Manifest and profile files are JSON; trailing commas before `}`/`]` are tolerated (the
//! tutorial's manifest has one) and the document is stored without them.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use elliptics::client::{ClientConfig, Key, Node, Session};
use elliptics::srw::{spool, store};

#[derive(Parser, Debug)]
#[command(name = "dnet_srw", about = "Upload, list and control server-side apps")]
struct Cli {
    /// Remote node, host:port:family.
    #[arg(
        short = 'r',
        long = "remote",
        default_value = "127.0.0.1:1025:2",
        global = true
    )]
    remote: String,
    /// Groups, colon-separated.
    #[arg(short = 'g', long = "groups", default_value = "1", global = true)]
    groups: String,
    /// Wait timeout, seconds.
    #[arg(short = 'w', long = "wait", default_value_t = 60, global = true)]
    wait_s: u64,
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug)]
enum What {
    /// Apps: upload, list, view, remove, start, stop, info.
    App {
        #[command(subcommand)]
        cmd: AppCmd,
    },
    /// Profiles: upload, list, view, remove.
    Profile {
        #[command(subcommand)]
        cmd: ProfileCmd,
    },
}

#[derive(Subcommand, Debug)]
enum AppCmd {
    Upload {
        #[arg(long)]
        manifest: String,
        #[arg(long)]
        package: String,
        #[arg(long)]
        name: String,
    },
    List,
    View {
        name: String,
    },
    Remove {
        name: String,
    },
    Start {
        name: String,
    },
    Stop {
        name: String,
    },
    Info {
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum ProfileCmd {
    Upload {
        #[arg(long)]
        profile: String,
        #[arg(long)]
        name: String,
    },
    List,
    View {
        name: String,
    },
    Remove {
        name: String,
    },
}

fn session(cli: &Cli, node: &Node, namespace: &str) -> Result<Session> {
    let groups: Vec<u32> = cli
        .groups
        .split(':')
        .map(|g| g.parse::<u32>().with_context(|| format!("bad group {g:?}")))
        .collect::<Result<_>>()?;
    let mut s = Session::new(node);
    s.set_groups(&groups);
    s.set_namespace(namespace);
    s.set_timeout(cli.wait_s);
    Ok(s)
}

fn read(s: &Session, key: &str) -> Result<Option<Vec<u8>>> {
    match s.read_data(&Key::from(key), 0, 0).wait() {
        Ok(entries) => Ok(entries.into_iter().find_map(|e| e.payload).map(|p| p.data)),
        Err(e) if e.status == elliptics::protocol::errno::ENOENT => Ok(None),
        Err(e) => Err(anyhow!("read {key}: {e}")),
    }
}

fn write(s: &Session, key: &str, data: &[u8]) -> Result<()> {
    s.write_data(&Key::from(key), data, 0)
        .wait()
        .map(drop)
        .map_err(|e| anyhow!("write {key}: {e}"))
}

fn remove(s: &Session, key: &str) -> Result<bool> {
    match s.remove(&Key::from(key)).wait() {
        Ok(_) => Ok(true),
        Err(e) if e.status == elliptics::protocol::errno::ENOENT => Ok(false),
        Err(e) => Err(anyhow!("remove {key}: {e}")),
    }
}

fn list(s: &Session) -> Result<Vec<String>> {
    Ok(match read(s, store::LIST_KEY)? {
        Some(rec) => store::decode_list(&rec)?,
        None => Vec::new(),
    })
}

fn update_list(s: &Session, name: &str, present: bool) -> Result<()> {
    let mut names = list(s)?;
    names.retain(|n| n != name);
    if present {
        names.push(name.to_string());
        names.sort();
    }
    write(s, store::LIST_KEY, &store::encode_list(&names))
}

fn load_json(path: &str) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    store::parse_relaxed_json(&text).with_context(|| path.to_string())
}

fn view(s: &Session, name: &str, what: &'static str) -> Result<()> {
    let rec = read(s, name)?.ok_or_else(|| anyhow!("no {what} named {name:?}"))?;
    let doc = store::decode_document(&rec, what)?;
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

fn exec(cli: &Cli, node: &Node, name: &str, event: &str) -> Result<i32> {
    let s = session(cli, node, "")?;
    let entries = s
        .exec_unchecked(None, &format!("{name}@{event}"), b"", -1)
        .wait()?;
    if entries.is_empty() {
        bail!("no node to send {name}@{event} to in groups {}", cli.groups);
    }
    let mut status = 0;
    for e in entries {
        let addr = e.address.map(|a| a.to_string()).unwrap_or_default();
        if let Some(err) = &e.error {
            eprintln!(
                "{addr}: {name}@{event} failed: {}: {}",
                err.message, err.status
            );
            status = 1;
        } else if let Some(p) = &e.payload {
            print!("{addr}: {}", String::from_utf8_lossy(&p.data));
        } else if event != "info" {
            println!("{addr}: {name}@{event}: done");
        }
    }
    Ok(status)
}

fn run(cli: &Cli) -> Result<i32> {
    let node = Node::new(ClientConfig {
        wait_timeout_s: cli.wait_s,
        ..ClientConfig::default()
    });
    node.add_remotes(&[cli.remote.as_str()])
        .map_err(|e| anyhow!("cannot connect to {}: {e}", cli.remote))?;
    match &cli.what {
        What::App { cmd } => match cmd {
            AppCmd::Upload {
                manifest,
                package,
                name,
            } => {
                store::check_name(name)?;
                let doc = load_json(manifest)?;
                let m = store::Manifest::from_json(&doc).with_context(|| manifest.clone())?;
                let pkg =
                    std::fs::read(package).with_context(|| format!("cannot read {package}"))?;
                spool::check_package(&pkg, &m.slave).with_context(|| package.clone())?;
                write(
                    &session(cli, &node, store::APPS_NAMESPACE)?,
                    name,
                    &store::encode_package(&pkg),
                )?;
                write(
                    &session(cli, &node, store::MANIFESTS_NAMESPACE)?,
                    name,
                    &store::encode_document(&doc),
                )?;
                update_list(&session(cli, &node, store::APPS_NAMESPACE)?, name, true)?;
                println!(
                    "app {name}: uploaded {} package bytes and the manifest (slave {})",
                    pkg.len(),
                    m.slave
                );
            }
            AppCmd::List => {
                for n in list(&session(cli, &node, store::APPS_NAMESPACE)?)? {
                    println!("{n}");
                }
            }
            AppCmd::View { name } => view(
                &session(cli, &node, store::MANIFESTS_NAMESPACE)?,
                name,
                "manifest",
            )?,
            AppCmd::Remove { name } => {
                let m = remove(&session(cli, &node, store::MANIFESTS_NAMESPACE)?, name)?;
                let a = remove(&session(cli, &node, store::APPS_NAMESPACE)?, name)?;
                update_list(&session(cli, &node, store::APPS_NAMESPACE)?, name, false)?;
                if !(m || a) {
                    bail!("no app named {name:?}");
                }
                println!("app {name}: removed");
            }
            AppCmd::Start { name } => return exec(cli, &node, name, "start-task"),
            AppCmd::Stop { name } => return exec(cli, &node, name, "stop-task"),
            AppCmd::Info { name } => return exec(cli, &node, name, "info"),
        },
        What::Profile { cmd } => {
            let s = session(cli, &node, store::PROFILES_NAMESPACE)?;
            match cmd {
                ProfileCmd::Upload { profile, name } => {
                    store::check_name(name)?;
                    let doc = load_json(profile)?;
                    store::Profile::from_json(&doc).with_context(|| profile.clone())?;
                    write(&s, name, &store::encode_document(&doc))?;
                    update_list(&s, name, true)?;
                    println!("profile {name}: uploaded");
                }
                ProfileCmd::List => {
                    for n in list(&s)? {
                        println!("{n}");
                    }
                }
                ProfileCmd::View { name } => view(&s, name, "profile")?,
                ProfileCmd::Remove { name } => {
                    if !remove(&s, name)? {
                        bail!("no profile named {name:?}");
                    }
                    update_list(&s, name, false)?;
                    println!("profile {name}: removed");
                }
            }
        }
    }
    Ok(0)
}

fn main() {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("dnet_srw: {e:#}");
            std::process::exit(1);
        }
    }
}
