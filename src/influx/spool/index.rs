//! What the spool holds, chunk by chunk in arrival order, kept in memory beside the file: which
//! lines InfluxDB already has (never sent again, even while their removal from the file fails),
//! which are in flight, and which the oldest are when room must be made.

use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    pub key: u64,
    pub lines: usize,
    pub bytes: u64,
}

/// `take` lines of chunk `key`, after its first `skip`.
#[derive(Debug, PartialEq, Eq)]
pub struct Span {
    pub key: u64,
    pub skip: usize,
    pub take: usize,
}

/// Written lines to take out of the file: whole chunks, and the first lines of the next one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Removal {
    pub whole: Vec<Chunk>,
    pub partly: Option<(Chunk, usize)>,
}

impl Removal {
    pub fn is_empty(&self) -> bool {
        self.whole.is_empty() && self.partly.is_none()
    }
}

#[derive(Debug, Default)]
pub struct Index {
    chunks: VecDeque<Chunk>,
    lines: usize,
    bytes: u64,
    /// The first lines, which InfluxDB has: still in the file until a removal commits.
    written: usize,
    /// The batch in flight: the lines right after the written ones.
    in_flight: usize,
    next_key: u64,
}

impl Index {
    /// The chunks a file holds, in key order.
    pub fn new(chunks: impl IntoIterator<Item = Chunk>) -> Self {
        let mut index = Index::default();
        for chunk in chunks {
            index.append(chunk);
        }
        index
    }

    /// Lines not yet written, the batch in flight included.
    pub fn unsent(&self) -> usize {
        self.lines - self.written
    }

    /// Lines waiting for a batch.
    pub fn waiting(&self) -> usize {
        self.unsent() - self.in_flight
    }

    pub fn written(&self) -> usize {
        self.written
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// A new chunk's place, after every other.
    pub fn chunk(&mut self, lines: usize, bytes: u64) -> Chunk {
        self.next_key += 1;
        Chunk {
            key: self.next_key - 1,
            lines,
            bytes,
        }
    }

    pub fn append(&mut self, chunk: Chunk) {
        self.lines += chunk.lines;
        self.bytes += chunk.bytes;
        self.next_key = self.next_key.max(chunk.key + 1);
        self.chunks.push_back(chunk);
    }

    /// Up to `limit` of the oldest lines not written, as the batch in flight.
    pub fn take_batch(&mut self, limit: usize) -> Vec<Span> {
        let mut skip = self.written;
        let mut left = limit.min(self.unsent());
        let mut spans = Vec::new();
        for chunk in &self.chunks {
            if left == 0 {
                break;
            }
            if skip >= chunk.lines {
                skip -= chunk.lines;
                continue;
            }
            let take = left.min(chunk.lines - skip);
            spans.push(Span {
                key: chunk.key,
                skip,
                take,
            });
            left -= take;
            skip = 0;
        }
        self.in_flight = spans.iter().map(|span| span.take).sum();
        spans
    }

    /// InfluxDB has the batch in flight: from now on it counts as written, whether or not its
    /// removal from the file succeeds.
    pub fn batch_done(&mut self) -> usize {
        let done = std::mem::take(&mut self.in_flight);
        self.written += done;
        done
    }

    pub fn batch_failed(&mut self) {
        self.in_flight = 0;
    }

    /// What removing the written lines takes.
    pub fn removal(&self) -> Removal {
        let mut left = self.written;
        let mut removal = Removal::default();
        for chunk in &self.chunks {
            if left == 0 {
                break;
            }
            if left < chunk.lines {
                removal.partly = Some((*chunk, left));
                break;
            }
            left -= chunk.lines;
            removal.whole.push(*chunk);
        }
        removal
    }

    /// `removal` is committed; what is left of its partly written chunk takes `rest_bytes`.
    pub fn removed(&mut self, removal: &Removal, rest_bytes: u64) {
        for chunk in &removal.whole {
            self.chunks.pop_front();
            self.lines -= chunk.lines;
            self.bytes -= chunk.bytes;
            self.written -= chunk.lines;
        }
        if let Some((_, lines)) = removal.partly
            && let Some(front) = self.chunks.front_mut()
        {
            front.lines -= lines;
            self.lines -= lines;
            self.written -= lines;
            self.bytes -= front.bytes - rest_bytes;
            front.bytes = rest_bytes;
        }
    }

    /// The oldest chunks to drop so that, with `new` added and `removal` made, at most `allowed`
    /// bytes remain: never a written line nor one in flight; the new chunks last of all.
    pub fn overflow(&self, new: &[Chunk], removal: &Removal, allowed: u64) -> Vec<Chunk> {
        let removed: u64 = removal.whole.iter().map(|chunk| chunk.bytes).sum();
        let new_bytes: u64 = new.iter().map(|chunk| chunk.bytes).sum();
        let mut bytes = (self.bytes - removed) + new_bytes;
        self.chunks
            .iter()
            .skip(self.chunks_touched(self.written + self.in_flight))
            .chain(new)
            .take_while(|chunk| {
                let over = bytes > allowed;
                bytes = bytes.saturating_sub(chunk.bytes);
                over
            })
            .copied()
            .collect()
    }

    /// How many front chunks hold the first `lines` lines.
    fn chunks_touched(&self, lines: usize) -> usize {
        let mut left = lines;
        self.chunks
            .iter()
            .take_while(|chunk| {
                let touched = left > 0;
                left = left.saturating_sub(chunk.lines);
                touched
            })
            .count()
    }

    /// Takes out the `evicted` chunks of this index; returns their lines.
    pub fn evicted(&mut self, evicted: &[Chunk]) -> usize {
        let mut lines = 0;
        self.chunks.retain(|chunk| {
            let gone = evicted.iter().any(|e| e.key == chunk.key);
            if gone {
                lines += chunk.lines;
                self.bytes -= chunk.bytes;
            }
            !gone
        });
        self.lines -= lines;
        lines
    }

    /// The chunks a reopened file holds, against what this index knew: a removal that was not yet
    /// durable when the file failed may be undone there, and those lines are written all the
    /// same. Returns the lines this index held that the file no longer has.
    pub fn reconcile(&mut self, loaded: Vec<Chunk>) -> usize {
        let first_known = self.chunks.front().map_or(self.next_key, |chunk| chunk.key);
        let mut written = 0;
        let mut lost = 0;
        let mut left = self.written;
        for known in &self.chunks {
            let known_written = left.min(known.lines);
            left -= known_written;
            match loaded.iter().find(|chunk| chunk.key == known.key) {
                Some(chunk) => written += chunk.lines.saturating_sub(known.lines) + known_written,
                None => lost += known.lines - known_written,
            }
        }
        written += loaded
            .iter()
            .filter(|chunk| chunk.key < first_known)
            .map(|chunk| chunk.lines)
            .sum::<usize>();
        let (in_flight, next_key) = (self.in_flight, self.next_key);
        *self = Index::new(loaded);
        self.next_key = self.next_key.max(next_key);
        self.written = written.min(self.lines);
        self.in_flight = in_flight.min(self.unsent());
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks of `lines` lines of 10 bytes each.
    fn index_of(lines: &[usize]) -> Index {
        let mut index = Index::default();
        for &n in lines {
            let chunk = index.chunk(n, 10 * n as u64);
            index.append(chunk);
        }
        index
    }

    fn lines_of(spans: &[Span]) -> Vec<(u64, usize, usize)> {
        spans.iter().map(|s| (s.key, s.skip, s.take)).collect()
    }

    #[test]
    fn a_written_batch_is_never_sent_again_while_its_removal_fails() {
        let mut index = index_of(&[4, 4]);
        assert_eq!(lines_of(&index.take_batch(6)), [(0, 0, 4), (1, 0, 2)]);
        assert_eq!(index.batch_done(), 6);
        // Its removal failed (nothing committed): the next batch still starts after it.
        assert_eq!(lines_of(&index.take_batch(10)), [(1, 2, 2)]);
        index.batch_failed();
        assert_eq!(index.unsent(), 2);
        assert_eq!(lines_of(&index.take_batch(10)), [(1, 2, 2)]);
        index.batch_done();
        assert_eq!(index.unsent(), 0);
        assert!(index.take_batch(10).is_empty(), "nothing is sent twice");
    }

    #[test]
    fn a_removal_takes_whole_chunks_and_trims_the_next() {
        let mut index = index_of(&[4, 4]);
        index.take_batch(6);
        index.batch_done();
        let removal = index.removal();
        assert_eq!(removal.whole.len(), 1);
        assert_eq!(removal.partly.map(|(c, n)| (c.key, n)), Some((1, 2)));
        index.removed(&removal, 20);
        assert_eq!((index.written(), index.unsent(), index.bytes()), (0, 2, 20));
        assert!(index.removal().is_empty());
    }

    #[test]
    fn a_removal_undone_by_a_reopened_file_stays_written() {
        let mut index = index_of(&[4, 4, 4]);
        index.take_batch(6);
        index.batch_done();
        let removal = index.removal();
        index.removed(&removal, 20);
        // The file, reopened, has the chunks as before that removal (it was not durable).
        let loaded = index_of(&[4, 4, 4]).chunks.into_iter().collect();
        assert_eq!(index.reconcile(loaded), 0);
        assert_eq!((index.written(), index.unsent()), (6, 6));
        assert_eq!(lines_of(&index.take_batch(10)), [(1, 2, 2), (2, 0, 4)]);
        let fresh = index.chunk(1, 10);
        assert_eq!(fresh.key, 3, "keys keep growing");
    }

    #[test]
    fn chunks_a_reopened_file_lost_are_counted() {
        let mut index = index_of(&[4, 4]);
        index.take_batch(2);
        index.batch_done();
        assert_eq!(index.reconcile(Vec::new()), 6);
        assert_eq!(index.unsent(), 0);
    }

    #[test]
    fn room_is_made_from_the_oldest_lines_neither_written_nor_in_flight() {
        let mut index = index_of(&[2, 2, 2, 2]);
        index.take_batch(3);
        index.batch_done();
        index.take_batch(2);
        let new = [index.chunk(2, 20)];
        // 100 bytes with the new chunk, 80 once chunk 0 goes out with the removal.
        let removal = index.removal();
        let evict = index.overflow(&new, &removal, 60);
        assert_eq!(evict.iter().map(|c| c.key).collect::<Vec<_>>(), [3]);
        // With no room at all, the new chunk goes too, and nothing touched by the batch.
        let evict = index.overflow(&new, &removal, 0);
        assert_eq!(evict.iter().map(|c| c.key).collect::<Vec<_>>(), [3, 4]);
    }
}
