//! The bandwidth reference for large values: copy a file through one loopback TCP
//! connection into another file, the way a large WRITE travels (file to socket with
//! `sendfile`, socket to file in 2 MiB pieces), and print the seconds it took.
//!
//! `cargo run --release --example loopback_copy -- SRC DST`

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

const PIECE_BYTES: usize = 2 << 20;

fn receive(listener: TcpListener, dst: String) -> std::io::Result<u64> {
    let (mut sock, _) = listener.accept()?;
    let mut out = std::fs::File::create(dst)?;
    let mut buf = vec![0u8; PIECE_BYTES];
    let mut total = 0u64;
    loop {
        let n = sock.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        out.write_all(&buf[..n])?;
        total += n as u64;
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, dst] = args.as_slice() else {
        anyhow::bail!("usage: loopback_copy SRC DST");
    };
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let dst = dst.clone();
    let started = Instant::now();
    let receiver = std::thread::spawn(move || receive(listener, dst));
    let mut file = std::fs::File::open(src)?;
    let mut sock = TcpStream::connect(addr)?;
    let sent = std::io::copy(&mut file, &mut sock)?;
    sock.shutdown(std::net::Shutdown::Write)?;
    let received = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))??;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(sent == received, "sent {sent} bytes, received {received}");
    println!("{seconds:.3}");
    Ok(())
}
