//! A compact-JSON encoder for the output sinks: [`write_json`] appends exactly the bytes
//! `serde_json::to_writer` writes, in less time for flat records.
//!
//! Every sink encodes every output record, and at a million rows a second serde_json's encoder
//! was a visible share of a sink. It writes through `io::Write` in many tiny `write_all`s (each
//! quote, colon, comma, key and number is its own call, most ending in a `memcpy` call), and it
//! scans strings for bytes to escape one byte at a time. This encoder writes straight into the
//! `Vec<u8>`: it reserves once per key or string, scans for bytes to escape sixteen (SSE2) or
//! eight (SWAR) bytes at a time and copies the runs between them, and formats numbers with the
//! same `itoa` and `zmij` calls serde_json makes.
//!
//! # The guarantee
//! For every value, the output is byte for byte what serde_json 1.0.154's compact serializer
//! writes (same escapes, same number formatting, `null` for non-finite floats, byte strings as
//! arrays of numbers, map keys that are integers, bools, chars or finite floats written as
//! strings), and the map keys serde_json refuses are refused here. The property tests at the
//! bottom check this against `serde_json::to_vec` over arbitrary `serde_json::Value` trees and
//! over typed records that use every construct of serde's data model.
//!
//! Two deliberate differences, both on paths where serde_json writes nothing useful: a
//! `Display` that fails inside `collect_str` is an `Err` here (serde_json panics), and on any
//! error `out` is truncated back to its length at the call (serde_json leaves what it wrote).

use std::fmt::{self, Display, Write as _};

use serde::Serialize;
use serde::ser::{self, Impossible};

/// Why a value could not be encoded. The messages are serde_json's.
#[derive(Debug, thiserror::Error)]
pub enum JsonLineError {
    /// A map key was not a string, integer, bool, char, finite float or unit variant (for
    /// example a struct, a sequence, `()` or `None`).
    #[error("key must be a string")]
    KeyMustBeAString,

    /// A map key was a NaN or infinite float.
    #[error("float key must be finite (got NaN or +/-inf)")]
    FloatKeyMustBeFinite,

    /// A message from a `Serialize` impl (`ser::Error::custom`), or a failed `Display` in
    /// `collect_str`.
    #[error("{0}")]
    Custom(String),

    /// An error from serde_json, which writes the structs named like its private tokens
    /// (`Number` and `RawValue`) itself.
    #[error(transparent)]
    SerdeJson(#[from] serde_json::Error),
}

impl ser::Error for JsonLineError {
    fn custom<M: Display>(message: M) -> Self {
        JsonLineError::Custom(message.to_string())
    }
}

/// Appends the compact JSON encoding of `value` to `out`: byte for byte what
/// `serde_json::to_writer(&mut *out, value)` writes, faster for flat records.
///
/// On an error `out` is truncated back to the length it had at the call, so a failed record
/// leaves no partial line behind (the capacity it grew to is kept).
///
/// ```
/// #[derive(serde::Serialize)]
/// struct Score<'a> { ts: i64, item: &'a str, p_click: f32 }
/// let mut out = b"prefix ".to_vec();
/// let score = Score { ts: 1, item: "i\"7", p_click: 0.5 };
/// weir_engine::format::json_line::write_json(&score, &mut out).unwrap();
/// assert_eq!(out, br#"prefix {"ts":1,"item":"i\"7","p_click":0.5}"#);
/// ```
pub fn write_json<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), JsonLineError> {
    let start = out.len();
    let result = value.serialize(Encoder { out: &mut *out });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

// ---------------------------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------------------------

// Why the unsafe writes below: a record is a few dozen pieces of a few bytes each, and through
// `Vec::push`/`extend_from_slice` every piece costs a capacity check, a `memcpy` call for a
// variable length, and a store of the length back to memory (a `u8` store may alias the
// `Vec`'s own fields, so the compiler cannot keep the length in a register). The fast paths
// reserve once per key or string, write the whole piece through a pointer, and set the length
// once.

/// Writes `text` as a JSON string: quoted, with serde_json's escapes.
#[inline]
fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    if first_escape(bytes) < bytes.len() {
        return write_str_escaped(out, bytes);
    }
    out.reserve(bytes.len() + 2);
    let len = out.len();
    // SAFETY: `reserve` made room for `bytes.len() + 2` bytes after `len`. We write all of
    // them (quote, contents, quote) and then extend the length over exactly those.
    unsafe {
        let dst = out.as_mut_ptr().add(len);
        dst.write(b'"');
        copy_bytes(bytes, dst.add(1));
        dst.add(1 + bytes.len()).write(b'"');
        out.set_len(len + bytes.len() + 2);
    }
}

/// [`write_str`] for a string with at least one byte to escape.
#[inline(never)]
fn write_str_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    write_escaped(out, bytes);
    out.push(b'"');
}

/// Writes an object key and its colon, after a comma unless it is the first: `,"key":`. The
/// key is escaped like any string, as serde_json escapes keys (struct field names never need
/// it, but a `#[serde(rename)]` can contain anything).
#[inline]
fn write_key(out: &mut Vec<u8>, key: &str, first: bool) {
    let key = key.as_bytes();
    if first_escape(key) < key.len() {
        return write_key_escaped(out, key, first);
    }
    out.reserve(key.len() + 4);
    let len = out.len();
    let comma = usize::from(!first);
    // SAFETY: `reserve` made room for `key.len() + 4` bytes after `len`; we write the first
    // `comma + key.len() + 3` of them, every one (a comma that is not wanted is overwritten
    // by the quote), and extend the length over exactly those.
    unsafe {
        let dst = out.as_mut_ptr().add(len);
        dst.write(b',');
        dst.add(comma).write(b'"');
        copy_bytes(key, dst.add(comma + 1));
        dst.add(comma + 1 + key.len())
            .cast::<[u8; 2]>()
            .write(*b"\":");
        out.set_len(len + comma + key.len() + 3);
    }
}

/// [`write_key`] for a key with at least one byte to escape.
#[inline(never)]
fn write_key_escaped(out: &mut Vec<u8>, key: &[u8], first: bool) {
    if !first {
        out.push(b',');
    }
    write_str_escaped(out, key);
    out.push(b':');
}

/// Writes the contents of a JSON string (no quotes): runs of bytes that need no escape are
/// copied whole, and each byte that does is replaced by its escape.
///
/// `bytes` is valid UTF-8 and only ASCII bytes are escaped, so what is written stays UTF-8.
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    loop {
        let end = start + first_escape(&bytes[start..]);
        append(out, &bytes[start..end]);
        let Some(&byte) = bytes.get(end) else { return };
        write_escape(out, byte);
        start = end + 1;
    }
}

/// Appends `bytes` to `out` (through [`copy_bytes`], so short ones need no `memcpy` call).
#[inline(always)]
fn append(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len());
    let len = out.len();
    // SAFETY: `reserve` made room for `bytes.len()` bytes after `len`; `copy_bytes` writes
    // exactly those, and the length is extended over exactly those.
    unsafe {
        copy_bytes(bytes, out.as_mut_ptr().add(len));
        out.set_len(len + bytes.len());
    }
}

/// Copies `src` to `dst`. Up to 16 bytes (most keys, short strings and numbers) are copied
/// with two fixed-size moves that overlap in the middle, which compile to a pair of loads and
/// stores; a `memcpy` call for a variable length costs more than such a copy itself.
///
/// # Safety
/// `dst` must be valid for writes of `src.len()` bytes and must not overlap `src`.
#[inline(always)]
unsafe fn copy_bytes(src: &[u8], dst: *mut u8) {
    let len = src.len();
    // SAFETY: the caller guarantees `dst[..len]` is writable and apart from `src`; each arm
    // writes inside it (see `copy_two`, whose `W <= len` the match arms ensure).
    unsafe {
        match len {
            0 => {}
            1 => dst.write(src[0]),
            2..=3 => copy_two::<2>(src, dst),
            4..=7 => copy_two::<4>(src, dst),
            8..=16 => copy_two::<8>(src, dst),
            _ => std::ptr::copy_nonoverlapping(src.as_ptr(), dst, len),
        }
    }
}

/// The two overlapping `W`-byte moves of [`copy_bytes`]: `dst[..W]` and `dst[len - W..len]`.
///
/// # Safety
/// `W <= src.len()`, and `dst` is valid for writes of `src.len()` bytes.
#[inline(always)]
unsafe fn copy_two<const W: usize>(src: &[u8], dst: *mut u8) {
    let len = src.len();
    let head: [u8; W] = src[..W].try_into().unwrap();
    let tail: [u8; W] = src[len - W..].try_into().unwrap();
    // SAFETY: both writes lie inside `dst[..len]` because `W <= len`, and `[u8; W]` has
    // alignment 1.
    unsafe {
        dst.cast::<[u8; W]>().write(head);
        dst.add(len - W).cast::<[u8; W]>().write(tail);
    }
}

/// serde_json's escape for one byte that needs escaping (see [`needs_escape`]).
#[cold]
fn write_escape(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match byte {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            let hex = [
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ];
            out.extend_from_slice(&hex);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

/// Whether serde_json escapes `byte`: `"`, `\` and the control bytes below 0x20. DEL and
/// everything from 0x80 up (UTF-8 lead and continuation bytes) are written as they are.
#[inline]
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// The index of the first byte in `bytes` that needs escaping, or `bytes.len()` if none does.
#[inline]
fn first_escape(bytes: &[u8]) -> usize {
    let len = bytes.len();
    if len < 4 {
        // Too short for a word: at most three compares.
        return bytes.iter().position(|&b| needs_escape(b)).unwrap_or(len);
    }
    if len < 8 {
        // Two overlapping 4-byte reads cover 4..=7 bytes in one 8-byte word: the low half is
        // bytes 0..4, the high half bytes len-4..len. A hit in the low half is exact; the high
        // half is only looked at when the low half is clean, and then its first hit is too.
        let low = u32::from_le_bytes(bytes[..4].try_into().unwrap());
        let high = u32::from_le_bytes(bytes[len - 4..].try_into().unwrap());
        let mask = escape_mask(u64::from(low) | u64::from(high) << 32);
        return match mask.trailing_zeros() {
            64 => len,
            bit if bit < 32 => bit as usize / 8,
            bit => len - 4 + (bit as usize - 32) / 8,
        };
    }
    first_escape_long(bytes)
}

/// [`first_escape`] for 8 bytes or more: 16 at a time with SSE2 on x86_64, then 8 at a time,
/// and the last partial word as an overlapping read of the final 8 bytes (the bytes it reads
/// again are known clean, so its first hit is the first hit after them).
fn first_escape_long(bytes: &[u8]) -> usize {
    let len = bytes.len();
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    while i + 16 <= len {
        let mask = sse2::escape_mask(bytes[i..i + 16].try_into().unwrap());
        if mask != 0 {
            return i + mask.trailing_zeros() as usize;
        }
        i += 16;
    }
    while i + 8 <= len {
        let mask = escape_mask(u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap()));
        if mask != 0 {
            return i + mask.trailing_zeros() as usize / 8;
        }
        i += 8;
    }
    if i == len {
        return len;
    }
    let mask = escape_mask(u64::from_le_bytes(bytes[len - 8..].try_into().unwrap()));
    match mask.trailing_zeros() {
        64 => len,
        bit => len - 8 + bit as usize / 8,
    }
}

/// SWAR: for the 8 bytes of `word` (little-endian, byte `k` in bits `8k..8k+8`), a mask with
/// the high bit of byte `k` set if byte `k` needs escaping.
///
/// The classic "has a zero byte" trick `(x - 0x01..) & !x & 0x80..` can also flag bytes *above*
/// a real hit (the subtraction borrows into them), never below one, so the lowest set bit
/// (`trailing_zeros`) is always exact; that is all the callers use.
#[inline]
fn escape_mask(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte below 0x20 (and below 0x80, hence the `!word`) wraps when 0x20 is subtracted.
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (control | quote | backslash) & HIGHS
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::*;

    /// For 16 bytes, a mask with bit `k` set if byte `k` needs escaping.
    #[inline]
    pub(super) fn escape_mask(block: &[u8; 16]) -> u32 {
        // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics are always
        // available; the unaligned load reads exactly the 16 bytes of `block`.
        unsafe {
            let bytes = _mm_loadu_si128(block.as_ptr().cast());
            // Unsigned `byte <= 0x1f` as `min(byte, 0x1f) == byte` (SSE2 has no unsigned compare).
            let control = _mm_cmpeq_epi8(_mm_min_epu8(bytes, _mm_set1_epi8(0x1f)), bytes);
            let quote = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'\\' as i8));
            let any = _mm_or_si128(control, _mm_or_si128(quote, backslash));
            _mm_movemask_epi8(any) as u32
        }
    }
}

/// Adapts [`write_escaped`] to `fmt::Write`, so `collect_str` formats straight into `out`
/// (escapes are per byte, so escaping each fragment equals escaping the whole string).
struct EscapingWriter<'a>(&'a mut Vec<u8>);

impl fmt::Write for EscapingWriter<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        write_escaped(self.0, text.as_bytes());
        Ok(())
    }
}

fn write_display<T: Display + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), JsonLineError> {
    out.push(b'"');
    write!(EscapingWriter(out), "{value}")
        .map_err(|_| JsonLineError::Custom("a Display implementation returned an error".into()))?;
    out.push(b'"');
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------

#[inline]
fn write_int<I: itoa::Integer>(out: &mut Vec<u8>, value: I) {
    append(out, itoa::Buffer::new().format(value).as_bytes());
}

/// A float as serde_json writes it: a finite one with `zmij` (shortest round-trip digits), NaN
/// and the infinities as `null`. `finite` is the caller's `value.is_finite()` (`zmij::Float`
/// is sealed and offers no methods of its own).
#[inline]
fn write_float<F: zmij::Float>(out: &mut Vec<u8>, value: F, finite: bool) {
    if finite {
        append(out, zmij::Buffer::new().format_finite(value).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Bytes as serde_json writes them: an array of numbers.
fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'[');
    for (i, &byte) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_int(out, byte);
    }
    out.push(b']');
}

// ---------------------------------------------------------------------------------------------
// The serializer
// ---------------------------------------------------------------------------------------------

/// The `serialize_*` method of every integer type, each calling the implementing type's own
/// `integer` (a value, or a map key in quotes).
macro_rules! integer_methods {
    () => {
        integer_methods!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64, serialize_i128: i128,
            serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64, serialize_u128: u128);
    };
    ($($method:ident: $type:ty),*) => {$(
        fn $method(self, value: $type) -> Result<(), JsonLineError> {
            self.integer(value)
        }
    )*};
}

/// The value serializer: one value, written to the end of `out`.
struct Encoder<'a> {
    out: &'a mut Vec<u8>,
}

/// Where a sequence, map or struct is. Mirrors serde_json's `State`, including its quirk that
/// a container announced empty (`len == Some(0)`) is closed at once and still writes a comma
/// before any element it is then given, so even such odd `Serialize` impls match.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Empty,
    First,
    Rest,
}

/// An open sequence, tuple, map or struct.
struct Compound<'a> {
    out: &'a mut Vec<u8>,
    state: State,
    /// For a struct whose name is one of serde_json's private tokens: that name. Its fields go to
    /// serde_json, which alone knows what they mean (see [`Compound::delegated`]).
    private: Option<&'static str>,
}

/// The struct names serde_json's `Number` (feature `arbitrary_precision`) and `RawValue`
/// (feature `raw_value`) serialize as. Neither feature is on in this workspace, but features
/// are unified across a build, so a dependency could turn one on.
const PRIVATE_TOKENS: [&str; 2] = [
    "$serde_json::private::Number",
    "$serde_json::private::RawValue",
];

impl<'a> Encoder<'a> {
    fn integer<I: itoa::Integer>(self, value: I) -> Result<(), JsonLineError> {
        write_int(self.out, value);
        Ok(())
    }

    fn null(self) -> Result<(), JsonLineError> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn open(self, open: u8, close: u8, len: Option<usize>) -> Compound<'a> {
        self.out.push(open);
        let state = if len == Some(0) {
            self.out.push(close);
            State::Empty
        } else {
            State::First
        };
        Compound {
            out: self.out,
            state,
            private: None,
        }
    }

    /// `{"variant":` — the start of a newtype, tuple or struct variant.
    fn open_variant(self, variant: &str) -> Self {
        self.out.push(b'{');
        write_key(self.out, variant, true);
        self
    }
}

impl<'a> ser::Serializer for Encoder<'a> {
    type Ok = ();
    type Error = JsonLineError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, value: bool) -> Result<(), JsonLineError> {
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
        Ok(())
    }

    integer_methods!();

    fn serialize_f32(self, value: f32) -> Result<(), JsonLineError> {
        write_float(self.out, value, value.is_finite());
        Ok(())
    }

    fn serialize_f64(self, value: f64) -> Result<(), JsonLineError> {
        write_float(self.out, value, value.is_finite());
        Ok(())
    }

    fn serialize_char(self, value: char) -> Result<(), JsonLineError> {
        write_str(self.out, value.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, value: &str) -> Result<(), JsonLineError> {
        write_str(self.out, value);
        Ok(())
    }

    fn serialize_bytes(self, value: &[u8]) -> Result<(), JsonLineError> {
        write_bytes(self.out, value);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), JsonLineError> {
        self.null()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), JsonLineError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), JsonLineError> {
        self.null()
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), JsonLineError> {
        self.null()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), JsonLineError> {
        write_str(self.out, variant);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), JsonLineError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), JsonLineError> {
        let this = self.open_variant(variant);
        value.serialize(Encoder {
            out: &mut *this.out,
        })?;
        this.out.push(b'}');
        Ok(())
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a>, JsonLineError> {
        Ok(self.open(b'[', b']', len))
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, JsonLineError> {
        Ok(self.open(b'[', b']', Some(len)))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, JsonLineError> {
        Ok(self.open(b'[', b']', Some(len)))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, JsonLineError> {
        Ok(self.open_variant(variant).open(b'[', b']', Some(len)))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a>, JsonLineError> {
        Ok(self.open(b'{', b'}', len))
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, JsonLineError> {
        if name.starts_with('$') && PRIVATE_TOKENS.contains(&name) {
            return Ok(Compound {
                out: self.out,
                state: State::First,
                private: Some(name),
            });
        }
        Ok(self.open(b'{', b'}', Some(len)))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, JsonLineError> {
        Ok(self.open_variant(variant).open(b'{', b'}', Some(len)))
    }

    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<(), JsonLineError> {
        write_display(self.out, value)
    }
}

impl Compound<'_> {
    /// Starts the next element or entry: a comma unless it is the first.
    #[inline]
    fn next(&mut self) {
        if self.state != State::First {
            self.out.push(b',');
        }
        self.state = State::Rest;
    }

    /// Closes the container, unless it was closed at once for being announced empty.
    fn close(&mut self, close: u8) {
        if self.state != State::Empty {
            self.out.push(close);
        }
    }

    /// A field of a struct named one of [`PRIVATE_TOKENS`]: handed to serde_json as the
    /// one-field struct it came from, so that serde_json writes whatever it writes for it (the
    /// raw number or raw JSON with the feature on, `{"key":value}` with it off). These structs
    /// always have exactly one field.
    fn delegated<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        key: &'static str,
        value: &T,
    ) -> Result<(), JsonLineError> {
        struct OneField<'v, T: ?Sized> {
            name: &'static str,
            key: &'static str,
            value: &'v T,
        }
        impl<T: Serialize + ?Sized> Serialize for OneField<'_, T> {
            fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use ser::SerializeStruct;
                let mut state = serializer.serialize_struct(self.name, 1)?;
                state.serialize_field(self.key, self.value)?;
                state.end()
            }
        }
        serde_json::to_writer(&mut *self.out, &OneField { name, key, value })?;
        Ok(())
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = JsonLineError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), JsonLineError> {
        self.next();
        value.serialize(Encoder {
            out: &mut *self.out,
        })
    }

    fn end(mut self) -> Result<(), JsonLineError> {
        self.close(b']');
        Ok(())
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = JsonLineError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), JsonLineError> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<(), JsonLineError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = JsonLineError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), JsonLineError> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<(), JsonLineError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = JsonLineError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), JsonLineError> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(mut self) -> Result<(), JsonLineError> {
        self.close(b']');
        self.out.push(b'}');
        Ok(())
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = JsonLineError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), JsonLineError> {
        self.next();
        key.serialize(KeyEncoder {
            out: &mut *self.out,
        })
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), JsonLineError> {
        self.out.push(b':');
        value.serialize(Encoder {
            out: &mut *self.out,
        })
    }

    fn end(mut self) -> Result<(), JsonLineError> {
        self.close(b'}');
        Ok(())
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = JsonLineError;

    /// The hot path: `,"key":value` with the key written in one go.
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), JsonLineError> {
        if let Some(name) = self.private {
            return self.delegated(name, key, value);
        }
        let first = self.state == State::First;
        self.state = State::Rest;
        write_key(self.out, key, first);
        value.serialize(Encoder {
            out: &mut *self.out,
        })
    }

    fn end(mut self) -> Result<(), JsonLineError> {
        if self.private.is_none() {
            self.close(b'}');
        }
        Ok(())
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = JsonLineError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), JsonLineError> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }

    fn end(mut self) -> Result<(), JsonLineError> {
        self.close(b'}');
        self.out.push(b'}');
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Map keys
// ---------------------------------------------------------------------------------------------

/// Map keys, as serde_json's `MapKeySerializer` writes them: strings, chars and unit variants
/// as strings; integers, bools and finite floats as their JSON text inside quotes; newtypes and
/// `Some` as what they wrap; everything else is refused.
struct KeyEncoder<'a> {
    out: &'a mut Vec<u8>,
}

impl KeyEncoder<'_> {
    /// An integer key, in quotes.
    fn integer<I: itoa::Integer>(self, value: I) -> Result<(), JsonLineError> {
        self.quoted(|out| write_int(out, value))
    }

    /// Writes `write`'s output inside quotes (a number or bool key; nothing to escape).
    fn quoted(self, write: impl FnOnce(&mut Vec<u8>)) -> Result<(), JsonLineError> {
        self.out.push(b'"');
        write(self.out);
        self.out.push(b'"');
        Ok(())
    }
}

fn refuse<T>() -> Result<T, JsonLineError> {
    Err(JsonLineError::KeyMustBeAString)
}

impl ser::Serializer for KeyEncoder<'_> {
    type Ok = ();
    type Error = JsonLineError;
    type SerializeSeq = Impossible<(), JsonLineError>;
    type SerializeTuple = Impossible<(), JsonLineError>;
    type SerializeTupleStruct = Impossible<(), JsonLineError>;
    type SerializeTupleVariant = Impossible<(), JsonLineError>;
    type SerializeMap = Impossible<(), JsonLineError>;
    type SerializeStruct = Impossible<(), JsonLineError>;
    type SerializeStructVariant = Impossible<(), JsonLineError>;

    fn serialize_str(self, value: &str) -> Result<(), JsonLineError> {
        write_str(self.out, value);
        Ok(())
    }

    fn serialize_char(self, value: char) -> Result<(), JsonLineError> {
        write_str(self.out, value.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), JsonLineError> {
        write_str(self.out, variant);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), JsonLineError> {
        value.serialize(self)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), JsonLineError> {
        value.serialize(self)
    }

    fn serialize_bool(self, value: bool) -> Result<(), JsonLineError> {
        self.quoted(|out| out.extend_from_slice(if value { b"true" } else { b"false" }))
    }

    integer_methods!();

    fn serialize_f32(self, value: f32) -> Result<(), JsonLineError> {
        if !value.is_finite() {
            return Err(JsonLineError::FloatKeyMustBeFinite);
        }
        self.quoted(|out| write_float(out, value, true))
    }

    fn serialize_f64(self, value: f64) -> Result<(), JsonLineError> {
        if !value.is_finite() {
            return Err(JsonLineError::FloatKeyMustBeFinite);
        }
        self.quoted(|out| write_float(out, value, true))
    }

    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<(), JsonLineError> {
        write_display(self.out, value)
    }

    fn serialize_bytes(self, _value: &[u8]) -> Result<(), JsonLineError> {
        refuse()
    }

    fn serialize_none(self) -> Result<(), JsonLineError> {
        refuse()
    }

    fn serialize_unit(self) -> Result<(), JsonLineError> {
        refuse()
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), JsonLineError> {
        refuse()
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), JsonLineError> {
        refuse()
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, JsonLineError> {
        refuse()
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, JsonLineError> {
        refuse()
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, JsonLineError> {
        refuse()
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, JsonLineError> {
        refuse()
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, JsonLineError> {
        refuse()
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, JsonLineError> {
        refuse()
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, JsonLineError> {
        refuse()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use proptest::collection::vec;
    use proptest::prelude::*;
    use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};
    use serde_json::{Map, Number, Value};

    use super::*;

    /// The property every test checks: `write_json` writes what `serde_json::to_vec` writes, or
    /// fails where serde_json fails (with serde_json's message, and leaving `out` empty).
    fn check<T: Serialize + ?Sized>(value: &T) -> Result<(), TestCaseError> {
        let mut ours = Vec::new();
        match (serde_json::to_vec(value), write_json(value, &mut ours)) {
            (Ok(theirs), Ok(())) => {
                prop_assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&theirs)
                );
                prop_assert_eq!(ours, theirs);
            }
            (Err(theirs), Err(error)) => {
                prop_assert_eq!(error.to_string(), theirs.to_string());
                prop_assert!(
                    ours.is_empty(),
                    "an error left {:?} behind",
                    String::from_utf8_lossy(&ours)
                );
            }
            (theirs, ours_result) => {
                prop_assert!(
                    false,
                    "serde_json gave {:?}, write_json gave {:?}",
                    theirs.map(String::from_utf8),
                    ours_result
                );
            }
        }
        Ok(())
    }

    fn assert_same<T: Serialize + ?Sized>(value: &T) {
        check(value).unwrap();
    }

    // --- strategies ---------------------------------------------------------------------------

    fn char_in(range: std::ops::RangeInclusive<u32>) -> impl Strategy<Value = char> {
        range.prop_map(|code| char::from_u32(code).unwrap())
    }

    /// Characters weighted towards the ones escaping is about: ASCII, `"`, `\`, every control
    /// character, DEL, and two-, three- and four-byte UTF-8 (emoji).
    fn json_char() -> impl Strategy<Value = char> {
        prop_oneof![
            6 => char_in(0x20..=0x7e),
            1 => Just('"'),
            1 => Just('\\'),
            2 => char_in(0x00..=0x1f),
            1 => Just('\x7f'),
            1 => char_in(0x80..=0x7ff),
            1 => char_in(0x800..=0xd7ff),
            1 => char_in(0xe000..=0xffff),
            1 => char_in(0x1f300..=0x1faff),
            1 => any::<char>(),
        ]
    }

    /// Strings up to 80 characters, so that the 16- and 8-byte scans and their tails all run.
    fn json_string() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => vec(json_char(), 0..12).prop_map(String::from_iter),
            2 => vec(json_char(), 0..80).prop_map(String::from_iter),
        ]
    }

    /// Finite doubles: any bit pattern that is not NaN or infinite, and the edges.
    fn finite_f64() -> impl Strategy<Value = f64> {
        use proptest::num::f64 as f;
        prop_oneof![
            4 => f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO,
            2 => -1e6..1e6f64,
            1 => prop::sample::select(vec![
                0.0, -0.0, 5e-324, -5e-324, 1e300, -1e300, f64::MAX, f64::MIN, f64::MIN_POSITIVE,
                f64::EPSILON, 0.1, 1e15, 1e16, 1e17, 1e-5, 1e-6, 1e-7, 123456789.0, 0.43681487,
            ]),
        ]
    }

    /// Any double, including NaN and the infinities (which serde_json writes as `null`).
    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => finite_f64(),
            1 => prop::sample::select(vec![f64::NAN, -f64::NAN, f64::INFINITY, f64::NEG_INFINITY]),
            1 => any::<f64>(),
        ]
    }

    fn any_f32() -> impl Strategy<Value = f32> {
        prop_oneof![
            4 => any::<f32>(),
            2 => 0.0..1.0f32,
            1 => prop::sample::select(vec![
                0.0, -0.0, f32::MIN_POSITIVE, 1e-45, f32::MAX, f32::MIN, f32::NAN, f32::INFINITY,
                f32::NEG_INFINITY, 0.1, 1e7, 1e8, 16777216.0, 0.43681487,
            ]),
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            finite_f64().prop_map(|x| Value::Number(Number::from_f64(x).unwrap())),
            json_string().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..8).prop_map(Value::Array),
                vec((json_string(), inner), 0..8)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    // --- typed records ------------------------------------------------------------------------

    #[derive(Clone, Debug, Serialize)]
    struct UnitStruct;

    #[derive(Clone, Debug, Serialize)]
    struct Newtype(i32);

    #[derive(Clone, Debug, Serialize)]
    struct TupleStruct(i16, String, bool);

    #[derive(Clone, Debug, Serialize)]
    struct EmptyStruct {}

    /// A byte string, serialized with `serialize_bytes` (as `serde_bytes` does).
    #[derive(Clone, Debug)]
    struct Bytes(Vec<u8>);

    impl Serialize for Bytes {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(&self.0)
        }
    }

    /// A value serialized with `collect_str` (its `Display`), as e.g. `chrono` types are.
    #[derive(Clone, Debug)]
    struct Shown(String);

    impl Display for Shown {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            // Several fragments, so escaping across `write_str` calls is exercised.
            write!(f, "<{}|{}>", self.0, self.0.len())
        }
    }

    impl Serialize for Shown {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_str(self)
        }
    }

    /// A map whose keys are floats (no std map allows that), serialized with `serialize_map`.
    #[derive(Clone, Debug)]
    struct FloatKeys(Vec<(f64, u8)>);

    impl Serialize for FloatKeys {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(self.0.len()))?;
            for (key, value) in &self.0 {
                map.serialize_entry(key, value)?;
            }
            map.end()
        }
    }

    #[derive(Clone, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
    enum KeyEnum {
        Alpha,
        #[serde(rename = "be\"ta")]
        Beta,
    }

    #[derive(Clone, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
    struct KeyNewtype(String);

    #[derive(Clone, Debug, Serialize)]
    enum Shape {
        Unit,
        Newtype(f64),
        Tuple(i8, String),
        EmptyTuple(),
        Struct {
            a: u8,
            #[serde(skip_serializing_if = "Option::is_none")]
            b: Option<String>,
        },
        EmptyStruct {},
        #[serde(rename = "quo\"ted\u{1}")]
        Renamed,
    }

    #[derive(Clone, Debug, Serialize)]
    struct Inner {
        x: i32,
        name: String,
        #[serde(rename = "we\"ird\nkey\u{7f}é")]
        weird: bool,
    }

    #[derive(Clone, Debug, Serialize)]
    struct Extra {
        extra_a: u64,
        extra_b: Option<String>,
    }

    #[derive(Clone, Debug, Serialize)]
    struct Numbers {
        i8_: i8,
        i16_: i16,
        i32_: i32,
        i64_: i64,
        i128_: i128,
        u8_: u8,
        u16_: u16,
        u32_: u32,
        u64_: u64,
        u128_: u128,
        f32_: f32,
        f64_: f64,
    }

    #[derive(Clone, Debug, Serialize)]
    struct Keys {
        strings: HashMap<String, i32>,
        btree_strings: BTreeMap<String, Vec<bool>>,
        ints: BTreeMap<i64, String>,
        u8s: HashMap<u8, ()>,
        i128s: BTreeMap<i128, u8>,
        u128s: BTreeMap<u128, u8>,
        bools: HashMap<bool, u8>,
        chars: BTreeMap<char, u8>,
        enums: BTreeMap<KeyEnum, u8>,
        newtypes: BTreeMap<KeyNewtype, u8>,
        some_keys: BTreeMap<Option<u16>, u8>,
        floats: FloatKeys,
    }

    /// Every construct of serde's data model.
    #[derive(Clone, Debug, Serialize)]
    struct Everything {
        b: bool,
        numbers: Numbers,
        c: char,
        s: String,
        some: Option<u32>,
        none: Option<String>,
        unit: (),
        unit_struct: UnitStruct,
        newtype: Newtype,
        tuple: (u8, String, f64),
        tuple_struct: TupleStruct,
        vec: Vec<i32>,
        bytes: Bytes,
        keys: Keys,
        nested: Inner,
        shapes: Vec<Shape>,
        empty: EmptyStruct,
        empty_vec: Vec<u8>,
        empty_map: BTreeMap<String, u8>,
        shown: Shown,
        #[serde(flatten)]
        flattened: Extra,
        #[serde(flatten)]
        flattened_map: HashMap<String, Shape>,
        #[serde(skip_serializing_if = "Option::is_none")]
        maybe: Option<f32>,
        #[serde(skip)]
        #[allow(dead_code)]
        skipped: u8,
    }

    /// Borrowed strings (`&str`) next to owned ones.
    #[derive(Serialize)]
    struct Borrowed<'a> {
        text: &'a str,
        everything: &'a Everything,
        texts: Vec<&'a str>,
    }

    fn numbers() -> impl Strategy<Value = Numbers> {
        (
            (
                any::<i8>(),
                any::<i16>(),
                any::<i32>(),
                any::<i64>(),
                any::<i128>(),
                any::<u8>(),
            ),
            (
                any::<u16>(),
                any::<u32>(),
                any::<u64>(),
                any::<u128>(),
                any_f32(),
                any_f64(),
            ),
        )
            .prop_map(
                |((i8_, i16_, i32_, i64_, i128_, u8_), (u16_, u32_, u64_, u128_, f32_, f64_))| {
                    Numbers {
                        i8_,
                        i16_,
                        i32_,
                        i64_,
                        i128_,
                        u8_,
                        u16_,
                        u32_,
                        u64_,
                        u128_,
                        f32_,
                        f64_,
                    }
                },
            )
    }

    fn keys() -> impl Strategy<Value = Keys> {
        let key_enum = prop_oneof![Just(KeyEnum::Alpha), Just(KeyEnum::Beta)];
        (
            (
                prop::collection::hash_map(json_string(), any::<i32>(), 0..4),
                prop::collection::btree_map(json_string(), vec(any::<bool>(), 0..3), 0..4),
                prop::collection::btree_map(any::<i64>(), json_string(), 0..4),
                prop::collection::hash_map(any::<u8>(), Just(()), 0..4),
                prop::collection::btree_map(any::<i128>(), any::<u8>(), 0..3),
                prop::collection::btree_map(any::<u128>(), any::<u8>(), 0..3),
            ),
            (
                prop::collection::hash_map(any::<bool>(), any::<u8>(), 0..3),
                prop::collection::btree_map(json_char(), any::<u8>(), 0..4),
                prop::collection::btree_map(key_enum, any::<u8>(), 0..3),
                prop::collection::btree_map(json_string().prop_map(KeyNewtype), any::<u8>(), 0..3),
                prop::collection::btree_map(any::<u16>().prop_map(Some), any::<u8>(), 0..3),
                vec((finite_f64(), any::<u8>()), 0..4).prop_map(FloatKeys),
            ),
        )
            .prop_map(
                |(
                    (strings, btree_strings, ints, u8s, i128s, u128s),
                    (bools, chars, enums, newtypes, some_keys, floats),
                )| Keys {
                    strings,
                    btree_strings,
                    ints,
                    u8s,
                    i128s,
                    u128s,
                    bools,
                    chars,
                    enums,
                    newtypes,
                    some_keys,
                    floats,
                },
            )
    }

    fn shape() -> impl Strategy<Value = Shape> {
        prop_oneof![
            Just(Shape::Unit),
            any_f64().prop_map(Shape::Newtype),
            (any::<i8>(), json_string()).prop_map(|(a, b)| Shape::Tuple(a, b)),
            Just(Shape::EmptyTuple()),
            (any::<u8>(), proptest::option::of(json_string()))
                .prop_map(|(a, b)| Shape::Struct { a, b }),
            Just(Shape::EmptyStruct {}),
            Just(Shape::Renamed),
        ]
    }

    fn everything() -> impl Strategy<Value = Everything> {
        (
            (
                any::<bool>(),
                numbers(),
                prop_oneof![json_char(), any::<char>()],
                json_string(),
                proptest::option::of(any::<u32>()),
                proptest::option::of(json_string()),
                (any::<u8>(), json_string(), any_f64()),
                (any::<i16>(), json_string(), any::<bool>()),
            ),
            (
                vec(any::<i32>(), 0..6),
                vec(any::<u8>(), 0..20).prop_map(Bytes),
                keys(),
                (any::<i32>(), json_string(), any::<bool>()).prop_map(|(x, name, weird)| Inner {
                    x,
                    name,
                    weird,
                }),
                vec(shape(), 0..5),
                json_string().prop_map(Shown),
                (any::<u64>(), proptest::option::of(json_string()))
                    .prop_map(|(extra_a, extra_b)| Extra { extra_a, extra_b }),
                prop::collection::hash_map("[a-z]{1,6}", shape(), 0..3),
                proptest::option::of(any_f32()),
            ),
        )
            .prop_map(
                |(
                    (b, numbers, c, s, some, none, tuple, tuple_struct),
                    (vec, bytes, keys, nested, shapes, shown, flattened, flattened_map, maybe),
                )| {
                    Everything {
                        b,
                        numbers,
                        c,
                        s,
                        some,
                        none,
                        unit: (),
                        unit_struct: UnitStruct,
                        newtype: Newtype(tuple_struct.0.into()),
                        tuple,
                        tuple_struct: TupleStruct(tuple_struct.0, tuple_struct.1, tuple_struct.2),
                        vec,
                        bytes,
                        keys,
                        nested,
                        shapes,
                        empty: EmptyStruct {},
                        empty_vec: Vec::new(),
                        empty_map: BTreeMap::new(),
                        shown,
                        // A flattened field must not repeat a key of the struct itself.
                        flattened_map: flattened_map
                            .into_iter()
                            .map(|(k, v)| (format!("flat_{k}"), v))
                            .collect(),
                        flattened,
                        maybe,
                        skipped: 0,
                    }
                },
            )
    }

    /// The hot record shape of the sinks.
    #[derive(Debug, Serialize)]
    struct CtrScore {
        ts: i64,
        user: compact_str::CompactString,
        item: compact_str::CompactString,
        #[serde(skip_serializing_if = "Option::is_none")]
        p_click: Option<f32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        model_version: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    }

    fn ctr_score() -> impl Strategy<Value = CtrScore> {
        (
            any::<i64>(),
            json_string(),
            "i[0-9]{1,5}",
            proptest::option::of(any_f32()),
            proptest::option::of(any::<u64>()),
            proptest::option::of(json_string()),
        )
            .prop_map(|(ts, user, item, p_click, model_version, error)| CtrScore {
                ts,
                user: user.into(),
                item: item.into(),
                p_click,
                model_version,
                error,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn values_match_serde_json(value in json_value()) {
            check(&value)?;
        }

        #[test]
        fn strings_match_serde_json(text in json_string()) {
            check(&text)?;
            // As a key too, and with a clean prefix long enough for the wide scans.
            check(&BTreeMap::from([(text.clone(), 1)]))?;
            check(&format!("0123456789abcdefghij{text}"))?;
        }

        #[test]
        fn everything_matches_serde_json(everything in everything(), text in json_string()) {
            check(&everything)?;
            let texts = vec![text.as_str(), "", "plain"];
            check(&Borrowed { text: &text, everything: &everything, texts })?;
        }

        #[test]
        fn ctr_scores_match_serde_json(record in ctr_score()) {
            check(&record)?;
        }

        /// The scan finds the first byte to escape at every position and length, for any bytes
        /// (not only UTF-8), which is what the SWAR and SSE2 masks must get right.
        #[test]
        fn first_escape_finds_the_first_escape(
            bytes in vec(
                prop_oneof![4 => 0x20u8..=0xff, 1 => 0u8..0x20, 1 => Just(b'"'), 1 => Just(b'\\')],
                0..70,
            ),
        ) {
            let naive = bytes
                .iter()
                .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
                .unwrap_or(bytes.len());
            prop_assert_eq!(first_escape(&bytes), naive);
        }

        /// One byte to escape among clean ones, at every position of every length up to 70.
        #[test]
        fn one_escape_anywhere(
            len in 1usize..70,
            at in 0usize..70,
            escape in prop_oneof![0u8..0x20, Just(b'"'), Just(b'\\')],
            fill in prop_oneof![Just(b'a'), Just(0x7f), Just(b' ')],
        ) {
            let mut bytes = vec![fill; len];
            let at = at % len;
            bytes[at] = escape;
            prop_assert_eq!(first_escape(&bytes), at);
            check(std::str::from_utf8(&bytes).unwrap())?;
        }
    }

    #[test]
    fn every_ascii_byte_escapes_like_serde_json() {
        for byte in 0u8..0x80 {
            let one = char::from(byte).to_string();
            assert_same(&one);
            assert_same(&format!("ab{one}cdefghijklmnopqrstu{one}{one}v"));
        }
    }

    #[test]
    fn hot_records_are_what_the_sinks_expect() {
        let record = CtrScore {
            ts: 1767225600001,
            user: "u40804".into(),
            item: "i781".into(),
            p_click: Some(0.43681487),
            model_version: Some(1),
            error: None,
        };
        let mut out = Vec::new();
        write_json(&record, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"ts":1767225600001,"user":"u40804","item":"i781","p_click":0.43681487,"model_version":1}"#
        );
        assert_same(&record);
        assert_same(&CtrScore {
            p_click: None,
            model_version: None,
            error: Some("model \"m\" timed out\n".into()),
            ..record
        });
    }

    #[test]
    fn edge_numbers_match_serde_json() {
        assert_same(&(
            i128::MIN,
            i128::MAX,
            u128::MAX,
            i64::MIN,
            u64::MAX,
            i8::MIN,
            0u8,
        ));
        assert_same(&[
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            f32::MIN_POSITIVE,
            1e-45,
            f32::MAX,
            f32::MIN,
        ]);
        assert_same(&[
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            5e-324,
            1e300,
            f64::MAX,
            0.1,
            1e16,
            1e-7,
        ]);
        assert_same(&Value::from(-0.0));
        assert_same(&BTreeMap::from([(i128::MIN, 1), (i128::MAX, 2)]));
        assert_same(&FloatKeys(vec![
            (-0.0, 1),
            (5e-324, 2),
            (1e300, 3),
            (0.5, 4),
        ]));
        assert_same(&BTreeMap::from([('\n', 1), ('"', 2), ('é', 3)]));
    }

    #[test]
    fn writes_append_and_leave_the_prefix_alone() {
        let prefix = b"{\"earlier\":1}\n".to_vec();
        let mut out = prefix.clone();
        write_json(
            &Inner {
                x: -3,
                name: "n\"1".into(),
                weird: true,
            },
            &mut out,
        )
        .unwrap();
        write_json(&[1.5f64, f64::NAN], &mut out).unwrap();
        let mut expected = prefix;
        serde_json::to_writer(
            &mut expected,
            &Inner {
                x: -3,
                name: "n\"1".into(),
                weird: true,
            },
        )
        .unwrap();
        serde_json::to_writer(&mut expected, &[1.5f64, f64::NAN]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }

    #[test]
    fn refused_keys_are_errors_and_leave_out_as_it_was() {
        #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
        struct StructKey {
            a: u8,
        }
        #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
        enum VariantKey {
            Newtype(u8),
        }

        fn refused<T: Serialize>(value: &T, message: &str) {
            let serde_json_error = serde_json::to_vec(value).unwrap_err();
            assert_eq!(serde_json_error.to_string(), message);
            let mut out = b"kept".to_vec();
            let error = write_json(value, &mut out).unwrap_err();
            assert_eq!(error.to_string(), message);
            assert_eq!(out, b"kept");
        }

        let must_be_a_string = "key must be a string";
        refused(&BTreeMap::from([(StructKey { a: 1 }, 1)]), must_be_a_string);
        refused(
            &BTreeMap::from([(VariantKey::Newtype(1), 1)]),
            must_be_a_string,
        );
        refused(&BTreeMap::from([(vec![1u8], 1)]), must_be_a_string);
        refused(&BTreeMap::from([((1u8, 2u8), 1)]), must_be_a_string);
        refused(&BTreeMap::from([((), 1)]), must_be_a_string);
        refused(&BTreeMap::from([(None::<u8>, 1)]), must_be_a_string);
        refused(&BTreeMap::from([(Some(UnitStruct2), 1)]), must_be_a_string);
        refused(
            &vec![FloatKeys(vec![(f64::NAN, 1)])],
            "float key must be finite (got NaN or +/-inf)",
        );
        // The error surfaces from deep inside a record, after much was written.
        refused(
            &(
                1,
                "two",
                [BTreeMap::from([(1.5f64.to_bits(), 1)])],
                BTreeMap::from([(Bytes2(vec![1]), 1)]),
            ),
            must_be_a_string,
        );

        #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
        struct UnitStruct2;

        #[derive(PartialEq, Eq, PartialOrd, Ord)]
        struct Bytes2(Vec<u8>);
        impl Serialize for Bytes2 {
            fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bytes(&self.0)
            }
        }
    }

    #[test]
    fn custom_errors_and_failing_display_are_errors() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: ser::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(ser::Error::custom("no \"way\""))
            }
        }
        let mut out = b"x".to_vec();
        let error = write_json(&(1, Fails), &mut out).unwrap_err();
        assert_eq!(
            error.to_string(),
            serde_json::to_vec(&(1, Fails)).unwrap_err().to_string()
        );
        assert_eq!(out, b"x");

        // serde_json panics here ("there should be an error"); an `Err` is kinder to a sink.
        struct BadDisplay;
        impl Display for BadDisplay {
            fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
                Err(fmt::Error)
            }
        }
        impl Serialize for BadDisplay {
            fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
        assert!(write_json(&BadDisplay, &mut out).is_err());
        assert_eq!(out, b"x");
    }

    /// `Serialize` impls that announce a length of 0 and then write elements anyway: serde_json
    /// closes such a container at once and writes the elements after it (with commas). Odd, but
    /// matched, because `State` mirrors serde_json's.
    #[test]
    fn containers_announced_empty_match_serde_json() {
        struct Liar;
        impl Serialize for Liar {
            fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use ser::SerializeTuple;
                let mut outer = serializer.serialize_tuple(3)?;
                outer.serialize_element(&LiarSeq)?;
                outer.serialize_element(&LiarMap)?;
                outer.serialize_element(&LiarStruct)?;
                outer.end()
            }
        }
        struct LiarSeq;
        impl Serialize for LiarSeq {
            fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut seq = serializer.serialize_seq(Some(0))?;
                seq.serialize_element(&1)?;
                seq.serialize_element(&2)?;
                seq.end()
            }
        }
        struct LiarMap;
        impl Serialize for LiarMap {
            fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(0))?;
                map.serialize_entry("a", &1)?;
                map.end()
            }
        }
        struct LiarStruct;
        impl Serialize for LiarStruct {
            fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut record = serializer.serialize_struct("LiarStruct", 0)?;
                record.serialize_field("a", &1)?;
                record.serialize_field("b", &2)?;
                record.end()
            }
        }
        assert_same(&Liar);
        // Unknown lengths (`None`) are the ordinary case of iterators and flattened structs.
        struct UnknownLength;
        impl Serialize for UnknownLength {
            fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let seq = serializer.serialize_seq(None)?;
                seq.end()
            }
        }
        assert_same(&(UnknownLength, UnknownLength));
    }

    /// A struct named like serde_json's private `RawValue`/`Number` tokens goes to serde_json,
    /// which writes what its features say (here: neither is on, so an ordinary object).
    #[test]
    fn serde_json_private_tokens_go_to_serde_json() {
        #[derive(Serialize)]
        #[serde(rename = "$serde_json::private::RawValue")]
        struct RawLike {
            #[serde(rename = "$serde_json::private::RawValue")]
            raw: &'static str,
        }
        #[derive(Serialize)]
        #[serde(rename = "$serde_json::private::Number")]
        struct NumberLike {
            #[serde(rename = "$serde_json::private::Number")]
            number: &'static str,
        }
        assert_same(&(
            RawLike { raw: "{\"a\":1}" },
            NumberLike { number: "1.5" },
            7,
        ));
    }
}
