//! One line appended to `Lines`: the measurement, then tags, then fields, then the timestamp.

use super::EncodeError;
use super::escape::plain;
use super::lines::Lines;

/// Abandoned, or finished without a field, it leaves `lines` as it was.
pub(super) struct LineWriter<'a> {
    lines: &'a mut Lines,
    start: usize,
    fields: usize,
}

/// Every method is inlined into the line it writes, where its key and measurement are constants:
/// their bytes are then stored at a known length rather than through a call to memcpy.
impl<'a> LineWriter<'a> {
    /// A line with the tags `write_tags` appends right after the measurement; none at all (and
    /// `lines` as it was) when they cannot be carried.
    #[inline(always)]
    pub(super) fn tagged(
        lines: &'a mut Lines,
        measurement: &'static str,
        write_tags: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
    ) -> Result<Self, EncodeError> {
        let start = lines.bytes.len();
        lines.bytes.extend_from_slice(plain(measurement).as_bytes());
        let line = LineWriter {
            lines,
            start,
            fields: 0,
        };
        match write_tags(&mut line.lines.bytes) {
            Ok(()) => Ok(line),
            Err(error) => {
                line.abandon();
                Err(error)
            }
        }
    }

    #[inline(always)]
    fn key(&mut self, key: &'static str) {
        let out = &mut self.lines.bytes;
        out.push(if self.fields == 0 { b' ' } else { b',' });
        self.fields += 1;
        out.extend_from_slice(plain(key).as_bytes());
        out.push(b'=');
    }

    #[inline(always)]
    pub(super) fn int(&mut self, key: &'static str, value: i64) {
        self.key(key);
        let out = &mut self.lines.bytes;
        out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        out.push(b'i');
    }

    /// The shortest text that reads back as the same `f64` (`zmij`, also serde_json's): always
    /// with a `.` or an exponent (`1e-7`, `1.5e+20`), both of which InfluxDB 1.x and 3 parse as
    /// floats, and never with `i`. Only finite values have a text, so others are left out.
    #[inline(always)]
    pub(super) fn float(&mut self, key: &'static str, value: f64) {
        if value.is_finite() {
            self.key(key);
            let mut text = zmij::Buffer::new();
            let text = text.format_finite(value).as_bytes();
            self.lines.bytes.extend_from_slice(text);
        }
    }

    /// A string this crate names (a state), which needs no escape.
    #[inline(always)]
    pub(super) fn constant_string(&mut self, key: &'static str, value: &'static str) {
        self.key(key);
        let out = &mut self.lines.bytes;
        out.push(b'"');
        out.extend_from_slice(plain(value).as_bytes());
        out.push(b'"');
    }

    /// Any text: `"` and `\\` escaped, control characters (a newline would end the line) written
    /// as spaces.
    pub(super) fn string(&mut self, key: &'static str, value: &str) {
        self.key(key);
        let out = &mut self.lines.bytes;
        out.push(b'"');
        for c in value.chars() {
            match c {
                '"' | '\\' => {
                    out.push(b'\\');
                    out.push(c as u8);
                }
                c if c.is_control() => out.push(b' '),
                c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        out.push(b'"');
    }

    /// False, with nothing written, when the line has no field: a line needs at least one.
    #[inline(always)]
    pub(super) fn finish(self, timestamp_ns: i64) -> bool {
        let out = &mut self.lines.bytes;
        if self.fields == 0 {
            out.truncate(self.start);
            return false;
        }
        out.push(b' ');
        out.extend_from_slice(itoa::Buffer::new().format(timestamp_ns).as_bytes());
        out.push(b'\n');
        self.lines.count += 1;
        true
    }

    /// Leaves `lines` as it was.
    fn abandon(self) {
        self.lines.bytes.truncate(self.start);
    }
}
