//! What a tag value needs: a backslash before `,`, `=`, space and backslash, as InfluxDB's builder
//! escapes. InfluxDB 3's parser shows what no escape can carry: a newline or a tab ends the value
//! whatever precedes it, and a value ending in a backslash is refused even when escaped. Such
//! values are refused here with an error rather than written corrupt.

use super::EncodeError;

/// What a byte needs in a tag value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Byte {
    Plain,
    /// A backslash before it.
    Escaped,
    /// No escape can carry it.
    Unrepresentable,
}

const TAG: [Byte; 256] = {
    let mut table = [Byte::Plain; 256];
    table[b',' as usize] = Byte::Escaped;
    table[b'=' as usize] = Byte::Escaped;
    table[b' ' as usize] = Byte::Escaped;
    table[b'\\' as usize] = Byte::Escaped;
    table[b'\n' as usize] = Byte::Unrepresentable;
    table[b'\t' as usize] = Byte::Unrepresentable;
    table
};

/// Whether a byte may be other than plain in a tag value: a test the compiler vectorizes, unlike
/// a table lookup. It is true for every byte `TAG` does not call plain (below `-`, `=`, `\\`).
fn may_need_tag_escape(byte: u8) -> bool {
    byte < b'-' || byte == b'=' || byte == b'\\'
}

/// Appends `text` escaped as a tag value; `None`, with `out` partly written, when no escape can
/// carry it. Text with no byte `may_need_tag_escape` flags (nearly all of it) is copied whole after
/// one vectorized pass; the rest goes byte by byte through `TAG`.
fn escape_tag_into(out: &mut Vec<u8>, text: &str) -> Option<()> {
    let bytes = text.as_bytes();
    // `|` rather than `any`: no early exit, so the loop vectorizes.
    if !bytes
        .iter()
        .fold(false, |flagged, &b| flagged | may_need_tag_escape(b))
    {
        out.extend_from_slice(bytes);
        return Some(());
    }
    let mut plain_from = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let escaped = match TAG[byte as usize] {
            Byte::Plain => false,
            Byte::Escaped => true,
            Byte::Unrepresentable => return None,
        };
        // Escapes are ASCII, so escaping byte by byte keeps UTF-8 intact.
        if escaped {
            out.extend_from_slice(&bytes[plain_from..at]);
            out.push(b'\\');
            plain_from = at;
        }
    }
    out.extend_from_slice(&bytes[plain_from..]);
    Some(())
}

/// Appends `,key=value`, or refuses a value no escape can carry: empty, with a newline or a tab,
/// or ending in a backslash. `vm` is formatted only into the error.
pub(super) fn tag_into(
    out: &mut Vec<u8>,
    key: &'static str,
    value: &str,
    vm: &dyn std::fmt::Display,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.push(b',');
    out.extend_from_slice(plain(key).as_bytes());
    out.push(b'=');
    if value.is_empty() || value.ends_with('\\') || escape_tag_into(out, value).is_none() {
        out.truncate(start);
        return Err(EncodeError::UnrepresentableTag {
            key,
            value: value.to_owned(),
            uuid: vm.to_string(),
        });
    }
    Ok(())
}

/// Appends `,key=value` for a value formatted here (a number, `-`, a UUID), which never needs an
/// escape, so it is not checked for one.
#[inline(always)]
pub(super) fn formatted_tag_into(out: &mut Vec<u8>, key: &'static str, value: &[u8]) {
    debug_assert!(!value.is_empty() && !value.iter().copied().any(may_need_tag_escape));
    out.push(b',');
    out.extend_from_slice(plain(key).as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
}

/// Measurements, tag keys and field keys are this crate's constants, none of which needs an
/// escape (nor ends in a backslash): they are written as they are.
#[inline(always)]
pub(super) fn plain(name: &'static str) -> &'static str {
    debug_assert!(
        !name.is_empty() && !name.bytes().any(|b| b",= \\\"\n\t".contains(&b)),
        "{name:?} needs escaping"
    );
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_check_flags_every_byte_the_tag_table_escapes_or_refuses() {
        for byte in 0..=u8::MAX {
            if TAG[usize::from(byte)] != Byte::Plain {
                assert!(may_need_tag_escape(byte), "tag byte {byte:#04x}");
            }
        }
        // A flagged byte that needs nothing is copied as it is, by the slow path.
        let mut line = Vec::new();
        tag_into(&mut line, "t", "it's(1)+#2", &"vm").unwrap();
        assert_eq!(line, b",t=it's(1)+#2");
    }
}
