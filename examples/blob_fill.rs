//! Fill a node's data directory straight through the blob log, much faster than over the
//! network: `count` keys `<prefix><i>` (hashed as `dnet_bench` hashes them) of `size`
//! bytes each, into the log of shard `shard` at `--data`, rotating every
//! `--records-in-blob` records; closed files get their sorted index. Run it on a stopped
//! node's directory; the node then starts on these files.
//!
//! `cargo run --release --example blob_fill -- --data var/eblob/data --count 10000000`

use bytes::Bytes;
use clap::Parser;
use elliptics::blob::{BlobLog, BlobOptions};
use elliptics::io::sync::StdFile;
use elliptics::key::RawId;
use elliptics::protocol::{DnetTime, IoAttr};
use futures::executor::block_on;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser, Debug)]
struct Args {
    /// The backend's `data` prefix.
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value_t = 0)]
    shard: u32,
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Value bytes.
    #[arg(long, default_value_t = 16)]
    size: usize,
    #[arg(long, default_value = "bench-key-")]
    prefix: String,
    #[arg(long, default_value_t = 1_000_000)]
    records_in_blob: u64,
    /// Then write one more key, `<prefix>last`: when `count` is a multiple of
    /// `--records-in-blob` it opens a new file, and every other key lives in a sealed one.
    #[arg(long)]
    seal_last: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut o = BlobOptions::new(&args.data);
    o.shard = args.shard;
    o.sync_s = 3600;
    o.records_in_blob = args.records_in_blob;
    o.blob_size_bytes = 1 << 40;
    if let Some(dir) = args.data.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let log = block_on(BlobLog::<StdFile>::open(o))?;
    let value = Bytes::from(vec![0x5au8; args.size]);
    let started = Instant::now();
    let mut name = String::new();
    for i in 0..args.count {
        name.clear();
        name.push_str(&args.prefix);
        name.push_str(&i.to_string());
        let io = IoAttr {
            id: RawId::from_key(name.as_bytes()),
            size: args.size as u64,
            timestamp: DnetTime::EMPTY,
            ..IoAttr::default()
        };
        block_on(log.write(&io, value.clone()))?;
        if i % 1_000_000 == 999_999 {
            eprintln!(
                "{} keys, {:.0}/s",
                i + 1,
                (i + 1) as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    if args.seal_last {
        let io = IoAttr {
            id: RawId::from_key(format!("{}last", args.prefix).as_bytes()),
            size: args.size as u64,
            timestamp: DnetTime::EMPTY,
            ..IoAttr::default()
        };
        block_on(log.write(&io, value.clone()))?;
    }
    block_on(log.sync())?;
    let s = log.stats();
    println!(
        "{} records in {} files, {} bytes, {:.1} s",
        s.records,
        s.files,
        s.bytes,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
