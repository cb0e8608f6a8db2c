//! Address strings ("host:port:family[-group]") and their socket addresses.
