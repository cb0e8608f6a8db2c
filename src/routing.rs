//! Per-group route tables of ring points, owner lookup, and the split of a node's keys between its shards.
