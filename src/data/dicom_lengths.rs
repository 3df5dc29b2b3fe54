//! A check of a DICOM file's declared element lengths against its size, before the DICOM
//! parser reads it: the parser reserves and zero-fills each element's declared length, so a
//! damaged length field made a 10 KB file ask for gigabytes. Walks the element headers of
//! the file meta group and the data set (explicit or implicit VR, little or big endian;
//! sequences and items descended into, encapsulated pixel fragments skipped) and reports the
//! first element whose declared length runs past the end of the file, the first header that
//! cannot be read, or a file meta group without a transfer syntax. Anything else it does not understand (a deflated data set,
//! an undefined-length value it cannot skip) ends the walk without a verdict: the parser
//! then decides.

/// Undefined length (sequences, items, encapsulated pixel data).
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// VRs with a 2-byte reserved field and a 4-byte length in explicit VR.
const LONG_VRS: &[&[u8; 2]] = &[
    b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV",
];

/// Every value representation of DICOM PS3.5 (2024), as explicit VR data sets spell them.
const KNOWN_VRS: &[&[u8; 2]] = &[
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"OB",
    b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM",
    b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
];

/// Tags of the item structure (always without a VR).
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const PIXEL_DATA: (u16, u16) = (0x7FE0, 0x0010);

/// What the walk found wrong with a DICOM file, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Damage {
    /// An element's declared length runs past the end: "element (gggg,eeee) declares N bytes
    /// at offset O; the file has M".
    LengthPastEnd(String),
    /// A header cannot be read, or the file meta group names no transfer syntax.
    Unreadable(String),
}

impl From<String> for Damage {
    fn from(message: String) -> Self {
        Damage::LengthPastEnd(message)
    }
}

/// The first damage of `bytes` (a whole DICOM file) that would make the parser reserve more
/// than the file holds, if any.
pub fn damage(bytes: &[u8]) -> Option<Damage> {
    walk_file(bytes).err()
}

/// The first element whose declared length does not fit in `bytes`, as [`Damage`] says.
pub fn length_past_end(bytes: &[u8]) -> Option<String> {
    match damage(bytes)? {
        Damage::LengthPastEnd(message) => Some(message),
        Damage::Unreadable(_) => None,
    }
}

/// Walks the file's element headers: `Ok(true)` when every header up to the end was
/// understood, `Ok(false)` when the walk stopped without a verdict (not DICOM, deflated, an
/// unexpected header), `Err` with the first declared length that runs past the end.
fn walk_file(bytes: &[u8]) -> Result<bool, Damage> {
    // The magic after the 128-byte preamble, or (the parser accepts it too) at the start.
    let start = if bytes.get(128..132) == Some(b"DICM".as_slice()) {
        132
    } else if bytes.starts_with(b"DICM") {
        4
    } else {
        return Ok(false);
    };
    let mut walk = Walk {
        bytes,
        pos: start,
        explicit: true,
        little: true,
        fragments: false,
    };
    // The file meta group: explicit VR little endian.
    let mut syntax = None;
    while walk.peek_group() == Some(0x0002) {
        let Some(header) = walk.header() else {
            return Err(Damage::Unreadable(format!(
                "the file meta header at offset {} cannot be read",
                walk.pos
            )));
        };
        walk.fits(&header)?;
        let start = walk.pos + header.size;
        if header.tag == (0x0002, 0x0010) {
            let value = &bytes[start..start + header.len as usize];
            let uid = String::from_utf8_lossy(value);
            syntax = Some(uid.trim_end_matches(['\0', ' ']).to_owned());
        }
        walk.pos = start + header.len as usize;
    }
    match syntax.as_deref() {
        Some("1.2.840.10008.1.2") => walk.explicit = false,
        Some("1.2.840.10008.1.2.2") => walk.little = false,
        // Deflated: the data set is compressed, its lengths are not in the file.
        Some("1.2.840.10008.1.2.1.99") => return Ok(false),
        // The parser would guess the encoding and read lengths from whatever follows
        // (fuzzing found a 1 KB file that made it reserve gigabytes).
        None => {
            return Err(Damage::Unreadable(format!(
                "the file meta group (0002) ends at offset {} without a transfer syntax \
                 (0002,0010)",
                walk.pos
            )));
        }
        Some(_) => {}
    }
    while walk.pos < bytes.len() {
        // A header that cannot be read (cut off, or an explicit VR the standard does not
        // know) is damage: the parser would guess a length from the bytes that follow
        // and reserve it (fuzzing found gigabytes asked for by a 10 KB file).
        let Some(header) = walk.header() else {
            return Err(Damage::Unreadable(format!(
                "the element header at offset {} cannot be read ({} bytes left)",
                walk.pos,
                bytes.len() - walk.pos
            )));
        };
        walk.fits(&header)?;
        whole_values(&header, walk.pos)?;
        // A file's data set has no command (0000) or reserved (0001-0007 odd, FFFF) groups:
        // such tags mean zeroed or shifted bytes, which the parser reads with dictionary VRs
        // and lengths out of step (fuzzing: a zero-filled data set kept it 13 s and 2 GB).
        if matches!(
            header.tag.0,
            0x0000 | 0x0001 | 0x0003 | 0x0005 | 0x0007 | 0xFFFF
        ) {
            return Err(Damage::Unreadable(format!(
                "element {} at offset {} is in group {:04X}, which a file's data set cannot \
                 hold",
                tag_text(header.tag),
                walk.pos,
                header.tag.0
            )));
        }
        if header.len == UNDEFINED {
            match header.vr.as_ref().map(|vr| &vr[..]) {
                // An `UN` element holding implicit-VR content: its inside is not walked, no
                // verdict.
                Some(b"UN") => return Ok(false),
                // Sequences are walked; OB/OW hold encapsulated fragments, walked like pixel
                // data (fuzzing renamed the pixel data tag and hid a 2.5 MB fragment length).
                None | Some(b"SQ" | b"OB" | b"OW") => {}
                Some(vr) => {
                    return Err(Damage::Unreadable(format!(
                        "element {} at offset {} has an undefined length, which its VR {} \
                         cannot have",
                        tag_text(header.tag),
                        walk.pos,
                        String::from_utf8_lossy(vr)
                    )));
                }
            }
            if walk.fragments && header.tag == ITEM {
                return Err(Damage::Unreadable(format!(
                    "an encapsulated fragment at offset {} has an undefined length",
                    walk.pos
                )));
            }
        }
        walk.advance(&header);
    }
    Ok(true)
}

/// Refuses a binary value whose length is not a whole number of its values (an `SL` of 6
/// bytes): the parser reads whole values and goes on out of step with the file (fuzzing
/// turned an `SH` of 6 bytes into an `SL`, and the parser then asked for gigabytes).
fn whole_values(header: &Header, offset: usize) -> Result<(), Damage> {
    let Some(vr) = header.vr else {
        return Ok(());
    };
    let size = match &vr {
        b"SS" | b"US" | b"OW" => 2,
        b"AT" | b"FL" | b"SL" | b"UL" | b"OF" | b"OL" => 4,
        b"FD" | b"SV" | b"UV" | b"OD" | b"OV" => 8,
        _ => return Ok(()),
    };
    if header.len == UNDEFINED || header.len.is_multiple_of(size) {
        return Ok(());
    }
    Err(Damage::Unreadable(format!(
        "element {} at offset {offset} is {} ({size}-byte values) but holds {} bytes",
        tag_text(header.tag),
        String::from_utf8_lossy(&vr),
        header.len
    )))
}

/// "(GGGG,EEEE)".
fn tag_text((group, element): (u16, u16)) -> String {
    format!("({group:04X},{element:04X})")
}

struct Header {
    tag: (u16, u16),
    vr: Option<[u8; 2]>,
    len: u32,
    /// Bytes of the header itself.
    size: usize,
}

struct Walk<'a> {
    bytes: &'a [u8],
    pos: usize,
    explicit: bool,
    little: bool,
    /// Inside encapsulated pixel data: items hold raw fragments, not elements.
    fragments: bool,
}

impl Walk<'_> {
    fn u16_at(&self, at: usize, little: bool) -> Option<u16> {
        let b: [u8; 2] = self.bytes.get(at..at + 2)?.try_into().ok()?;
        Some(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn peek_group(&self) -> Option<u16> {
        self.u16_at(self.pos, true)
    }

    /// The element header at the current position (`None`: not understood).
    fn header(&mut self) -> Option<Header> {
        let at = self.pos;
        let group = self.u16_at(at, self.little)?;
        let element = self.u16_at(at + 2, self.little)?;
        let tag = (group, element);
        if group == 0xFFFE {
            return Some(Header {
                tag,
                vr: None,
                len: self.u32_at(at + 4)?,
                size: 8,
            });
        }
        if !self.explicit {
            return Some(Header {
                tag,
                vr: None,
                len: self.u32_at(at + 4)?,
                size: 8,
            });
        }
        let vr: [u8; 2] = self.bytes.get(at + 4..at + 6)?.try_into().ok()?;
        // Only the standard's VRs: the parser reads an unknown one with a 4-byte length
        // taken from the value's bytes (fuzzing found "DS" turned "DK" asking for 3 GB).
        if !KNOWN_VRS.contains(&&vr) {
            return None;
        }
        if LONG_VRS.contains(&&vr) {
            Some(Header {
                tag,
                vr: Some(vr),
                len: self.u32_at(at + 8)?,
                size: 12,
            })
        } else {
            let len = u32::from(self.u16_at(at + 6, self.little)?);
            Some(Header {
                tag,
                vr: Some(vr),
                len,
                size: 8,
            })
        }
    }

    /// Why `header`'s declared length does not fit in the file, if it does not.
    fn fits(&self, header: &Header) -> Result<(), String> {
        if header.len == UNDEFINED {
            return Ok(());
        }
        let start = self.pos + header.size;
        let end = start as u64 + u64::from(header.len);
        if end <= self.bytes.len() as u64 {
            return Ok(());
        }
        Err(format!(
            "element ({:04X},{:04X}) declares {} bytes at offset {start}; the file has {}",
            header.tag.0,
            header.tag.1,
            header.len,
            self.bytes.len()
        ))
    }

    /// Moves past `header`: into sequences and items (their contents are elements), past
    /// values, fragments and delimiters.
    fn advance(&mut self, header: &Header) {
        let sequence = header.vr == Some(*b"SQ")
            || (header.vr.is_none() && header.len == UNDEFINED && header.tag.0 != 0xFFFE);
        self.pos += header.size;
        let encapsulated = header.tag == PIXEL_DATA
            || matches!(header.vr, Some(vr) if &vr == b"OB" || &vr == b"OW");
        if encapsulated && header.len == UNDEFINED {
            self.fragments = true;
        } else if header.tag == (0xFFFE, 0xE0DD) {
            self.fragments = false;
        } else if header.tag == ITEM && self.fragments && header.len != UNDEFINED {
            self.pos += header.len as usize;
        } else if header.tag.0 == 0xFFFE || sequence {
            // Items and sequences: their contents follow as elements.
        } else if header.len != UNDEFINED {
            self.pos += header.len as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal explicit VR little endian file: preamble, meta group, one data element.
    fn file(data_len: u32, data: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(b"DICM");
        let uid = b"1.2.840.10008.1.2.1\0";
        bytes.extend_from_slice(&[0x02, 0x00, 0x10, 0x00]);
        bytes.extend_from_slice(b"UI");
        bytes.extend_from_slice(&(uid.len() as u16).to_le_bytes());
        bytes.extend_from_slice(uid);
        // (0010,0010) PN, then (7FE0,0010) OW with the given length.
        bytes.extend_from_slice(&[0x10, 0x00, 0x10, 0x00]);
        bytes.extend_from_slice(b"PN");
        bytes.extend_from_slice(&4u16.to_le_bytes());
        bytes.extend_from_slice(b"Doe^");
        bytes.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00]);
        bytes.extend_from_slice(b"OW");
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&data_len.to_le_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn a_length_past_the_end_is_found_and_a_fitting_one_passes() {
        assert_eq!(walk_file(&file(4, &[1, 2, 3, 4])), Ok(true));
        let problem = length_past_end(&file(2_800_000_000, &[1, 2, 3, 4])).unwrap();
        assert!(
            problem.contains("(7FE0,0010) declares 2800000000 bytes"),
            "{problem}"
        );
        assert_eq!(length_past_end(b"not dicom"), None);
    }

    #[test]
    fn the_sample_files_pass() {
        let dir = crate::assets::assets_dir().join("samples/dicom");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            eprintln!(
                "skipped: no DICOM samples in {} (run the set-up)",
                dir.display()
            );
            return;
        };
        let mut seen = 0;
        for entry in entries.flatten() {
            let bytes = std::fs::read(entry.path()).unwrap();
            // Every header understood up to the end, and every length fits.
            assert_eq!(walk_file(&bytes), Ok(true), "{}", entry.path().display());
            seen += 1;
        }
        assert!(seen > 0);
    }
}
