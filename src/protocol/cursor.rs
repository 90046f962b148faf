//! Bounds-checked reading of Kafka primitive types from untrusted bytes, without allocation.
//!
//! Every accessor returns `None` on short or malformed input instead of panicking; callers turn
//! that into a protocol error that names the side which sent the bytes. This is the only place
//! that indexes into network buffers.

/// A read position over a byte slice. Cheap to copy, so callers can look ahead.
#[derive(Clone, Copy, Debug)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn at(buf: &'a [u8], pos: usize) -> Self {
        Self { buf, pos }
    }

    /// Offset of the next unread byte from the start of the slice.
    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let end = self.pos.checked_add(N)?;
        let bytes: [u8; N] = self.buf.get(self.pos..end)?.try_into().ok()?;
        self.pos = end;
        Some(bytes)
    }

    pub fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        if end > self.buf.len() {
            return None;
        }
        self.pos = end;
        Some(())
    }

    /// Returns the next `n` bytes and advances past them.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    pub fn i8(&mut self) -> Option<i8> {
        self.take::<1>().map(i8::from_be_bytes)
    }

    pub fn i16(&mut self) -> Option<i16> {
        self.take::<2>().map(i16::from_be_bytes)
    }

    pub fn i32(&mut self) -> Option<i32> {
        self.take::<4>().map(i32::from_be_bytes)
    }

    pub fn i64(&mut self) -> Option<i64> {
        self.take::<8>().map(i64::from_be_bytes)
    }

    /// Unsigned LEB128 varint as used by flexible versions (at most 5 bytes for a u32).
    pub fn uvarint(&mut self) -> Option<u32> {
        let mut value: u32 = 0;
        for shift in (0..35).step_by(7) {
            let [b] = self.take::<1>()?;
            value |= u32::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// Length of a classic nullable string/bytes (`i16` for strings): `None` inside means null.
    fn classic_len16(&mut self) -> Option<Option<usize>> {
        let n = self.i16()?;
        match n {
            -1 => Some(None),
            n if n >= 0 => Some(Some(n as usize)),
            _ => None,
        }
    }

    /// Length of a compact nullable string/bytes/array (`uvarint(len + 1)`, 0 = null).
    pub fn compact_len(&mut self) -> Option<Option<usize>> {
        let n = self.uvarint()?;
        Some(n.checked_sub(1).map(|n| n as usize))
    }

    /// A classic (`i16`-length) nullable string as raw bytes.
    pub fn string(&mut self) -> Option<Option<&'a [u8]>> {
        match self.classic_len16()? {
            None => Some(None),
            Some(n) => self.bytes(n).map(Some),
        }
    }

    /// A compact nullable string as raw bytes.
    pub fn compact_string(&mut self) -> Option<Option<&'a [u8]>> {
        match self.compact_len()? {
            None => Some(None),
            Some(n) => self.bytes(n).map(Some),
        }
    }

    /// A string in the encoding the version calls for.
    pub fn string_v(&mut self, flexible: bool) -> Option<Option<&'a [u8]>> {
        if flexible {
            self.compact_string()
        } else {
            self.string()
        }
    }

    /// Skips nullable bytes (`i32` length classic, compact when flexible).
    pub fn skip_bytes_v(&mut self, flexible: bool) -> Option<()> {
        let len = if flexible {
            self.compact_len()?
        } else {
            match self.i32()? {
                -1 => None,
                n if n >= 0 => Some(n as usize),
                _ => return None,
            }
        };
        match len {
            None => Some(()),
            Some(n) => self.skip(n),
        }
    }

    /// Array element count (`i32` classic, compact when flexible); null arrays count as 0.
    pub fn array_len_v(&mut self, flexible: bool) -> Option<usize> {
        if flexible {
            Some(self.compact_len()?.unwrap_or(0))
        } else {
            match self.i32()? {
                -1 => Some(0),
                n if n >= 0 => Some(n as usize),
                _ => None,
            }
        }
    }

    /// Array count that is also plausible: every element takes at least one byte, so a count
    /// above the bytes left is a lie (and would make a decoder pre-allocate for it).
    pub fn bounded_array_len_v(&mut self, flexible: bool) -> Option<usize> {
        let n = self.array_len_v(flexible)?;
        (n <= self.remaining()).then_some(n)
    }

    /// Skips a tagged-field section.
    pub fn skip_tagged_fields(&mut self) -> Option<()> {
        let count = self.uvarint()?;
        for _ in 0..count {
            self.uvarint()?;
            let len = self.uvarint()? as usize;
            self.skip(len)?;
        }
        Some(())
    }
}

/// Appends an unsigned varint to `out`.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_none_not_panic() {
        let mut c = Cursor::new(&[0x00]);
        assert_eq!(c.i16(), None);
        assert_eq!(Cursor::new(&[]).i8(), None);
        assert_eq!(Cursor::new(&[0, 5, b'a']).string(), None);
        assert_eq!(Cursor::new(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).uvarint(), None);
        assert_eq!(Cursor::new(&[0xff, 0xfe]).string(), None, "negative non-null length");
        assert_eq!(Cursor::new(&[0x7f, 0xff, 0xff, 0xff]).skip_bytes_v(false), None);
    }

    #[test]
    fn varints_roundtrip() {
        for v in [0u32, 1, 127, 128, 300, 16_384, u32::MAX] {
            let mut out = Vec::new();
            put_uvarint(&mut out, v);
            assert_eq!(Cursor::new(&out).uvarint(), Some(v));
        }
    }

    #[test]
    fn strings_classic_and_compact() {
        assert_eq!(Cursor::new(&[0xff, 0xff]).string(), Some(None));
        assert_eq!(Cursor::new(&[0, 2, b'h', b'i']).string(), Some(Some(&b"hi"[..])));
        assert_eq!(Cursor::new(&[0]).compact_string(), Some(None));
        assert_eq!(Cursor::new(&[3, b'h', b'i']).compact_string(), Some(Some(&b"hi"[..])));
    }

    #[test]
    fn tagged_fields_skip() {
        let buf = [2, 0, 1, 0xaa, 5, 2, 0xbb, 0xcc, 9];
        let mut c = Cursor::new(&buf);
        assert_eq!(c.skip_tagged_fields(), Some(()));
        assert_eq!(c.pos(), 8);
    }
}
