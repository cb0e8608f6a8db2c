//! The ioserv.json configuration (2.26 schema plus our additions): parsing, defaults, validation.
