//! Finds one top-level field of a JSON object without decoding the rest.
//!
//! Sources decode each line into the user's typed record with serde, and take the event time
//! from a field named at run time (`--time-field`). Rather than parse every line twice, this
//! scanner walks the line once at byte level, skipping strings and nested values, and returns
//! the raw text of the named top-level field. It is a fraction of the cost of the serde parse.

/// The raw value of a top-level field.
#[derive(Debug, PartialEq, Eq)]
pub enum RawValue<'a> {
    /// A JSON string's contents (escapes kept as written; time strings have none).
    Str(&'a str),
    /// A number, as written.
    Number(&'a str),
    /// `null`, `true`, `false`, an object or an array.
    Other,
}

/// Returns the value of `key` at the top level of the JSON object in `line`, or `None` if the
/// line is not an object or the key is absent at the top level.
pub fn find_top_level<'a>(line: &'a [u8], key: &str) -> Option<RawValue<'a>> {
    let key = key.as_bytes();
    let mut pos = skip_ws(line, 0);
    if line.get(pos) != Some(&b'{') {
        return None;
    }
    pos += 1;
    loop {
        pos = skip_ws(line, pos);
        match line.get(pos)? {
            b'}' => return None,
            b',' => {
                pos += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let key_end = string_end(line, pos)?;
        let this_key = &line[pos + 1..key_end - 1];
        pos = skip_ws(line, key_end);
        if line.get(pos) != Some(&b':') {
            return None;
        }
        pos = skip_ws(line, pos + 1);
        let value_end = value_end(line, pos)?;
        if this_key == key {
            let text = std::str::from_utf8(&line[pos..value_end]).ok()?;
            return Some(match line[pos] {
                b'"' => RawValue::Str(&text[1..text.len() - 1]),
                b'-' | b'0'..=b'9' => RawValue::Number(text),
                _ => RawValue::Other,
            });
        }
        pos = value_end;
    }
}

/// The value of `key` when it is the line's first field and a plain integer, as `weir gen` and
/// most producers write the time field (`{"ts":1767225600001,...`); `None` for anything else,
/// and the caller falls back to [`find_top_level`]. It saves the general scan, the UTF-8 check
/// and the number parse on the common layout.
pub fn leading_integer(line: &[u8], key: &str) -> Option<i64> {
    let key = key.as_bytes();
    // Byte by byte: a key is a few bytes, shorter than a call to `memcmp` is worth.
    let named = line.get(2..2 + key.len()).is_some_and(|k| k.iter().zip(key).all(|(a, b)| a == b));
    if !named || !line.starts_with(b"{\"") {
        return None;
    }
    let rest = line[2 + key.len()..].strip_prefix(b"\":")?;
    let (negative, digits) = match rest.first()? {
        b'-' => (true, &rest[1..]),
        _ => (false, rest),
    };
    let count = digit_count(digits);
    // Up to 18 digits cannot overflow; a fraction, an exponent or a space takes the general path.
    if count == 0 || count > 18 || !matches!(digits.get(count), Some(b',' | b'}')) {
        return None;
    }
    let value = parse_digits(&digits[..count]) as i64;
    Some(if negative { -value } else { value })
}

/// How many ASCII digits `bytes` starts with, eight at a time while it can.
#[inline]
pub(crate) fn digit_count(bytes: &[u8]) -> usize {
    let mut count = 0;
    while let Some(chunk) = bytes.get(count..count + 8) {
        if !eight_are_digits(u64::from_le_bytes(chunk.try_into().expect("eight bytes"))) {
            break;
        }
        count += 8;
    }
    count + bytes[count..].iter().take_while(|b| b.is_ascii_digit()).count()
}

/// Whether all eight bytes are `0`–`9`: each has the high nibble 3, and adding 6 does not carry
/// its low nibble past 9.
#[inline]
fn eight_are_digits(chunk: u64) -> bool {
    const HIGH_NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    chunk & HIGH_NIBBLES == THREES && chunk.wrapping_add(0x0606_0606_0606_0606) & HIGH_NIBBLES == THREES
}

/// The value of up to 18 ASCII digits: eight at a time (a millisecond timestamp has 13), in a
/// few multiplications instead of one per digit.
pub(crate) fn parse_digits(digits: &[u8]) -> u64 {
    let mut value = 0u64;
    let mut chunks = digits.chunks_exact(8);
    for chunk in &mut chunks {
        value = value * 100_000_000 + eight_digits(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
    }
    chunks.remainder().iter().fold(value, |acc, b| acc * 10 + u64::from(b - b'0'))
}

/// Eight ASCII digits, the first (most significant) in the lowest byte, as a number: each
/// step joins neighbouring groups, `10 × high + low` for digit pairs, then `100 × high + low`
/// for pairs, then `10000 × high + low` (a multiplication by `(m << width) + 1` and a shift).
fn eight_digits(chunk: u64) -> u64 {
    let digits = chunk.wrapping_sub(0x3030_3030_3030_3030);
    let pairs = (digits.wrapping_mul((10 << 8) + 1) >> 8) & 0x00FF_00FF_00FF_00FF;
    let quads = (pairs.wrapping_mul((100 << 16) + 1) >> 16) & 0x0000_FFFF_0000_FFFF;
    quads.wrapping_mul((10_000 << 32) + 1) >> 32
}

fn skip_ws(line: &[u8], mut pos: usize) -> usize {
    while matches!(line.get(pos), Some(b' ' | b'\t' | b'\r' | b'\n')) {
        pos += 1;
    }
    pos
}

/// `pos` is at an opening quote; returns the index just past the closing quote.
fn string_end(line: &[u8], pos: usize) -> Option<usize> {
    let mut i = pos + 1;
    loop {
        let offset = memchr::memchr2(b'"', b'\\', &line[i..])?;
        i += offset;
        if line[i] == b'\\' {
            i += 2;
        } else {
            return Some(i + 1);
        }
    }
}

/// Returns the index just past the value starting at `pos`.
fn value_end(line: &[u8], pos: usize) -> Option<usize> {
    match line.get(pos)? {
        b'"' => string_end(line, pos),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = pos;
            loop {
                match line.get(i)? {
                    b'"' => {
                        i = string_end(line, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = pos;
            while let Some(&b) = line.get(i) {
                if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                    break;
                }
                i += 1;
            }
            (i > pos).then_some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn digits_are_counted_eight_at_a_time() {
        for (text, digits) in [("", 0), ("12345678", 8), ("1234567:", 7), ("1767225600001,", 13), ("0/9:", 1), ("123456789012345678901234x", 24)] {
            assert_eq!(super::digit_count(text.as_bytes()), digits, "{text}");
        }
    }

    #[test]
    fn digits_parse_eight_at_a_time() {
        for text in ["0", "7", "12345678", "00000001", "99999999", "1767225600001", "123456789012345678", "900000000000000009"] {
            assert_eq!(super::parse_digits(text.as_bytes()), text.parse::<u64>().unwrap(), "{text}");
        }
    }

    use super::*;

    #[test]
    fn a_leading_integer_field_is_read_directly_and_anything_else_falls_back() {
        assert_eq!(leading_integer(br#"{"ts":1767225600001,"item":"i1"}"#, "ts"), Some(1_767_225_600_001));
        assert_eq!(leading_integer(br#"{"ts":-5}"#, "ts"), Some(-5));
        for line in [&br#"{"ts":1.5,"a":1}"#[..], br#"{"ts": 1,"a":1}"#, br#"{"ts":"1"}"#, br#"{"t":1}"#, br#"{"tss":1}"#, br#"{"ts":}"#, br#"{"ts":1"#, br#"{"ts":1234567890123456789}"#] {
            assert_eq!(leading_integer(line, "ts"), None, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn finds_top_level_fields_only() {
        let line = br#"{"nested":{"ts":1},"title":"a \"ts\": 5","ts":1767225600000,"x":[1,{"ts":2}]}"#;
        assert_eq!(find_top_level(line, "ts"), Some(RawValue::Number("1767225600000")));
        assert_eq!(find_top_level(line, "title"), Some(RawValue::Str(r#"a \"ts\": 5"#)));
        assert_eq!(find_top_level(line, "nested"), Some(RawValue::Other));
        assert_eq!(find_top_level(line, "missing"), None);
        assert_eq!(find_top_level(br#"{ "t" : "2026-01-01T00:00:00Z" }"#, "t"), Some(RawValue::Str("2026-01-01T00:00:00Z")));
    }

    #[test]
    fn tolerates_garbage() {
        for line in [&b""[..], b"[1,2]", b"{\"ts\"", b"{\"ts\":", b"{\"a\":\"unterminated", b"not json", b"{\"ts\" 5}"] {
            assert_eq!(find_top_level(line, "ts"), None, "{:?}", String::from_utf8_lossy(line));
        }
    }
}
