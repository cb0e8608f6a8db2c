//! `dnet_ioclient --help` (also `-h`): every flag on one line, as the original's usage text.

/// The usage text.
pub const USAGE: &str = "\
Usage: dnet_ioclient -r host:port:family [options]
 -r addr:port:family  - adds a route to the given node (required; repeatable)
 -g groups            - group IDs to connect, colon separated (1:2:3)
 -W file              - write given file to the network storage
 -R file              - read given file from the network into the local storage
 -D object            - read latest data for given object to stdout (the -I id replaces the name)
 -u file              - unlink (remove) given object in every group
 -L file              - lookup a storage which hosts given file
 -I id                - transaction id: a hex key id used instead of hashing the name
 -H                   - do not hash id, use the -D name's bytes as the id (put it after -D)
 -N namespace         - use this namespace for operations
 -c cmd-event         - execute event on a remote node: \"app@event [data]\"
 -k src-key           - use this src_key with exec
 -O offset            - read/write offset in the file
 -S size              - read/write transaction size
 -C flags             - command flags (DNET_FLAGS_*, decimal or 0x hex)
 -i flags             - IO flags (DNET_IO_FLAGS_*, decimal or 0x hex)
 -w timeout           - wait timeout in seconds (also the route check timeout)
 -a                   - request stats from all connected nodes (with -s / -z; alone: both)
 -s                   - request IO counter stats (commands, counts, errors) from the node
 -z                   - request VFS stats (load average, memory, file system) from the node
 -U status            - update server status: 1 - elliptics exits, 2 - goes RO
 -M level             - set new log level of the remote node (accepted, not applied)
 -F flags             - change node flags (accepted, not applied)
 -f flags             - node flags of this client (accepted, not used)
 -m level             - client log level (accepted; errors always go to stderr)
 -l log               - client log file (accepted; errors always go to stderr)
 -A addr              - accepted for compatibility, not used
 -d request           - defragmentation on the -b backend of the -r node: start, compact, stop, status
 -b backend_id        - backend for -d and -B
 -B status            - backend control on the -b backend: enable, disable, enable_write, disable_write, delay, status
 -p ms                - the delay for -B delay, in milliseconds
 -h, --help           - this help
 ...                  - every parameter can be repeated, the last one is used (-r adds up)
";
