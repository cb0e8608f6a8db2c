//! The per-shard blob log: eblob-format data and index files, checksums, recovery, defrag.
