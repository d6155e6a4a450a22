//! MIME analysis for IMAP: ENVELOPE, BODYSTRUCTURE, sections and search text, computed once when
//! a message arrives (on top of `mail-parser`) and served later from stored byte offsets.
//!
//! # Layout
//! - [`analyze`]: the entry point; returns [`Analysis`] (IMAP text of ENVELOPE, BODYSTRUCTURE,
//!   BODY, the part tree, search text).
//! - [`PartTree`]: byte offsets of every part, serializable to bytes for the store, used to
//!   serve `BODY[section]` and `BINARY[section]` without re-parsing.
//! - [`normalize_crlf`]: bare LF to CRLF, applied before anything is stored;
//!   [`prepare_received`] adds base64 for the binary parts of a literal8 APPEND (RFC 3516).
//! - [`header`]: header field lookup and `HEADER.FIELDS` filtering over raw bytes.
//! - [`sortkeys`]: the SORT/THREAD keys kept per body (computed at delivery), on
//!   [`collate`] (base subject, i;unicode-casemap) and [`envelope_read`] (the stored ENVELOPE
//!   text read back).
//!
//! Inside: `parts` parses the MIME tree the way Dovecot's message-parser does (offsets, nesting
//! caps); `envelope`, `address`, `rfc822` and `quote` write ENVELOPE; `bodystructure` writes
//! BODY/BODYSTRUCTURE; `section` serves sections and BINARY from the stored [`PartTree`];
//! `decode` holds strict base64/QP decoders; `search_text` builds the SEARCH text.
//! Goldens: `tests/dovecot_goldens.rs` (FETCH) and `tests/search_goldens.rs` (SEARCH) against
//! Dovecot 2.3.19 answers in `tests/corpus/`; deliberate differences are listed there.
//!
//! No I/O here.
#![forbid(unsafe_code)]

mod address;
mod bodystructure;
pub mod collate;
mod decode;
mod delivery;
mod envelope;
pub mod envelope_read;
pub mod header;
mod parts;
mod quote;
mod received;
mod rfc822;
mod search_text;
mod section;
pub mod sortkeys;

/// Everything computed from a message when it arrives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// `(date subject from sender reply-to to cc bcc in-reply-to message-id)` as IMAP text.
    pub envelope: Vec<u8>,
    /// BODYSTRUCTURE as IMAP text (with extension data), matching Dovecot where it follows the RFC.
    pub bodystructure: Vec<u8>,
    /// BODY (no extension data) as IMAP text.
    pub body: Vec<u8>,
    pub parts: PartTree,
    /// Decoded header values and decoded text of text/* parts, for SEARCH TEXT.
    pub search_text: String,
    /// Offset in `search_text` where body text starts (SEARCH BODY searches after it).
    pub search_body_offset: usize,
    /// The Date: header as unix seconds, if it parses.
    pub sent_date: Option<i64>,
}

/// Byte ranges of one MIME part within the whole (CRLF-normalized) message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Part {
    /// Start of this part's header (for the whole message: 0).
    pub header_start: u64,
    /// Start of the body (just after the blank line ending the header).
    pub body_start: u64,
    /// End of the body (exclusive).
    pub body_end: u64,
    /// Content-Transfer-Encoding lowercased, for BINARY (`7bit` if none).
    pub encoding: String,
    /// True if this part is a message/rfc822 (its child 0 is the encapsulated message).
    pub is_message: bool,
    /// True if multipart/*.
    pub is_multipart: bool,
    pub children: Vec<Part>,
}

/// The part tree of a message: the root is the whole message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartTree {
    pub root: Part,
}

impl PartTree {
    /// Serialize for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        section::tree_to_bytes(self)
    }
    pub fn from_bytes(b: &[u8]) -> Option<PartTree> {
        section::tree_from_bytes(b)
    }
    /// `root.body_start` of the stored tree `b`, without decoding the whole tree.
    pub fn header_len_from_bytes(b: &[u8]) -> Option<u64> {
        section::stored_header_len(b)
    }
}

/// What a `BODY[section]` refers to, as a byte range of the message (or an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionError {
    /// The part does not exist: RFC 9051 says return an empty string (NIL for some servers).
    NoSuchPart,
}

/// Turn every bare LF into CRLF (and a lone CR at the very end is left alone). Returns the
/// input unchanged (borrowed) if it is already CRLF throughout.
pub fn normalize_crlf(data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let bare_lf = |i: usize| data[i] == b'\n' && (i == 0 || data[i - 1] != b'\r');
    let count = (0..data.len()).filter(|&i| bare_lf(i)).count();
    if count == 0 {
        return std::borrow::Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + count);
    for (i, &c) in data.iter().enumerate() {
        if bare_lf(i) {
            out.push(b'\r');
        }
        out.push(c);
    }
    std::borrow::Cow::Owned(out)
}

pub use delivery::{
    DeliveryInfo, MAX_REFERENCES, PREVIEW_CHARS, delivery_info, msg_ids, preview, thread_refs,
};
pub use received::prepare_received;

/// Analyze a CRLF-normalized message.
///
/// `search_text` holds the decoded header fields (`Name: value` lines), then from
/// `search_body_offset` the bodies of the text/* and message/* parts, transfer- and
/// charset-decoded; substring matching on it reproduces Dovecot's BODY/TEXT answers on the corpus.
pub fn analyze(message: &[u8]) -> Analysis {
    analyze_root(message, &parts::parse(message))
}

/// What the store keeps of a message at delivery beside its analysis: the PREVIEW and thread
/// IDs, and the encoded sort keys ([`sortkeys::sort_keys`]) from its ENVELOPE and sent date
/// (as [`analyze`] gives them). One parse of the message, one reading of its thread fields.
pub fn delivery_keys(
    message: &[u8],
    envelope: &[u8],
    sent_date: Option<i64>,
) -> (DeliveryInfo, Vec<u8>) {
    delivery_keys_of(message, &parts::parse(message), envelope, sent_date)
}

/// [`analyze`] and [`delivery_keys`] from one parse: a received message (LMTP, import).
pub fn analyze_delivery(message: &[u8]) -> (Analysis, DeliveryInfo, Vec<u8>) {
    let root = parts::parse(message);
    let analysis = analyze_root(message, &root);
    let (delivery, keys) = delivery_keys_of(message, &root, &analysis.envelope, analysis.sent_date);
    (analysis, delivery, keys)
}

fn delivery_keys_of(
    message: &[u8],
    root: &parts::Node,
    envelope: &[u8],
    sent_date: Option<i64>,
) -> (DeliveryInfo, Vec<u8>) {
    // The top-level fields are the header's (as `sortkeys::header_part` cuts it).
    let (message_id, references) = delivery::thread_refs_of(&root.fields);
    let keys =
        sortkeys::Keys::compute_with(envelope, sent_date, message_id.clone(), references.clone())
            .encode();
    (
        delivery::delivery_of(message, root, message_id, references),
        keys,
    )
}

fn analyze_root(message: &[u8], root: &parts::Node) -> Analysis {
    let mut bodystructure = Vec::new();
    bodystructure::write_root(&mut bodystructure, message, root, true);
    let mut body = Vec::new();
    bodystructure::write_root(&mut body, message, root, false);
    let (search_text, search_body_offset) = search_text::search_text(message, root);
    let sent_date = root
        .fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(b"Date"))
        .and_then(|f| parse_rfc5322_date(&String::from_utf8_lossy(&header::unfold(&f.value))));
    Analysis {
        envelope: envelope::envelope(&root.fields),
        bodystructure,
        body,
        parts: PartTree {
            root: section::to_part(root),
        },
        search_text,
        search_body_offset,
        sent_date,
    }
}

/// The SEARCH text of a CRLF-normalized message and its body offset, as [`analyze`] gives them.
pub fn search_text(message: &[u8]) -> (String, usize) {
    search_text::search_text(message, &parts::parse(message))
}

/// Content of `BODY[part.HEADER]`, `[part.TEXT]`, `[part.MIME]`, `[part]`, `[]`, and HEADER.FIELDS
/// (NOT) for a message, given its part tree. `part` is the 1-based path (empty = whole message).
/// `text` uses the same vocabulary as `mailkeep_proto::SectionText` but is independent of it.
pub fn section(
    message: &[u8],
    tree: &PartTree,
    part: &[u32],
    text: SectionSpec<'_>,
) -> Result<Vec<u8>, SectionError> {
    section::section(message, tree, part, text)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionSpec<'a> {
    /// `[part]` (or `[]`): the body of the part (for the whole message: everything).
    Full,
    Header,
    HeaderFields(&'a [Vec<u8>]),
    HeaderFieldsNot(&'a [Vec<u8>]),
    Text,
    Mime,
}

/// `BINARY[part]`: the part's body with its Content-Transfer-Encoding removed (RFC 3516).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinaryError {
    NoSuchPart,
    /// -> `NO [UNKNOWN-CTE]`
    UnknownCte,
    /// Bad base64/QP -> `NO [PARSE]` (Dovecot's answer).
    Invalid,
}

pub fn binary(message: &[u8], tree: &PartTree, part: &[u32]) -> Result<Vec<u8>, BinaryError> {
    section::binary(message, tree, part)
}

/// Header field values of `name` (case-insensitive) in the top-level header, unfolded and decoded
/// (RFC 2047) to UTF-8, for SEARCH HEADER/FROM/TO/CC/BCC/SUBJECT.
///
/// Address fields (From, To, Cc, Bcc, Sender, Reply-To) come back normalized the way Dovecot
/// searches them: `Name <mailbox@domain>, ...`, with its repair markers (`user@MISSING_DOMAIN`),
/// so a substring match gives Dovecot's answers (checked by `tests/search_goldens.rs`).
pub fn header_values(message: &[u8], name: &str) -> Vec<String> {
    search_text::header_values(message, name)
}

/// Parse an RFC 5322 date (Date: header) to unix seconds.
pub fn parse_rfc5322_date(value: &str) -> Option<i64> {
    search_text::parse_date(value)
}

#[cfg(test)]
mod tests;
