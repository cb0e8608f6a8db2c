//! The storage node: shard threads, connections, command dispatch, handshake, monitor.
