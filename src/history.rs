//! The history `ids` file: a backend's ring points, read, validated, or generated atomically.
