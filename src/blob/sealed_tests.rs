//! Tests of [`super`]: lookups on every page, copies spanning pages, refused files;
//! and the sorted index files the tests of [`super::super::index`] build.

/// Sorted index files for the tests of this module and of [`super::index`].
pub mod test_files {
    use super::super::*;

    /// A header of `key` at `position` (200 bytes on disk).
    pub fn entry(key: RawId, position: u64, flags: u64) -> DiskControl {
        DiskControl {
            key,
            flags,
            data_size: 50,
            disk_size: 200,
            position,
        }
    }

    /// Write `entries` (sorted here by key, then position) as a sorted index in `dir` and
    /// open it.
    pub fn sealed(dir: &Path, name: &str, mut entries: Vec<DiskControl>) -> SealedIndex {
        entries.sort_by_key(|d| (d.key, d.position));
        let bytes: Vec<u8> = entries.iter().flat_map(|d| d.encode()).collect();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        SealedIndex::open(&path, u64::MAX).unwrap().unwrap().0
    }
}

mod lookups {
    use super::super::*;
    use super::test_files::{entry, sealed};

    fn key(i: u64) -> RawId {
        RawId::from_key(&i.to_le_bytes())
    }

    #[test]
    fn every_key_is_found_on_every_page_and_absent_keys_are_not() {
        let dir = tempfile::tempdir().unwrap();
        // Over 1 MiB of entries: the walk that builds the fences reads several chunks.
        let n = 25_000u64;
        let mut idx = sealed(
            dir.path(),
            "a",
            (0..n).map(|i| entry(key(i), i * 200, 0)).collect(),
        );
        assert_eq!(idx.entry_count(), n);
        // One hash per key, handed to the log's key table once.
        assert_eq!(idx.take_key_hashes().len(), n as usize);
        assert!(idx.take_key_hashes().is_empty());
        for i in 0..n {
            let (slot, dc) = idx.find(&key(i)).unwrap().unwrap();
            assert_eq!(dc.position, i * 200, "key {i}");
            assert_eq!(idx.entry_at(slot).unwrap(), Some(dc));
        }
        for i in n..2 * n {
            assert_eq!(idx.find(&key(i)).unwrap(), None);
        }
        // Far fewer bytes than the 96-byte entries.
        assert!(
            idx.allocated_bytes() < (n as usize) * 8,
            "{}",
            idx.allocated_bytes()
        );
    }

    #[test]
    fn the_newest_copy_of_a_key_wins_even_when_its_copies_span_pages() {
        let dir = tempfile::tempdir().unwrap();
        let mut all = Vec::new();
        for i in 0..300u64 {
            all.push(entry(key(i), i * 200, 0));
        }
        // 100 copies of one key: about two and a half pages; the last one removed.
        for c in 0..100u64 {
            let flags = if c == 99 { record_flags::REMOVE } else { 0 };
            all.push(entry(key(7), 100_000 + c * 200, flags));
        }
        let idx = sealed(dir.path(), "b", all);
        let (_, dc) = idx.find(&key(7)).unwrap().unwrap();
        assert_eq!(dc.position, 100_000 + 99 * 200);
        assert_ne!(dc.flags & record_flags::REMOVE, 0);
        for i in (0..300u64).filter(|&i| i != 7) {
            assert_eq!(idx.find(&key(i)).unwrap().unwrap().1.position, i * 200);
        }
        let mut walked = 0;
        idx.walk(|_, _| {
            walked += 1;
            true
        })
        .unwrap();
        assert_eq!(walked, 400);
    }

    #[test]
    fn an_unsorted_or_out_of_file_index_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        let (lo, hi) = if key(1) < key(2) {
            (key(1), key(2))
        } else {
            (key(2), key(1))
        };
        let bytes: Vec<u8> = [entry(hi, 0, 0), entry(lo, 200, 0)]
            .iter()
            .flat_map(|d| d.encode())
            .collect();
        std::fs::write(&path, &bytes).unwrap();
        assert!(SealedIndex::open(&path, u64::MAX).unwrap().is_none());
        let one: Vec<u8> = entry(key(1), 1_000, 0).encode().to_vec();
        std::fs::write(&path, one).unwrap();
        assert!(SealedIndex::open(&path, 1_100).unwrap().is_none());
        assert!(SealedIndex::open(&path, 1_200).unwrap().is_some());
    }
}
