//! A JSON-lines record decoder that parses only the fields the record type reads.
//!
//! An event line carries more than one pipeline needs: `window-stats` reads 2 of the
//! click-stream's 7 fields. serde_json parses every value, also the ones the record type then
//! throws away: it scans skipped strings byte by byte and reads skipped numbers digit by digit,
//! and that was about a third of a replay's time. [`from_line`] walks the top-level object
//! itself: it finds each key and the extent of each value (a string by its closing quote, from
//! an index of the line's quotes built sixteen bytes at a time; a nested value by bracket depth). A string value the type reads goes
//! straight to the type's visitor, other values it reads go to serde_json, and the values it
//! does not read are stepped over without being parsed. On the click-stream this decodes
//! 1.2–1.3× as many lines per second as serde_json does into the same borrowed struct
//! (`weir bench window-stats` prints both).
//!
//! # What is checked
//! - The line is one object; keys are strings, each followed by `:` and a value; members are
//!   separated by `,`; strings and brackets are closed; only whitespace follows the object.
//!   A line cut short anywhere is an error.
//! - The values the type reads are checked as `serde_json::from_slice` checks them (UTF-8,
//!   no control characters in strings, number syntax), and so are keys.
//! - A **skipped** value is checked for that structure only: `{"a":1x2,"b":2}` decodes when the
//!   type does not read `a`, and invalid UTF-8 inside a skipped string goes unnoticed (it never
//!   reaches the record).
//!
//! Lines that contain a backslash (an escape may hide a quote), or whose top level is not an
//! object, are decoded by serde_json whole. So every line that serde_json accepts decodes to
//! the same record (the property tests check this), and only lines with a malformed skipped
//! value are accepted where serde_json would reject them.

use std::fmt::Display;
use std::ops::Range;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::de::SliceRead;

use crate::format::json_time::{digit_count, parse_digits};

/// Why a line did not decode.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FlatJsonError(String);

impl de::Error for FlatJsonError {
    fn custom<M: Display>(message: M) -> Self {
        FlatJsonError(message.to_string())
    }
}

impl From<serde_json::Error> for FlatJsonError {
    fn from(error: serde_json::Error) -> Self {
        FlatJsonError(error.to_string())
    }
}

/// Decodes one JSON line (without its newline) into `T`; see the module docs for what is
/// checked.
///
/// ```
/// #[derive(serde::Deserialize, Debug, PartialEq)]
/// struct View<'a> { item: &'a str, views: u32 }
/// let line = br#"{"ts":1767225600001,"item":"i781","title":"Argan Oil Hair Mask","views":3}"#;
/// let view: View = weir_engine::format::flat_json::from_line(line).unwrap();
/// assert_eq!(view, View { item: "i781", views: 3 });
/// ```
pub fn from_line<'de, T: de::Deserialize<'de>>(line: &'de [u8]) -> Result<T, FlatJsonError> {
    let start = skip_whitespace(line, 0);
    let (quotes, backslash, printable) = QuoteIndex::build(line);
    if line.get(start) != Some(&b'{') || backslash {
        return Ok(serde_json::from_slice(line)?);
    }
    let mut object = Object { input: line, pos: start, printable, quotes };
    let value = T::deserialize(&mut object)?;
    if skip_whitespace(line, object.pos) != line.len() {
        return Err(FlatJsonError(format!("trailing characters at column {}", object.pos + 1)));
    }
    Ok(value)
}

/// Where a line's quotes are, one bit per byte, for lines of up to [`INDEXED_LEN`] bytes (the
/// click-stream's are about 150). The line has no backslashes when the index is used, so every
/// quote opens or closes a string, and finding the end of a key or string value is a
/// `trailing_zeros`, without a loop whose exit depends on the string's length (a branch
/// mispredicted about once per string). Longer lines are searched eight bytes at a time.
struct QuoteIndex {
    words: [u64; INDEX_WORDS],
    indexed: bool,
}

/// Lines up to this many bytes get a [`QuoteIndex`].
const INDEXED_LEN: usize = INDEX_WORDS * 64;
const INDEX_WORDS: usize = 8;

impl QuoteIndex {
    /// One pass over the line, sixty-four bytes at a time: the quote index, whether the line
    /// holds a backslash, and whether it is all printable ASCII, so that no key or string in it
    /// needs a UTF-8 check.
    fn build(line: &[u8]) -> (QuoteIndex, bool, bool) {
        let mut index = QuoteIndex { words: [0; INDEX_WORDS], indexed: line.len() <= INDEXED_LEN };
        if !index.indexed {
            let (backslash, printable) = scan(line);
            return (index, backslash, printable);
        }
        let mut scanner = BlockScanner::new();
        let mut blocks = line.chunks_exact(64);
        let mut words = index.words.iter_mut();
        // Blocks first: `zip` stops at the first `None` without taking from the second.
        for (block, word) in blocks.by_ref().zip(words.by_ref()) {
            *word = scanner.quotes(block.try_into().expect("64 bytes"));
        }
        let rest = blocks.remainder();
        if let (false, Some(word)) = (rest.is_empty(), words.next()) {
            // Padded with spaces: printable, and neither a quote nor a backslash.
            let mut padded = [b' '; 64];
            padded[..rest.len()].copy_from_slice(rest);
            *word = scanner.quotes(&padded);
        }
        let (backslash, printable) = scanner.finish();
        (index, backslash, printable)
    }

    /// The first `"` at or after `from`.
    #[inline(always)]
    fn next(&self, input: &[u8], from: usize) -> Option<usize> {
        if !self.indexed {
            return find_quote(input, from);
        }
        let mut word = from / 64;
        // Bits past the line's end are zero, so running off the line finds nothing.
        let mut bits = *self.words.get(word)? & (u64::MAX << (from % 64));
        loop {
            if bits != 0 {
                return Some(word * 64 + bits.trailing_zeros() as usize);
            }
            word += 1;
            bits = *self.words.get(word)?;
        }
    }
}

/// Scans 64-byte blocks: each block's quotes as a bit mask (bit `i` for byte `i`), and across
/// all blocks whether any byte was a backslash and whether all were printable (`0x20..=0x7f`,
/// as [`scan`] counts them).
#[cfg(target_arch = "x86_64")]
struct BlockScanner {
    backslashes: std::arch::x86_64::__m128i,
    printable: std::arch::x86_64::__m128i,
}

#[cfg(target_arch = "x86_64")]
impl BlockScanner {
    fn new() -> BlockScanner {
        use std::arch::x86_64::*;
        // SAFETY (here and below): SSE2 is part of the x86_64 baseline.
        unsafe { BlockScanner { backslashes: _mm_setzero_si128(), printable: _mm_set1_epi8(-1) } }
    }

    #[inline(always)]
    fn quotes(&mut self, block: &[u8; 64]) -> u64 {
        use std::arch::x86_64::*;
        let mut quotes = 0;
        for (i, chunk) in block.chunks_exact(16).enumerate() {
            // SAFETY: the unaligned load reads exactly the sixteen bytes of `chunk`.
            unsafe {
                let bytes = _mm_loadu_si128(chunk.as_ptr().cast());
                let is_quote = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'"' as i8));
                quotes |= u64::from(_mm_movemask_epi8(is_quote) as u16) << (16 * i);
                self.backslashes = _mm_or_si128(self.backslashes, _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'\\' as i8)));
                // Signed compare: bytes from 0x80 up are negative, so this is 0x20..=0x7f.
                self.printable = _mm_and_si128(self.printable, _mm_cmpgt_epi8(bytes, _mm_set1_epi8(0x1f)));
            }
        }
        quotes
    }

    fn finish(self) -> (bool, bool) {
        use std::arch::x86_64::*;
        unsafe { (_mm_movemask_epi8(self.backslashes) != 0, _mm_movemask_epi8(self.printable) == 0xffff) }
    }
}

#[cfg(not(target_arch = "x86_64"))]
struct BlockScanner {
    backslash: bool,
    printable: bool,
}

#[cfg(not(target_arch = "x86_64"))]
impl BlockScanner {
    fn new() -> BlockScanner {
        BlockScanner { backslash: false, printable: true }
    }

    #[inline(always)]
    fn quotes(&mut self, block: &[u8; 64]) -> u64 {
        let mut quotes = 0;
        for (i, &b) in block.iter().enumerate() {
            quotes |= u64::from(b == b'"') << i;
        }
        let (backslash, printable) = scan(block);
        self.backslash |= backslash;
        self.printable &= printable;
        quotes
    }

    fn finish(self) -> (bool, bool) {
        (self.backslash, self.printable)
    }
}

/// One pass over the line (vectorised: no early exit): whether it holds a backslash, and
/// whether it is all printable ASCII.
fn scan(line: &[u8]) -> (bool, bool) {
    let (mut backslash, mut printable) = (false, true);
    for &b in line {
        backslash |= b == b'\\';
        printable &= b.wrapping_sub(0x20) < 0x60;
    }
    (backslash, printable)
}

fn skip_whitespace(input: &[u8], mut pos: usize) -> usize {
    while matches!(input.get(pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        pos += 1;
    }
    pos
}

#[cold]
#[inline(never)]
fn error_at(what: &str, pos: usize) -> FlatJsonError {
    FlatJsonError(format!("{what} at column {}", pos + 1))
}

/// Parses `input` whole with serde_json.
fn with_serde_json<'de, R>(
    input: &'de [u8],
    parse: impl FnOnce(&mut serde_json::Deserializer<SliceRead<'de>>) -> Result<R, serde_json::Error>,
) -> Result<R, FlatJsonError> {
    let mut json = serde_json::Deserializer::from_slice(input);
    let value = parse(&mut json)?;
    json.end()?;
    Ok(value)
}

/// The end (exclusive) of the JSON value that starts at `start`: its structure, not its
/// content (see the module docs). The input has no backslashes.
#[inline(always)]
fn value_end(input: &[u8], quotes: &QuoteIndex, start: usize) -> Result<usize, FlatJsonError> {
    match input.get(start) {
        Some(b'"') => string_end(input, quotes, start),
        Some(b'{' | b'[') => nested_end(input, quotes, start),
        Some(b',' | b'}' | b']' | b':') | None => Err(error_at("expected a value", start)),
        Some(_) => {
            // Numbers are mostly digits: skip those eight at a time first.
            let mut end = start + digit_count(&input[start..]);
            while input.get(end).is_some_and(|&b| !ENDS_A_SCALAR[b as usize]) {
                end += 1;
            }
            Ok(end)
        }
    }
}

/// The bytes that end a number or a literal (`true`, `false`, `null`).
static ENDS_A_SCALAR: [bool; 256] = {
    let mut table = [false; 256];
    let ends = *b",}] \t\n\r";
    let mut i = 0;
    while i < ends.len() {
        table[ends[i] as usize] = true;
        i += 1;
    }
    table
};

/// The end of the string whose opening quote is at `start` (just past its closing quote).
#[inline(always)]
fn string_end(input: &[u8], quotes: &QuoteIndex, start: usize) -> Result<usize, FlatJsonError> {
    match quotes.next(input, start + 1) {
        Some(quote) => Ok(quote + 1),
        None => Err(error_at("unterminated string", start)),
    }
}

/// The first `"` at or after `from`, eight bytes at a time, for lines too long for a
/// [`QuoteIndex`]. Keys and most values are a few bytes long, where this beats `memchr`'s
/// vector set-up.
#[inline]
fn find_quote(input: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const QUOTES: u64 = ONES * b'"' as u64;
    let mut pos = from;
    while let Some(chunk) = input.get(pos..pos + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes")) ^ QUOTES;
        // A zero byte of `word` is a quote; the lowest flagged byte is always a real one.
        let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
        if zeros != 0 {
            return Some(pos + (zeros.trailing_zeros() / 8) as usize);
        }
        pos += 8;
    }
    input[pos.min(input.len())..].iter().position(|&b| b == b'"').map(|i| pos + i)
}

/// `bytes` as text, for a key or a string value: printable ASCII (the common case, known for
/// the whole line when `printable`) needs no UTF-8 decoding. Like serde_json, control
/// characters are refused.
#[inline]
fn text(bytes: &[u8], printable: bool) -> Option<&str> {
    if printable || bytes.iter().all(|&b| (0x20..0x80).contains(&b)) {
        // SAFETY: every byte is ASCII, and ASCII is UTF-8.
        return Some(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).ok().filter(|s| !s.bytes().any(|b| b < 0x20))
}

/// The value of a JSON number with a fraction or an exponent, such as a price, parsed directly:
/// serde_json (with its `float_roundtrip` feature, which the workspace enables) and the
/// standard library both round correctly, so the value is the same. `None` for anything else —
/// integers (serde_json hands those to the visitor as integers), malformed numbers, and values
/// that overflow or underflow, for which serde_json has its own errors and rules — which then
/// go to serde_json.
fn float_token(token: &[u8]) -> Option<f64> {
    let digits_at = |from: usize| &token[from..from + digit_count(&token[from..])];
    let negative = token.first() == Some(&b'-');
    let integer = digits_at(usize::from(negative));
    // One digit, or several without a leading zero.
    if integer.is_empty() || (integer[0] == b'0' && integer.len() > 1) {
        return None;
    }
    let mut pos = usize::from(negative) + integer.len();
    let mut fraction: &[u8] = &[];
    if token.get(pos) == Some(&b'.') {
        fraction = digits_at(pos + 1);
        if fraction.is_empty() {
            return None;
        }
        pos += 1 + fraction.len();
    }
    let mut written_exponent = None;
    if matches!(token.get(pos), Some(b'e' | b'E')) {
        pos += 1;
        let sign = match token.get(pos) {
            Some(b'-') => -1,
            Some(b'+') => 1,
            _ => 0,
        };
        pos += usize::from(sign != 0);
        let digits = digits_at(pos);
        if digits.is_empty() {
            return None;
        }
        pos += digits.len();
        written_exponent = Some((if sign < 0 { -1 } else { 1 }, digits));
    }
    if (fraction.is_empty() && written_exponent.is_none()) || pos != token.len() {
        return None;
    }
    let value = match exact_decimal(integer, fraction, written_exponent) {
        Some(magnitude) if negative => -magnitude,
        Some(magnitude) => magnitude,
        // SAFETY: the token is all ASCII (digits, sign, point, exponent), which is UTF-8.
        None => unsafe { std::str::from_utf8_unchecked(token) }.parse().ok()?,
    };
    value.is_normal().then_some(value)
}

/// The magnitude of a well-formed number from its digits, when they read as one integer `m`
/// of at most 53 bits and the decimal exponent `e` (the written exponent less the fraction's
/// digits) is at most 22 either way: then `m` and `10^|e|` are exact doubles, and one
/// multiplication or division, rounded once by the hardware, is the correctly rounded value
/// (Clinger's fast path) — the same double a full parser finds, for prices like `19.49` in a
/// few nanoseconds. `None` otherwise.
fn exact_decimal(integer: &[u8], fraction: &[u8], written_exponent: Option<(i64, &[u8])>) -> Option<f64> {
    const POWERS: [f64; 23] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];
    // Up to 18 digits cannot overflow a u64.
    if integer.len() + fraction.len() > 18 {
        return None;
    }
    let mantissa = parse_digits(integer) * 10u64.pow(fraction.len() as u32) + parse_digits(fraction);
    let mut exponent = -(fraction.len() as i64);
    if let Some((sign, digits)) = written_exponent {
        if digits.len() > 3 {
            return None;
        }
        exponent += sign * parse_digits(digits) as i64;
    }
    if mantissa > 1 << 53 || exponent.unsigned_abs() > 22 {
        return None;
    }
    let power = POWERS[exponent.unsigned_abs() as usize];
    Some(if exponent < 0 { mantissa as f64 / power } else { mantissa as f64 * power })
}

/// The end of the object or array that opens at `start`: brackets must match, strings inside
/// are stepped over whole. The open brackets are a stack of bits (1: `{`), so a skipped nested
/// value allocates nothing; like serde_json, nesting deeper than 128 is refused.
fn nested_end(input: &[u8], quotes: &QuoteIndex, start: usize) -> Result<usize, FlatJsonError> {
    let (mut open, mut depth) = (0u128, 0u32);
    let mut pos = start;
    while pos < input.len() {
        match input[pos] {
            b'"' => {
                pos = string_end(input, quotes, pos)?;
                continue;
            }
            bracket @ (b'{' | b'[') => {
                if depth == u128::BITS {
                    return Err(error_at("recursion limit exceeded", pos));
                }
                open = (open << 1) | u128::from(bracket == b'{');
                depth += 1;
            }
            close @ (b'}' | b']') => {
                if depth == 0 || (open & 1 == 1) != (close == b'}') {
                    return Err(error_at("mismatched bracket", pos));
                }
                open >>= 1;
                depth -= 1;
                if depth == 0 {
                    return Ok(pos + 1);
                }
            }
            _ => {}
        }
        pos += 1;
    }
    Err(error_at("unclosed bracket", start))
}

/// The top-level object of a line.
struct Object<'de> {
    input: &'de [u8],
    pos: usize,
    /// The whole line is printable ASCII.
    printable: bool,
    quotes: QuoteIndex,
}

impl<'de> Object<'de> {
    fn fields(&mut self) -> Result<Fields<'_, 'de>, FlatJsonError> {
        debug_assert_eq!(self.input.get(self.pos), Some(&b'{'));
        self.pos += 1;
        Ok(Fields { object: self, first: true })
    }

    /// Anything but an object or a struct: serde_json on the whole line.
    fn whole_line<R>(&mut self, parse: impl FnOnce(&mut serde_json::Deserializer<SliceRead<'de>>) -> Result<R, serde_json::Error>) -> Result<R, FlatJsonError> {
        self.pos = self.input.len();
        with_serde_json(self.input, parse)
    }
}

/// The members of the top-level object, in line order.
struct Fields<'a, 'de> {
    object: &'a mut Object<'de>,
    first: bool,
}

impl<'de> MapAccess<'de> for Fields<'_, 'de> {
    type Error = FlatJsonError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, FlatJsonError> {
        let input = self.object.input;
        let mut pos = skip_whitespace(input, self.object.pos);
        match input.get(pos) {
            Some(b'}') => {
                self.object.pos = pos + 1;
                return Ok(None);
            }
            Some(b',') if !self.first => pos = skip_whitespace(input, pos + 1),
            Some(_) if self.first => {}
            _ => return Err(error_at("expected `,` or `}`", pos)),
        }
        if input.get(pos) != Some(&b'"') {
            return Err(error_at("expected a key", pos));
        }
        let key_end = string_end(input, &self.object.quotes, pos)?;
        let key = text(&input[pos + 1..key_end - 1], self.object.printable).ok_or_else(|| error_at("a key that is not UTF-8 or holds control characters", pos))?;
        let colon = skip_whitespace(input, key_end);
        if input.get(colon) != Some(&b':') {
            return Err(error_at("expected `:`", colon));
        }
        self.object.pos = skip_whitespace(input, colon + 1);
        self.first = false;
        seed.deserialize(BorrowedStrDeserializer::new(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, FlatJsonError> {
        let start = self.object.pos;
        let end = value_end(self.object.input, &self.object.quotes, start)?;
        self.object.pos = end;
        seed.deserialize(RawValue { input: self.object.input, range: start..end, printable: self.object.printable })
    }
}

/// One member's value, not yet parsed: serde_json parses it when the type reads it, and a
/// skipped one ([`Deserializer::deserialize_ignored_any`]) is never parsed.
struct RawValue<'de> {
    input: &'de [u8],
    range: Range<usize>,
    printable: bool,
}

impl<'de> RawValue<'de> {
    fn parse<R>(self, parse: impl FnOnce(&mut serde_json::Deserializer<SliceRead<'de>>) -> Result<R, serde_json::Error>) -> Result<R, FlatJsonError> {
        let input: &'de [u8] = self.input;
        with_serde_json(&input[self.range], parse)
    }

    /// The value's text if it is a string (it holds no escapes: lines with a backslash never
    /// get here); `None` for other values and for strings serde_json would refuse, which it
    /// then parses and refuses itself.
    fn as_str(&self) -> Option<&'de str> {
        let input: &'de [u8] = self.input;
        let value = &input[self.range.clone()];
        if value.first() != Some(&b'"') {
            return None;
        }
        text(&value[1..value.len() - 1], self.printable)
    }

    fn bytes(&self) -> &'de [u8] {
        let input: &'de [u8] = self.input;
        &input[self.range.clone()]
    }

    /// A string straight to the visitor; anything else to serde_json.
    fn str_or_parse<V: Visitor<'de>>(
        self,
        visitor: V,
        parse: impl FnOnce(&mut serde_json::Deserializer<SliceRead<'de>>, V) -> Result<V::Value, serde_json::Error>,
    ) -> Result<V::Value, FlatJsonError> {
        match self.as_str() {
            Some(text) => visitor.visit_borrowed_str(text),
            None => self.parse(|json| parse(json, visitor)),
        }
    }
}

/// Deserializer methods that take only a visitor, sent to serde_json.
macro_rules! forward_to_serde_json {
    ($via:ident: $($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FlatJsonError> {
            self.$via(|json| json.$method(visitor))
        }
    )*};
}

/// The methods with more arguments than a visitor, sent to serde_json (enums differ: a value's
/// string is a unit variant read directly).
macro_rules! forward_with_arguments {
    ($via:ident) => {
        fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, FlatJsonError> {
            self.$via(|json| json.deserialize_unit_struct(name, visitor))
        }
        fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, FlatJsonError> {
            self.$via(|json| json.deserialize_newtype_struct(name, visitor))
        }
        fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, FlatJsonError> {
            self.$via(|json| json.deserialize_tuple(len, visitor))
        }
        fn deserialize_tuple_struct<V: Visitor<'de>>(self, name: &'static str, len: usize, visitor: V) -> Result<V::Value, FlatJsonError> {
            self.$via(|json| json.deserialize_tuple_struct(name, len, visitor))
        }
    };
}

impl<'de> Deserializer<'de> for RawValue<'de> {
    type Error = FlatJsonError;

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FlatJsonError> {
        visitor.visit_unit()
    }

    fn deserialize_struct<V: Visitor<'de>>(self, name: &'static str, fields: &'static [&'static str], visitor: V) -> Result<V::Value, FlatJsonError> {
        self.parse(|json| json.deserialize_struct(name, fields, visitor))
    }

    // Strings, the common wanted value, skip serde_json: what it would do for them, directly.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FlatJsonError> {
        self.str_or_parse(visitor, |json, visitor| json.deserialize_any(visitor))
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FlatJsonError> {
        self.str_or_parse(visitor, |json, visitor| json.deserialize_str(visitor))
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FlatJsonError> {
        self.str_or_parse(visitor, |json, visitor| json.deserialize_string(visitor))
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FlatJsonError> {
        self.str_or_parse(visitor, |json, visitor| json.deserialize_identifier(visitor))
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FlatJsonError> {
        // What serde_json does: `null` is none, any other value is the inner type's.
        match self.bytes() {
            b"null" => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FlatJsonError> {
        match float_token(self.bytes()) {
            Some(value) => visitor.visit_f64(value),
            None => self.parse(|json| json.deserialize_f64(visitor)),
        }
    }
    fn deserialize_enum<V: Visitor<'de>>(self, name: &'static str, variants: &'static [&'static str], visitor: V) -> Result<V::Value, FlatJsonError> {
        match self.as_str() {
            // A unit variant by name, as serde_json reads `"click"`.
            Some(text) => visitor.visit_enum(BorrowedStrDeserializer::new(text)),
            None => self.parse(|json| json.deserialize_enum(name, variants, visitor)),
        }
    }

    forward_to_serde_json!(parse: deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_char deserialize_bytes
        deserialize_byte_buf deserialize_unit deserialize_seq deserialize_map);
    forward_with_arguments!(parse);
}

impl<'de> Deserializer<'de> for &mut Object<'de> {
    type Error = FlatJsonError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FlatJsonError> {
        visitor.visit_map(self.fields()?)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FlatJsonError> {
        visitor.visit_map(self.fields()?)
    }

    fn deserialize_struct<V: Visitor<'de>>(self, _name: &'static str, _fields: &'static [&'static str], visitor: V) -> Result<V::Value, FlatJsonError> {
        visitor.visit_map(self.fields()?)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FlatJsonError> {
        self.whole_line(|json| json.deserialize_ignored_any(visitor))
    }

    forward_to_serde_json!(whole_line: deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_string deserialize_bytes
        deserialize_byte_buf deserialize_option deserialize_unit deserialize_seq deserialize_identifier);
    forward_with_arguments!(whole_line);

    fn deserialize_enum<V: Visitor<'de>>(self, name: &'static str, variants: &'static [&'static str], visitor: V) -> Result<V::Value, FlatJsonError> {
        self.whole_line(|json| json.deserialize_enum(name, variants, visitor))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Impression,
        Click,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Event {
        event: Kind,
        item: String,
        #[serde(default)]
        price: Option<f64>,
        #[serde(default)]
        tags: Vec<String>,
    }

    fn both(line: &str) -> (Result<Event, String>, Result<Event, String>) {
        let ours = from_line::<Event>(line.as_bytes()).map_err(|e| e.to_string());
        let theirs = serde_json::from_str::<Event>(line).map_err(|e| e.to_string());
        (ours, theirs)
    }

    #[test]
    fn reads_the_wanted_fields_and_skips_the_rest() {
        let line = r#" { "ts" : 17, "event":"click", "user":"u1", "item" : "i9", "nested": {"a":[1,{"b":"}"}]}, "price":2.5 } "#;
        let (ours, theirs) = both(line);
        assert_eq!(ours.unwrap(), theirs.unwrap());
    }

    #[test]
    fn structural_errors_are_errors() {
        for line in [
            r#"{"event":"click","item":"i9""#,
            r#"{"event":"click","item":"i9",}"#,
            r#"{"event":"click" "item":"i9"}"#,
            r#"{"event":"click","item":"i9"} x"#,
            r#"{"event":"click","item":"i9","x":}"#,
            r#"{"event":"click","item":"i9","x":[1,2}"#,
            r#"{"event":"click","item":"i9","x":"open}"#,
            r#"{"event":"click","item" "i9"}"#,
            r#"{"event":"click",item:"i9"}"#,
        ] {
            assert!(from_line::<Event>(line.as_bytes()).is_err(), "accepted {line}");
        }
    }

    #[test]
    fn deeply_nested_skipped_values_are_matched_and_bounded() {
        let deep = |levels: usize| format!(r#"{{"event":"click","item":"i9","x":{}1{}}}"#, "[".repeat(levels), "]".repeat(levels));
        assert!(from_line::<Event>(deep(100).as_bytes()).is_ok());
        assert!(serde_json::from_str::<Event>(&deep(100)).is_ok());
        assert!(from_line::<Event>(deep(200).as_bytes()).unwrap_err().to_string().contains("recursion limit"));
        assert!(from_line::<Event>(br#"{"event":"click","item":"i9","x":[{"a":[1]}]}"#).is_ok());
        assert!(from_line::<Event>(br#"{"event":"click","item":"i9","x":[{"a":[1}]]}"#).is_err());
    }

    #[test]
    fn wanted_values_are_parsed_strictly() {
        let (ours, _) = both(r#"{"event":"teleport","item":"i9"}"#);
        assert!(ours.unwrap_err().contains("unknown variant `teleport`"));
        let (ours, _) = both(r#"{"event":"click"}"#);
        assert!(ours.unwrap_err().contains("missing field `item`"));
        let (ours, _) = both(r#"{"event":"click","item":"i9","price":1x}"#);
        assert!(ours.is_err());
        let (ours, _) = both(r#"{"event":"click","item":"i9","item":"i8"}"#);
        assert!(ours.unwrap_err().contains("duplicate field `item`"));
    }

    #[test]
    fn lines_with_escapes_or_other_top_levels_go_to_serde_json() {
        let (ours, theirs) = both(r#"{"event":"click","item":"i\"9","title":"say \"hi\""}"#);
        assert_eq!(ours.unwrap(), theirs.unwrap());
        let map: BTreeMap<String, u32> = from_line(br#"{"a":1,"b":2}"#).unwrap();
        assert_eq!(map.len(), 2);
        let list: Vec<u32> = from_line(b"[1,2,3]").unwrap();
        assert_eq!(list, vec![1, 2, 3]);
        assert!(from_line::<Event>(b"not json").is_err());
    }

    /// A JSON value for the skipped members: any shape.
    /// Numbers as a producer might write them, well formed or not.
    fn number_token() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "-?(0|[1-9][0-9]{0,19})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?",
            1 => "[-+0-9.eE]{1,8}",
            1 => prop_oneof![Just("null".to_string()), Just("1e400".to_string()), Just("-1e-400".to_string()), Just("4.9e-324".to_string()),
                Just("1.7976931348623157e308".to_string()), Just("-0.0".to_string()), Just("0e0".to_string()), Just("\"1.5\"".to_string())],
        ]
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            (-1e9f64..1e9).prop_map(serde_json::Value::from),
            // Brackets and separators inside strings; quotes and backslashes (escaped) sometimes.
            "[a-z {}\\[\\],:é😀]{0,12}".prop_map(serde_json::Value::from),
            "[a-z\\\\\"]{0,4}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-z]{1,4}", inner, 0..4).prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// An object line with the wanted members (sometimes wrong or repeated) among extra ones,
    /// in any order, with any whitespace.
    fn object_line() -> impl Strategy<Value = String> {
        use serde_json::json;
        let event = prop_oneof![4 => Just(json!("click")), 4 => Just(json!("impression")), 1 => Just(json!(7))];
        let item = prop_oneof![Just(json!("i1")), Just(json!("ü\"x")), Just(json!("😀"))];
        let optional = prop::collection::vec(
            prop_oneof![Just(("price", json!(1.5))), Just(("price", json!(null))), Just(("tags", json!(["a", "b"])))],
            0..3,
        );
        let extra = prop::collection::vec(("[a-z]{1,6}", json_value()), 0..6);
        let order = prop::collection::vec(any::<u16>(), 12);
        (event, item, optional, extra, order, "[ \t]{0,2}").prop_map(|(event, item, optional, extra, order, space)| {
            let mut members = vec![format!("\"event\"{space}:{space}{event}"), format!("\"item\":{space}{item}")];
            members.extend(optional.into_iter().map(|(k, v)| format!("\"{k}\"{space}:{v}")));
            members.extend(extra.into_iter().filter(|(k, _)| !["event", "item", "price", "tags"].contains(&k.as_str())).map(|(k, v)| format!("\"{k}\":{v}")));
            let mut keyed: Vec<(u16, String)> = order.into_iter().zip(members).collect();
            keyed.sort();
            let members: Vec<String> = keyed.into_iter().map(|(_, m)| m).collect();
            format!("{space}{{{space}{}{space}}}{space}", members.join(&format!("{space},{space}")))
        })
    }

    proptest! {
        #[test]
        fn every_line_serde_json_accepts_decodes_the_same(line in object_line()) {
            let (ours, theirs) = both(&line);
            if let Ok(expected) = theirs {
                prop_assert_eq!(ours.expect("serde_json accepts it"), expected);
            }
        }

        /// The same with a long member in front, so that the members the type reads lie near
        /// and beyond the end of the quote index (or the line is too long for one).
        #[test]
        fn long_lines_decode_the_same(line in object_line(), padding in 400usize..560) {
            let Some(open) = line.find('{') else { return Ok(()) };
            let long = format!("{}{{\"zz\":\"{}\",{}", &line[..open], "x".repeat(padding), &line[open + 1..]);
            let (ours, theirs) = both(&long);
            if let Ok(expected) = theirs {
                prop_assert_eq!(ours.expect("serde_json accepts it"), expected);
            }
        }

        #[test]
        fn numbers_decode_as_serde_json_decodes_them(token in number_token()) {
            #[derive(Debug, PartialEq, Deserialize)]
            struct Priced {
                price: f64,
                #[serde(default)]
                discount: Option<f64>,
            }
            for line in [format!("{{\"price\":{token},\"title\":\"x\"}}"), format!("{{\"price\":1.5,\"discount\":{token}}}")] {
                let ours = from_line::<Priced>(line.as_bytes()).map_err(|e| e.to_string());
                let theirs = serde_json::from_str::<Priced>(&line).map_err(|e| e.to_string());
                match (ours, theirs) {
                    (Ok(ours), Ok(theirs)) => {
                        prop_assert_eq!(ours.price.to_bits(), theirs.price.to_bits(), "{}", line);
                        prop_assert_eq!(ours.discount.map(f64::to_bits), theirs.discount.map(f64::to_bits), "{}", line);
                    }
                    (Err(_), Err(_)) => {}
                    (ours, theirs) => prop_assert!(false, "{}: ours {:?}, serde_json {:?}", line, ours, theirs),
                }
            }
        }

        #[test]
        fn the_exact_decimal_path_is_the_correctly_rounded_value(integer in "0|[1-9][0-9]{0,17}", fraction in "[0-9]{1,17}", exponent in prop::option::of((prop_oneof![Just(-1i64), Just(1)], "[0-9]{1,2}"))) {
            let token = match &exponent {
                Some((sign, digits)) => format!("{integer}.{fraction}e{}{digits}", if *sign < 0 { "-" } else { "+" }),
                None => format!("{integer}.{fraction}"),
            };
            let expected: f64 = token.parse().unwrap();
            let written = exponent.as_ref().map(|(sign, digits)| (*sign, digits.as_bytes()));
            if let Some(value) = exact_decimal(integer.as_bytes(), fraction.as_bytes(), written) {
                prop_assert_eq!(value.to_bits(), expected.to_bits(), "{}", token);
            }
        }

        #[test]
        fn the_quote_index_finds_every_quote(line in prop::collection::vec(prop_oneof![Just(b'"'), Just(b'a'), Just(b'{')], 0..600), from in 0usize..620) {
            let (index, _, _) = QuoteIndex::build(&line);
            let expected = line.get(from..).and_then(|rest| rest.iter().position(|&b| b == b'"')).map(|i| from + i);
            prop_assert_eq!(index.next(&line, from), expected);
        }

        #[test]
        fn a_line_cut_short_is_an_error(line in object_line(), cut in 0.0f64..1.0) {
            let trimmed = line.trim_end();
            let at = ((trimmed.len() as f64) * cut) as usize;
            if let Some(prefix) = trimmed.get(..at) {
                prop_assert!(from_line::<Event>(prefix.as_bytes()).is_err(), "accepted the prefix {:?}", prefix);
            }
        }
    }
}
