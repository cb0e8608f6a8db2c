//! How the segmented LRU moves its entries (see [`super::Slru`]): promoting a hit one page
//! hotter, placing an entry in a page and making room there by pushing the least recently
//! used ones colder, evicting from the coldest page, refiling an entry's timed event, and
//! the doubly linked page lists themselves (slot indices, `NIL` at the ends).

use super::{charge_of, Page, Slru, NIL, PAGE_REMOVING, PAGE_UNLINKED};

impl Slru {
    pub(super) fn refile_event(&mut self, i: u32) {
        let Some(slot) = self.slot_mut(i) else {
            return;
        };
        let (old, new, id) = (slot.event_s, slot.entry.event_s(), slot.id);
        slot.event_s = new;
        if old != new {
            if old != 0 {
                self.events.remove(&(old, id));
            }
            if new != 0 {
                self.events.insert((new, id));
            }
        }
    }

    pub(super) fn recharge(&mut self, i: u32) {
        let Some(slot) = self.slot_mut(i) else {
            return;
        };
        let (old, new, page) = (slot.charged_bytes, charge_of(&slot.entry.data), slot.page);
        slot.charged_bytes = new;
        self.size_bytes = self.size_bytes.saturating_sub(old) + new;
        if let Some(p) = self.pages.get_mut(page) {
            p.size_bytes = p.size_bytes.saturating_sub(old) + new;
        } else if page == PAGE_REMOVING {
            self.removing_bytes = self.removing_bytes.saturating_sub(old) + new;
        }
    }

    pub(super) fn promote(&mut self, i: u32) {
        let Some(page) = self.slot(i).map(|s| s.page) else {
            return;
        };
        let target = if page == PAGE_REMOVING {
            self.pages.len() - 1
        } else {
            page.saturating_sub(1)
        };
        self.place(i, target);
    }

    /// Move slot `i` to the most recently used end of page `target` (or of the nearest
    /// page it fits in), making room there first; an entry too large for any page is
    /// evicted.
    pub(super) fn place(&mut self, i: u32, target: usize) {
        let Some(charged) = self.slot(i).map(|s| s.charged_bytes) else {
            return;
        };
        let fits = |p: &Page| p.max_bytes >= charged;
        let colder = (target..self.pages.len()).find(|&p| fits(&self.pages[p]));
        let page = colder.or_else(|| (0..target).rev().find(|&p| fits(&self.pages[p])));
        self.unlink(i);
        let Some(page) = page else {
            self.evict(i);
            return;
        };
        self.make_room(page, charged);
        self.link_tail(i, page);
    }

    /// Push page `page`'s least recently used entries one page colder (out of the cache
    /// from the coldest page) until `need` more bytes fit.
    pub(super) fn make_room(&mut self, page: usize, need: u64) {
        loop {
            let p = &self.pages[page];
            if p.size_bytes + need <= p.max_bytes || p.head == NIL {
                return;
            }
            let victim = p.head;
            self.unlink(victim);
            if page + 1 < self.pages.len() {
                self.place(victim, page + 1);
            } else {
                self.evict(victim);
            }
        }
    }

    /// Drop an unlinked slot, or keep it as "removing" while it is dirty.
    pub(super) fn evict(&mut self, i: u32) {
        let Some(slot) = self.slot_mut(i) else {
            return;
        };
        if slot.entry.is_dirty() {
            slot.page = PAGE_REMOVING;
            let (id, charged) = (slot.id, slot.charged_bytes);
            self.removing_objects += 1;
            self.removing_bytes += charged;
            self.evicted_dirty.push(id);
        } else {
            let id = slot.id;
            self.remove(&id);
        }
    }

    pub(super) fn link_tail(&mut self, i: u32, page: usize) {
        let tail = self.pages[page].tail;
        let Some(slot) = self.slot_mut(i) else {
            return;
        };
        slot.page = page;
        slot.prev = tail;
        slot.next = NIL;
        let charged = slot.charged_bytes;
        match self.slot_mut(tail) {
            Some(t) => t.next = i,
            None => self.pages[page].head = i,
        }
        let p = &mut self.pages[page];
        p.tail = i;
        p.size_bytes += charged;
    }

    /// Take slot `i` out of its page's list, or out of the removing set.
    pub(super) fn unlink(&mut self, i: u32) {
        let Some(slot) = self.slot_mut(i) else {
            return;
        };
        let (page, prev, next, charged) = (slot.page, slot.prev, slot.next, slot.charged_bytes);
        slot.page = PAGE_UNLINKED;
        slot.prev = NIL;
        slot.next = NIL;
        if page == PAGE_REMOVING {
            self.removing_objects = self.removing_objects.saturating_sub(1);
            self.removing_bytes = self.removing_bytes.saturating_sub(charged);
            return;
        }
        if page >= self.pages.len() {
            return;
        }
        match self.slot_mut(prev) {
            Some(p) => p.next = next,
            None => self.pages[page].head = next,
        }
        match self.slot_mut(next) {
            Some(n) => n.prev = prev,
            None => self.pages[page].tail = prev,
        }
        let p = &mut self.pages[page];
        p.size_bytes = p.size_bytes.saturating_sub(charged);
    }
}
