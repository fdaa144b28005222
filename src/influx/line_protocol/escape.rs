//! What a tag value needs to read back as itself: exactly on InfluxDB 3 (its parser is the
//! reference), and on InfluxDB 1.x wherever the two agree.
//!
//! Both read `\,`, `\=` and `\ ` as the character, and a backslash before an ordinary character as
//! itself; InfluxDB 3 alone also reads `\\` as one backslash. So `,`, `=` and space get a
//! backslash; a backslash is written as it is before an ordinary character, and doubled before a
//! backslash, `,`, `=` or space (InfluxDB 3 reads one back, 1.x two). No escape carries a newline
//! or a tab (InfluxDB 3 ends the value there, or keeps the backslash before it), nor a trailing
//! backslash (InfluxDB 3 refuses one even doubled): such values are refused.

use super::EncodeError;

/// What a byte needs in a tag value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Byte {
    Plain,
    /// A backslash before it.
    Escaped,
    /// A backslash: doubled before an `Escaped` byte or another backslash, else as it is.
    Backslash,
    /// No escape can carry it.
    Unrepresentable,
}

const TAG: [Byte; 256] = {
    let mut table = [Byte::Plain; 256];
    table[b',' as usize] = Byte::Escaped;
    table[b'=' as usize] = Byte::Escaped;
    table[b' ' as usize] = Byte::Escaped;
    table[b'\\' as usize] = Byte::Backslash;
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
            Byte::Backslash => {
                let next = TAG[usize::from(*bytes.get(at + 1)?)];
                matches!(next, Byte::Escaped | Byte::Backslash)
            }
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

/// Appends `,key=value`, or refuses a value no escape can carry (see the module's doc), or an
/// empty one. `vm` is formatted only into the error.
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
    if value.is_empty() || escape_tag_into(out, value).is_none() {
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
    use influxdb_line_protocol::parse_lines;

    /// `value` as a tag of a line, or `None` when refused.
    fn tagged(value: &str) -> Option<String> {
        let mut line = b"m".to_vec();
        tag_into(&mut line, "t", value, &"vm").ok()?;
        line.extend_from_slice(b" f=1i 1\n");
        Some(String::from_utf8(line).unwrap())
    }

    /// The tag as InfluxDB 3 reads it.
    fn read_by_influxdb3(line: &str) -> String {
        let parsed = parse_lines(line).next().unwrap().unwrap();
        parsed.tag_value("t").unwrap().to_string()
    }

    /// The tag as InfluxDB 1.x reads it: `models.unescapeTag` replaces `\,`, `\ ` and `\=` and
    /// keeps every other backslash (checked against the real server in tests/api/line_protocol.rs).
    fn read_by_influxdb1(line: &str) -> String {
        let escaped = line
            .split_once(",t=")
            .unwrap()
            .1
            .rsplit_once(" f=")
            .unwrap()
            .0;
        escaped
            .replace(r"\,", ",")
            .replace(r"\ ", " ")
            .replace(r"\=", "=")
    }

    #[test]
    fn a_backslash_is_doubled_only_before_what_would_escape_with_it() {
        for (value, written) in [
            (r"back\slash", r"back\slash"),
            (r"\leading", r"\leading"),
            (r"two\\words", r"two\\\words"),
            (r"\\\three", r"\\\\\three"),
            (r"a\,b", r"a\\\,b"),
            (r"a\ b", r"a\\\ b"),
            (r"a\=b", r"a\\\=b"),
            (r#"a\"b"#, r#"a\"b"#),
            ("a\\é", "a\\é"),
            ("with space,comma=eq", r"with\ space\,comma\=eq"),
        ] {
            let line = tagged(value).unwrap();
            assert_eq!(line, format!("m,t={written} f=1i 1\n"));
            assert_eq!(read_by_influxdb3(&line), value, "{line}");
        }
    }

    #[test]
    fn a_name_without_a_backslash_before_an_escape_reads_the_same_on_both() {
        for value in [r"back\slash", r"\x", r"a\b\c d", "a,b=c d"] {
            let line = tagged(value).unwrap();
            assert_eq!(read_by_influxdb1(&line), value, "{line}");
        }
        // Where the two differ, 1.x keeps the doubled backslash.
        let line = tagged(r"a\,b").unwrap();
        assert_eq!(read_by_influxdb1(&line), r"a\\,b");
    }

    #[test]
    fn what_no_escape_carries_is_refused_and_leaves_no_trace() {
        for value in ["", "new\nline", "tab\there", r"trailing\", r"two\\", "\\"] {
            let mut out = b"m".to_vec();
            assert!(
                matches!(
                    tag_into(&mut out, "t", value, &"vm"),
                    Err(EncodeError::UnrepresentableTag { key: "t", .. })
                ),
                "{value:?}"
            );
            assert_eq!(out, b"m");
        }
    }

    #[test]
    fn the_fast_check_flags_every_byte_the_tag_table_escapes_or_refuses() {
        for byte in 0..=u8::MAX {
            if TAG[usize::from(byte)] != Byte::Plain {
                assert!(may_need_tag_escape(byte), "tag byte {byte:#04x}");
            }
        }
        // A flagged byte that needs nothing is copied as it is, by the slow path.
        assert_eq!(tagged("it's(1)+#2").unwrap(), "m,t=it's(1)+#2 f=1i 1\n");
    }

    proptest::proptest! {
        #[test]
        fn any_tag_value_reads_back_exactly_or_is_refused(
            value in r#"[a\\ ,="é\n\t]{0,12}|\PC{0,12}"#
        ) {
            match tagged(&value) {
                Some(line) => {
                    proptest::prop_assert_eq!(read_by_influxdb3(&line), value.clone());
                    let backslash_before_escape = ["\\\\", "\\,", "\\ ", "\\="]
                        .iter()
                        .any(|pair| value.contains(pair));
                    if !backslash_before_escape {
                        proptest::prop_assert_eq!(read_by_influxdb1(&line), value);
                    }
                }
                None => proptest::prop_assert!(
                    value.is_empty() || value.ends_with('\\') || value.contains(['\n', '\t'])
                ),
            }
        }
    }
}
