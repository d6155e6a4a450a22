//! What a FETCH needs before it runs: which items come from the view alone, which need the
//! stored parse or the message bytes, and whether it sets `\Seen`.

use mailkeep_proto::{FetchItem, FetchItems, Section, SectionText};

/// The items of one FETCH in the order they are written, and what they need loaded.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Items answered from the view (UID, FLAGS, INTERNALDATE, RFC822.SIZE, MODSEQ). Dovecot
    /// writes these first, in request order, with UID leading for UID FETCH; this plan keeps
    /// that order so answers compare byte for byte.
    pub index: Vec<FetchItem>,
    /// Everything else, in request order.
    pub content: Vec<FetchItem>,
    /// Some item needs the message bytes.
    pub needs_bytes: bool,
    /// Every item that needs bytes needs only the top-level header (`RFC822.HEADER`,
    /// `BODY[HEADER]`, `BODY[HEADER.FIELDS (...)]`): only that much of the message is read.
    pub header_only: bool,
    /// Some item needs the stored ParsedInfo (ENVELOPE, BODYSTRUCTURE, BODY, or a part tree).
    pub needs_parsed: bool,
    /// Some item is a non-PEEK body fetch (RFC 9051 §6.4.5: it sets `\Seen`).
    pub sets_seen: bool,
    pub has_flags: bool,
    pub has_modseq: bool,
    /// Some item is EMAILID, THREADID or SAVEDATE (RFC 8474, RFC 8514).
    pub needs_objects: bool,
    /// PREVIEW was asked for (RFC 8970); `preview_lazy`: only with LAZY.
    pub needs_preview: bool,
    pub preview_lazy: bool,
    /// Strings may be quoted UTF-8 (IMAP4rev2 or UTF8=ACCEPT), set by the caller.
    pub utf8: bool,
}

impl Plan {
    /// `uid`: UID FETCH (UID is always returned, RFC 9051 §6.4.9); `changed_since`: RFC 7162
    /// §3.1.4.1, CHANGEDSINCE implies MODSEQ.
    pub(crate) fn new(items: &FetchItems, uid: bool, changed_since: bool) -> Plan {
        let mut plan = Plan {
            preview_lazy: true,
            ..Plan::default()
        };
        let mut beyond_header = false;
        if uid {
            plan.index.push(FetchItem::Uid);
        }
        for item in &items.0 {
            match item {
                FetchItem::Uid if uid => {}
                FetchItem::Uid | FetchItem::InternalDate | FetchItem::Rfc822Size => {}
                FetchItem::Flags => plan.has_flags = true,
                FetchItem::ModSeq => plan.has_modseq = true,
                FetchItem::Envelope | FetchItem::BodyStructure | FetchItem::Body => {
                    plan.needs_parsed = true
                }
                FetchItem::Rfc822 => {
                    plan.needs_bytes = true;
                    beyond_header = true;
                    plan.sets_seen = true;
                }
                FetchItem::Rfc822Header => {
                    plan.needs_bytes = true;
                    plan.needs_parsed = true;
                }
                FetchItem::Rfc822Text => {
                    plan.needs_bytes = true;
                    beyond_header = true;
                    plan.needs_parsed = true;
                    plan.sets_seen = true;
                }
                FetchItem::BodySection { section, peek, .. } => {
                    plan.needs_bytes = true;
                    beyond_header |= !top_level_header(section);
                    plan.needs_parsed |= !whole_message(section);
                    plan.sets_seen |= !peek;
                }
                FetchItem::Binary { peek, .. } => {
                    plan.needs_bytes = true;
                    beyond_header = true;
                    plan.needs_parsed = true;
                    plan.sets_seen |= !peek;
                }
                FetchItem::BinarySize { .. } => {
                    plan.needs_bytes = true;
                    beyond_header = true;
                    plan.needs_parsed = true;
                }
                FetchItem::EmailId | FetchItem::ThreadId | FetchItem::SaveDate => {
                    plan.needs_objects = true
                }
                FetchItem::Preview { lazy } => {
                    plan.needs_preview = true;
                    plan.preview_lazy &= *lazy;
                }
            }
            let is_index = matches!(
                item,
                FetchItem::Uid
                    | FetchItem::Flags
                    | FetchItem::InternalDate
                    | FetchItem::Rfc822Size
                    | FetchItem::ModSeq
            );
            let target = if is_index {
                &mut plan.index
            } else {
                &mut plan.content
            };
            if !target.contains(item) {
                target.push(item.clone());
            }
        }
        if !plan.needs_preview {
            plan.preview_lazy = false;
        }
        // The header's end comes from the stored part tree (needs_parsed is set for these).
        plan.header_only = plan.needs_bytes && !beyond_header && plan.needs_parsed;
        if changed_since && !plan.has_modseq {
            plan.has_modseq = true;
            plan.index.push(FetchItem::ModSeq);
        }
        plan
    }

    /// Nothing beyond the view is needed: `FETCH 1:* (FLAGS)` never touches the store.
    pub(crate) fn view_only(&self) -> bool {
        !self.needs_bytes && !self.needs_parsed && !self.needs_objects && !self.needs_preview
    }
}

/// `BODY[HEADER]`, `BODY[HEADER.FIELDS (...)]`, `BODY[HEADER.FIELDS.NOT (...)]` of the message
/// itself: within the top-level header.
fn top_level_header(section: &Section) -> bool {
    section.part.is_empty()
        && matches!(
            section.text,
            Some(SectionText::Header)
                | Some(SectionText::HeaderFields(_))
                | Some(SectionText::HeaderFieldsNot(_))
        )
}

/// `BODY[]`: served from the bytes alone, without the part tree.
fn whole_message(section: &Section) -> bool {
    section.part.is_empty() && section.text.is_none()
}

/// The section as written in the response label: `1.2.HEADER.FIELDS (SUBJECT X-A)`. Field
/// names are upper-cased, as Dovecot echoes them (RFC 9051 §7.5.2 leaves the spelling open).
pub(crate) fn section_label(section: &Section) -> String {
    let mut s = part_label(&section.part);
    let Some(text) = &section.text else { return s };
    if !s.is_empty() {
        s.push('.');
    }
    match text {
        SectionText::Header => s.push_str("HEADER"),
        SectionText::Text => s.push_str("TEXT"),
        SectionText::Mime => s.push_str("MIME"),
        SectionText::HeaderFields(names) => {
            s.push_str("HEADER.FIELDS ");
            field_list(&mut s, names);
        }
        SectionText::HeaderFieldsNot(names) => {
            s.push_str("HEADER.FIELDS.NOT ");
            field_list(&mut s, names);
        }
    }
    s
}

/// `1.2.3` (empty for the whole message).
pub(crate) fn part_label(part: &[u32]) -> String {
    part.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

fn field_list(s: &mut String, names: &[Vec<u8>]) {
    s.push('(');
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let upper = String::from_utf8_lossy(n).to_ascii_uppercase();
        // header-fld-name is an astring: an atom unless it needs quoting.
        let atom = !upper.is_empty()
            && upper
                .bytes()
                .all(|b| b > b' ' && b < 0x7f && !b"(){%*\"\\]".contains(&b));
        if atom {
            s.push_str(&upper);
        } else {
            s.push('"');
            for c in upper.chars() {
                if c == '"' || c == '\\' {
                    s.push('\\');
                }
                s.push(c);
            }
            s.push('"');
        }
    }
    s.push(')');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(part: &[u32], text: Option<SectionText>) -> Section {
        Section {
            part: part.to_vec(),
            text,
        }
    }

    #[test]
    fn labels() {
        let cases = [
            (sec(&[], None), ""),
            (sec(&[1, 2], None), "1.2"),
            (sec(&[], Some(SectionText::Header)), "HEADER"),
            (sec(&[3], Some(SectionText::Mime)), "3.MIME"),
            (sec(&[1], Some(SectionText::Text)), "1.TEXT"),
            (
                sec(
                    &[],
                    Some(SectionText::HeaderFields(vec![
                        b"subject".to_vec(),
                        b"x-a".to_vec(),
                    ])),
                ),
                "HEADER.FIELDS (SUBJECT X-A)",
            ),
            (
                sec(
                    &[2],
                    Some(SectionText::HeaderFieldsNot(vec![b"a b".to_vec()])),
                ),
                "2.HEADER.FIELDS.NOT (\"A B\")",
            ),
        ];
        for (s, want) in cases {
            assert_eq!(section_label(&s), want);
        }
    }

    #[test]
    fn plan_orders_view_items_first() {
        let items = FetchItems(vec![
            FetchItem::BodySection {
                section: sec(&[], Some(SectionText::Header)),
                partial: None,
                peek: true,
            },
            FetchItem::Flags,
            FetchItem::Uid,
            FetchItem::Rfc822Size,
        ]);
        let p = Plan::new(&items, true, false);
        assert_eq!(
            p.index,
            vec![FetchItem::Uid, FetchItem::Flags, FetchItem::Rfc822Size]
        );
        assert_eq!(p.content.len(), 1);
        assert!(p.needs_bytes && p.needs_parsed && !p.sets_seen);

        let p = Plan::new(&FetchItems(vec![FetchItem::Flags]), false, true);
        assert_eq!(p.index, vec![FetchItem::Flags, FetchItem::ModSeq]);
        assert!(p.view_only());

        let whole = FetchItem::BodySection {
            section: sec(&[], None),
            partial: Some((0, 10)),
            peek: false,
        };
        let p = Plan::new(&FetchItems(vec![whole]), false, false);
        assert!(p.needs_bytes && !p.needs_parsed && p.sets_seen);
        assert!(!p.header_only);
    }

    #[test]
    fn header_only_when_every_byte_item_is_in_the_top_level_header() {
        let body = |part: &[u32], text: Option<SectionText>| FetchItem::BodySection {
            section: sec(part, text),
            partial: None,
            peek: true,
        };
        let fields = || Some(SectionText::HeaderFields(vec![b"from".to_vec()]));
        let header_only =
            |items: Vec<FetchItem>| Plan::new(&FetchItems(items), true, false).header_only;
        assert!(header_only(vec![body(&[], fields())]));
        assert!(header_only(vec![
            FetchItem::Rfc822Header,
            body(&[], Some(SectionText::Header)),
            body(
                &[],
                Some(SectionText::HeaderFieldsNot(vec![b"to".to_vec()]))
            ),
            FetchItem::Envelope,
            FetchItem::Flags,
        ]));
        // Anything past the header, or a header of a part, needs the whole message.
        assert!(!header_only(vec![
            body(&[], fields()),
            body(&[], Some(SectionText::Text))
        ]));
        assert!(!header_only(vec![body(&[1], Some(SectionText::Header))]));
        assert!(!header_only(vec![body(&[], None)]));
        assert!(!header_only(vec![
            FetchItem::Rfc822Header,
            FetchItem::Rfc822
        ]));
        assert!(!header_only(vec![FetchItem::Envelope]));
    }
}
