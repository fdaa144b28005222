//! `Lines`: what one cycle encodes, what the writer's buffers take in, what the spool stores in
//! chunks.

/// Lines back to back, each ending with `\n`: what one cycle encodes, in one buffer, so a line
/// costs no allocation of its own.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Lines {
    /// Appended to only by `line::LineWriter`, a whole line at a time.
    pub(super) bytes: Vec<u8>,
    pub(super) count: usize,
}

impl Lines {
    pub fn with_capacity(bytes: usize) -> Self {
        Lines {
            bytes: Vec::with_capacity(bytes),
            count: 0,
        }
    }

    /// How many lines.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.count = 0;
    }

    /// Each line, with its `\n`.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.bytes.split_inclusive(|&b| b == b'\n')
    }

    /// Runs of at most `lines` whole lines, with their line counts.
    pub fn chunks(&self, lines: usize) -> impl Iterator<Item = (&[u8], usize)> {
        let mut rest = self.bytes.as_slice();
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let (mut end, mut count) = (0, 0);
            while count < lines.max(1) && end < rest.len() {
                end += rest[end..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(rest.len() - end, |at| at + 1);
                count += 1;
            }
            let (chunk, tail) = rest.split_at(end);
            rest = tail;
            Some((chunk, count))
        })
    }
}

impl<'a> FromIterator<&'a [u8]> for Lines {
    /// Lines that already end with `\n`.
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(lines: I) -> Self {
        let mut all = Lines::default();
        for line in lines {
            debug_assert!(line.ends_with(b"\n"));
            all.bytes.extend_from_slice(line);
            all.count += 1;
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_whole_lines_in_order() {
        let text = "m v=1i 1\nm v=22i 2\nm v=333i 3\nm v=4i 4\nm v=5i 5\n";
        let lines: Lines = text.as_bytes().split_inclusive(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), 5);
        let chunks: Vec<(&str, usize)> = lines
            .chunks(2)
            .map(|(bytes, count)| (std::str::from_utf8(bytes).unwrap(), count))
            .collect();
        assert_eq!(
            chunks,
            [
                ("m v=1i 1\nm v=22i 2\n", 2),
                ("m v=333i 3\nm v=4i 4\n", 2),
                ("m v=5i 5\n", 1)
            ]
        );
        assert_eq!(lines.chunks(10).count(), 1);
        assert_eq!(Lines::default().chunks(3).count(), 0);
    }
}
