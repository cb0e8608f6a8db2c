//! [`Files`]: the sealed files a key table lookup names, a short list kept inline (one
//! or two files in the common case) that spills to the heap only past its inline room.

/// A short list of file numbers kept inline (the common case: one or two).
#[derive(Debug, Default)]
pub struct Files {
    inline: [u32; 4],
    len: usize,
    more: Vec<u32>,
}

impl Files {
    pub fn push(&mut self, f: u32) {
        match self.inline.get_mut(self.len) {
            Some(s) => *s = f,
            None => self.more.push(f),
        }
        self.len += 1;
    }

    /// Sorted newest (highest number) first, each file once.
    pub fn newest_first(&mut self) {
        if self.more.is_empty() {
            let n = self.len.min(4);
            let s = &mut self.inline[..n];
            s.sort_unstable_by(|a, b| b.cmp(a));
            let mut w = 0;
            for r in 0..n {
                if w == 0 || s[w - 1] != s[r] {
                    s[w] = s[r];
                    w += 1;
                }
            }
            self.len = w;
        } else {
            let mut all: Vec<u32> = self.inline.to_vec();
            all.append(&mut self.more);
            all.sort_unstable_by(|a, b| b.cmp(a));
            all.dedup();
            self.inline = [0; 4];
            self.len = all.len();
            for (i, f) in all.into_iter().enumerate() {
                match self.inline.get_mut(i) {
                    Some(s) => *s = f,
                    None => self.more.push(f),
                }
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.inline[..self.len.min(4)]
            .iter()
            .copied()
            .chain(self.more.iter().copied())
    }
}
