//! The Rust client: Node (connections, route table) and Session (the Elliptics session API).
