//! Arbitrary structure -> encode -> decode gives back the same structure.
#![no_main]

use arbitrary::{Result, Unstructured};
use elliptics::key::RawId;
use elliptics::protocol::*;
use libfuzzer_sys::fuzz_target;

fn id(u: &mut Unstructured<'_>) -> Result<RawId> {
    Ok(RawId(u.arbitrary()?))
}

fn time(u: &mut Unstructured<'_>) -> Result<DnetTime> {
    Ok(DnetTime {
        tsec: u.arbitrary()?,
        tnsec: u.arbitrary()?,
    })
}

fn addr(u: &mut Unstructured<'_>) -> Result<DnetAddr> {
    Ok(DnetAddr {
        sockaddr: u.arbitrary()?,
        addr_len: u.arbitrary()?,
        family: u.arbitrary()?,
    })
}

fn ids(u: &mut Unstructured<'_>) -> Result<Vec<RawId>> {
    let n = u.int_in_range(0..=4)?;
    (0..n).map(|_| id(u)).collect()
}

fn io_attr(u: &mut Unstructured<'_>) -> Result<IoAttr> {
    Ok(IoAttr {
        parent: id(u)?,
        id: id(u)?,
        start: u.arbitrary()?,
        num: u.arbitrary()?,
        timestamp: time(u)?,
        user_flags: u.arbitrary()?,
        total_size: u.arbitrary()?,
        record_flags: u.arbitrary()?,
        reserved2: u.arbitrary()?,
        flags: u.arbitrary()?,
        offset: u.arbitrary()?,
        size: u.arbitrary()?,
    })
}

fn id_container(u: &mut Unstructured<'_>) -> Result<IdContainer> {
    let n = u.int_in_range(0..=3)?;
    let mut backends = Vec::new();
    for _ in 0..n {
        backends.push(BackendIds {
            backend_id: u.arbitrary()?,
            group_id: u.arbitrary()?,
            flags: u.arbitrary()?,
            ids: ids(u)?,
        });
    }
    Ok(IdContainer { backends })
}

fn addr_container(u: &mut Unstructured<'_>) -> Result<AddrContainer> {
    let n = u.int_in_range(0..=3)?;
    Ok(AddrContainer {
        node_addr_num: u.arbitrary()?,
        addrs: (0..n).map(|_| addr(u)).collect::<Result<_>>()?,
    })
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    match u.int_in_range(0..=13u8)? {
        0 => {
            let h = CmdHeader {
                id: id(u)?,
                group_id: u.arbitrary()?,
                reserved: u.arbitrary()?,
                status: u.arbitrary()?,
                cmd: u.arbitrary()?,
                backend_id: u.arbitrary()?,
                trace_id: u.arbitrary()?,
                flags: u.arbitrary()?,
                trans: u.arbitrary()?,
                size: u.arbitrary()?,
            };
            assert_eq!(CmdHeader::decode(&h.encode()).unwrap(), h);
        }
        1 => {
            let io = io_attr(u)?;
            assert_eq!(IoAttr::decode(&io.encode()).unwrap(), io);
        }
        2 => {
            let a = NodeAnnouncement {
                addrs: addr_container(u)?,
                ids: id_container(u)?,
            };
            assert_eq!(NodeAnnouncement::decode(&a.encode()).unwrap(), a);
        }
        3 => {
            let c = id_container(u)?;
            assert_eq!(IdContainer::decode(&c.encode()).unwrap(), c);
        }
        4 => {
            let path: Vec<u8> = u.arbitrary()?;
            let r = LookupReply {
                addr: addr(u)?,
                info: FileInfo {
                    checksum: u.arbitrary()?,
                    record_flags: u.arbitrary()?,
                    size: u.arbitrary()?,
                    offset: u.arbitrary()?,
                    mtime: time(u)?,
                },
                path_with_nul: path.into_iter().take(FILE_PATH_BYTES_MAX).collect(),
            };
            assert_eq!(LookupReply::decode(&r.encode()).unwrap(), r);
        }
        5 => {
            let event: Vec<u8> = u.arbitrary()?;
            let data: Vec<u8> = u.arbitrary()?;
            let mut sph = Sph {
                src: id(u)?,
                data_size: data.len() as u64,
                flags: u.arbitrary()?,
                event_size: i32::try_from(event.len()).unwrap(),
                status: u.arbitrary()?,
                key: u.arbitrary()?,
                src_key: u.arbitrary()?,
                addr: addr(u)?,
            };
            let p = ExecPayload {
                sph,
                event: &event,
                data: &data,
            };
            assert_eq!(ExecPayload::decode(&p.encode()).unwrap(), p);
            sph.event_size = u.arbitrary()?;
            assert_eq!(Sph::decode(&sph.encode()).unwrap(), sph);
        }
        6 => {
            let a = Auth {
                cookie: u.arbitrary()?,
                flags: u.arbitrary()?,
            };
            assert_eq!(Auth::decode(&a.encode()).unwrap(), a);
        }
        7 => {
            let s = NodeStatus {
                nflags: u.arbitrary()?,
                status_flags: u.arbitrary()?,
                log_level: u.arbitrary()?,
            };
            assert_eq!(NodeStatus::decode(&s.encode()).unwrap(), s);
            let m = MonitorStatRequest {
                categories: u.arbitrary()?,
            };
            assert_eq!(MonitorStatRequest::decode(&m.encode()).unwrap(), m);
        }
        8 => {
            let c = BackendControl {
                backend_id: u.arbitrary()?,
                command: u.arbitrary()?,
                defrag_level: u.arbitrary()?,
                delay_ms: u.arbitrary()?,
                ids: ids(u)?,
            };
            assert_eq!(BackendControl::decode(&c.encode()).unwrap(), c);
        }
        9 => {
            let n = u.int_in_range(0..=3)?;
            let mut backends = Vec::new();
            for _ in 0..n {
                backends.push(BackendStatus {
                    backend_id: u.arbitrary()?,
                    state: u.arbitrary()?,
                    defrag_state: u.arbitrary()?,
                    last_start: time(u)?,
                    last_start_err: u.arbitrary()?,
                    read_only: u.arbitrary()?,
                    delay_ms: u.arbitrary()?,
                });
            }
            let l = BackendStatusList { backends };
            assert_eq!(BackendStatusList::decode(&l.encode()).unwrap(), l);
        }
        10 => {
            let n = u.int_in_range(0..=3)?;
            let mut ranges = Vec::new();
            for _ in 0..n {
                ranges.push(IteratorRange {
                    key_begin: id(u)?,
                    key_end: id(u)?,
                });
            }
            let r = IteratorRequest {
                id: u.arbitrary()?,
                action: u.arbitrary()?,
                time_begin: time(u)?,
                time_end: time(u)?,
                itype: u.arbitrary()?,
                flags: u.arbitrary()?,
                timeout: u.arbitrary()?,
                ranges,
                groups: u.arbitrary()?,
            };
            assert_eq!(IteratorRequest::decode(&r.encode()).unwrap(), r);
        }
        11 => {
            let r = IteratorResponse {
                id: u.arbitrary()?,
                key: id(u)?,
                status: u.arbitrary()?,
                timestamp: time(u)?,
                user_flags: u.arbitrary()?,
                size: u.arbitrary()?,
                iterated_keys: u.arbitrary()?,
                total_keys: u.arbitrary()?,
                record_flags: u.arbitrary()?,
            };
            let data: Vec<u8> = u.arbitrary()?;
            let mut bytes = r.encode().to_vec();
            bytes.extend_from_slice(&data);
            let (back, back_data) = IteratorResponse::decode_with_data(&bytes).unwrap();
            assert_eq!((back, back_data), (r, &data[..]));
        }
        12 => {
            let s = ServerSendRequest {
                timeout: u.arbitrary()?,
                iflags: u.arbitrary()?,
                ids: ids(u)?,
                groups: u.arbitrary()?,
            };
            assert_eq!(ServerSendRequest::decode(&s.encode()).unwrap(), s);
        }
        _ => {
            let v = HandshakeVersion {
                version: u.arbitrary()?,
                indexes_shard_count: u.arbitrary()?,
            };
            assert_eq!(HandshakeVersion::from_id(&v.to_id()), v);
            let sa = addr(u)?;
            if let Some(socket) = sa.to_socket_addr() {
                assert_eq!(DnetAddr::from(socket).to_socket_addr(), Some(socket));
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
