//! Body content items: `BODY[section]<partial>`, `BINARY[part]`, `BINARY.SIZE`, RFC822.*.
//! The bytes come from the stored message and the part tree computed when it arrived.

use mailkeep_mime::{BinaryError, PartTree, SectionSpec};
use mailkeep_proto::write::Code;
use mailkeep_proto::{Section, SectionText};

use crate::error::{CmdError, CmdResult};

/// `<origin.count>`: the bytes the client asked for. An origin past the end gives an empty
/// string (RFC 9051 §6.4.5).
#[cfg(test)]
pub(crate) fn partial(data: &[u8], range: Option<(u64, u64)>) -> &[u8] {
    &data[partial_range(data.len(), range)]
}

/// The byte range of `<origin.count>` within content of `len` bytes.
pub(crate) fn partial_range(len: usize, range: Option<(u64, u64)>) -> std::ops::Range<usize> {
    let Some((origin, count)) = range else {
        return 0..len;
    };
    let len = len as u64;
    let start = origin.min(len);
    let end = origin.saturating_add(count).min(len);
    start as usize..end as usize
}

/// The response label suffix for a partial fetch: `<origin>` only (RFC 9051 §7.5.2).
pub(crate) fn partial_label(range: Option<(u64, u64)>) -> String {
    match range {
        Some((origin, _)) => format!("<{origin}>"),
        None => String::new(),
    }
}

/// What a NUL byte of BODY[]/RFC822 content is sent as. A `{n}` literal may not carry NUL
/// (RFC 9051 §4.3) and only BINARY may answer with a `~{n}` literal8, so, as Dovecot does,
/// each NUL becomes 0x80: the content keeps its size, so RFC822.SIZE, BODYSTRUCTURE sizes and
/// partial offsets stay true (re-encoding the part in base64 would change all three). The
/// exact bytes are still there through BINARY[].
pub(crate) const NUL_REPLACEMENT: u8 = 0x80;

/// The announcement of a literal of `len` bytes: `{n}` CRLF, or `~{n}` CRLF for a literal8
/// (BINARY content holding NUL, RFC 3516 §4.2). Dovecot sends even empty content as `{0}`.
pub(crate) fn literal_prefix(out: &mut Vec<u8>, len: usize, literal8: bool) {
    if literal8 {
        out.push(b'~');
    }
    out.extend_from_slice(format!("{{{len}}}\r\n").as_bytes());
}

/// The content of `BODY[section]`. A part that does not exist gives an empty string, as
/// Dovecot answers (RFC 9051 leaves it open).
pub(crate) fn body_section(message: &[u8], tree: Option<&PartTree>, section: &Section) -> Vec<u8> {
    try_body_section(message, tree, section).unwrap_or_default()
}

/// [`body_section`], `None` when the part does not exist (CATENATE's URLs, RFC 4469 BADURL).
pub(crate) fn try_body_section(
    message: &[u8],
    tree: Option<&PartTree>,
    section: &Section,
) -> Option<Vec<u8>> {
    if section.part.is_empty() && section.text.is_none() {
        return Some(message.to_vec());
    }
    let tree = tree?;
    let spec = match &section.text {
        None => SectionSpec::Full,
        Some(SectionText::Header) => SectionSpec::Header,
        Some(SectionText::Text) => SectionSpec::Text,
        Some(SectionText::Mime) => SectionSpec::Mime,
        Some(SectionText::HeaderFields(names)) => SectionSpec::HeaderFields(names),
        Some(SectionText::HeaderFieldsNot(names)) => SectionSpec::HeaderFieldsNot(names),
    };
    mailkeep_mime::section(message, tree, &section.part, spec).ok()
}

/// The decoded content of `BINARY[part]` (RFC 3516). A missing part is empty, like BODY[].
pub(crate) fn binary(message: &[u8], tree: Option<&PartTree>, part: &[u32]) -> CmdResult<Vec<u8>> {
    let Some(tree) = tree else {
        return Ok(Vec::new());
    };
    match mailkeep_mime::binary(message, tree, part) {
        Ok(v) => Ok(v),
        Err(BinaryError::NoSuchPart) => Ok(Vec::new()),
        // RFC 3516 §4.3: a CTE the server cannot decode.
        Err(BinaryError::UnknownCte) => Err(CmdError::No(
            Some(Code::UnknownCte),
            "Unknown Content-Transfer-Encoding".into(),
        )),
        Err(BinaryError::Invalid) => Err(CmdError::No(
            Some(Code::Parse),
            "Invalid data in MIME part".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case = (Option<(u64, u64)>, &'static [u8], &'static str);

    #[test]
    fn partial_ranges() {
        let data = b"0123456789";
        let cases: &[Case] = &[
            (None, b"0123456789", ""),
            (Some((0, 3)), b"012", "<0>"),
            (Some((2, 5)), b"23456", "<2>"),
            (Some((8, 10)), b"89", "<8>"),
            (Some((10, 1)), b"", "<10>"),
            (Some((100, 3)), b"", "<100>"),
            (Some((3, 0)), b"", "<3>"),
            (Some((5, u64::MAX)), b"56789", "<5>"),
        ];
        for (range, want, label) in cases {
            assert_eq!(partial(data, *range), *want, "{range:?}");
            assert_eq!(partial_label(*range), *label);
        }
    }

    #[test]
    fn literals() {
        let mut out = Vec::new();
        literal_prefix(&mut out, 0, false);
        literal_prefix(&mut out, 3, true);
        assert_eq!(out, b"{0}\r\n~{3}\r\n".to_vec());
    }

    #[test]
    fn whole_message_needs_no_tree() {
        let msg = b"Subject: x\r\n\r\nbody\r\n";
        assert_eq!(body_section(msg, None, &Section::default()), msg.to_vec());
        let hdr = Section {
            part: vec![],
            text: Some(SectionText::Header),
        };
        assert_eq!(body_section(msg, None, &hdr), Vec::<u8>::new());
    }
}
