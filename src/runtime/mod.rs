//! The shard runtime: a single-threaded executor over one io_uring per thread, sockets, files, timers and cross-shard mailboxes.
