//! The first byte picks one body decoder; the rest of the input is its payload. No decoder
//! may panic, and whatever decodes must re-encode to bytes that decode to the same value.
#![no_main]

use elliptics::protocol::*;
use libfuzzer_sys::fuzz_target;

macro_rules! check {
    ($decode:expr, $encode:expr, $bytes:expr) => {
        if let Ok(v) = $decode($bytes) {
            let enc = $encode(&v);
            assert_eq!($decode(&enc[..]).expect("re-encoded value decodes"), v);
        }
    };
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, b)) = data.split_first() else {
        return;
    };
    match pick % 18 {
        0 => check!(CmdHeader::decode, |v: &CmdHeader| v.encode(), b),
        1 => check!(IoAttr::decode, |v: &IoAttr| v.encode(), b),
        2 => check!(DnetAddr::decode, |v: &DnetAddr| v.encode(), b),
        3 => check!(AddrContainer::decode, |v: &AddrContainer| v.encode(), b),
        4 => check!(IdContainer::decode, |v: &IdContainer| v.encode(), b),
        5 => check!(
            NodeAnnouncement::decode,
            |v: &NodeAnnouncement| v.encode(),
            b
        ),
        6 => check!(LookupReply::decode, |v: &LookupReply| v.encode(), b),
        7 => check!(Sph::decode, |v: &Sph| v.encode(), b),
        8 => check!(ExecPayload::decode, |v: &ExecPayload| v.encode(), b),
        9 => check!(Auth::decode, |v: &Auth| v.encode(), b),
        10 => check!(NodeStatus::decode, |v: &NodeStatus| v.encode(), b),
        11 => check!(
            MonitorStatRequest::decode,
            |v: &MonitorStatRequest| v.encode(),
            b
        ),
        12 => check!(BackendControl::decode, |v: &BackendControl| v.encode(), b),
        13 => check!(
            BackendStatusList::decode,
            |v: &BackendStatusList| v.encode(),
            b
        ),
        14 => check!(IteratorRequest::decode, |v: &IteratorRequest| v.encode(), b),
        15 => check!(
            IteratorResponse::decode_with_data,
            |v: &(IteratorResponse, &[u8])| {
                let mut out = v.0.encode().to_vec();
                out.extend_from_slice(v.1);
                out
            },
            b
        ),
        16 => check!(
            ServerSendRequest::decode,
            |v: &ServerSendRequest| v.encode(),
            b
        ),
        _ => check!(
            IoAttr::decode_with_data,
            |v: &(IoAttr, &[u8])| {
                let mut out = v.0.encode().to_vec();
                out.extend_from_slice(v.1);
                out
            },
            b
        ),
    }
});
