//! FETCH (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 MODSEQ/CHANGEDSINCE/VANISHED) and
//! STORE (RFC 9051 §6.4.6, RFC 7162 UNCHANGEDSINCE).

use super::cursor::{Cursor, PResult, err};
use super::values::{MAX_FLAGS, flag, flag_list, sequence_set};
use crate::types::{
    CommandBody, FetchItem, FetchItems, FetchModifiers, Section, SectionText, StoreAction,
};

/// Most items in one FETCH list.
const MAX_FETCH_ITEMS: usize = 200;
/// Most header names in `HEADER.FIELDS (...)`.
const MAX_HEADER_FIELDS: usize = 1_000;
/// Deepest part path (`1.2.3...`).
const MAX_PART_DEPTH: usize = 100;

/// `fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
/// "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]`.
pub(crate) fn fetch(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let set = sequence_set(c)?;
    c.sp()?;
    let items = if c.peek() == Some(b'(') {
        c.paren_list(false, MAX_FETCH_ITEMS, fetch_att)?
    } else {
        use FetchItem::*;
        let before = c.clone();
        match &c.keyword_upper()[..] {
            "ALL" => vec![Flags, InternalDate, Rfc822Size, Envelope],
            "FAST" => vec![Flags, InternalDate, Rfc822Size],
            "FULL" => vec![Flags, InternalDate, Rfc822Size, Envelope, Body],
            _ => {
                // Not a macro: rewind and read one fetch-att.
                *c = before;
                vec![fetch_att(c)?]
            }
        }
    };
    let mut modifiers = FetchModifiers::default();
    if c.eat(b' ') {
        // `fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"` (RFC 4466).
        c.paren_list(false, 10, |c| {
            match &c.keyword_upper()[..] {
                "CHANGEDSINCE" => {
                    c.sp()?;
                    modifiers.changed_since = Some(c.number64()?);
                }
                "VANISHED" => modifiers.vanished = true,
                "PARTIAL" if modifiers.partial.is_none() => {
                    // RFC 9394 §3.3: the same syntax as the PARTIAL search return option.
                    c.sp()?;
                    modifiers.partial = Some(super::search::partial_range(c)?);
                }
                _ => return err("Unknown FETCH modifier"),
            }
            Ok(())
        })?;
    }
    Ok(CommandBody::Fetch {
        uid,
        set,
        items: FetchItems(items),
        modifiers,
    })
}

/// `fetch-att`.
fn fetch_att(c: &mut Cursor<'_>) -> PResult<FetchItem> {
    use FetchItem::*;
    let name = c.keyword_upper();
    Ok(match &name[..] {
        "ENVELOPE" => Envelope,
        "FLAGS" => Flags,
        "INTERNALDATE" => InternalDate,
        "RFC822.SIZE" => Rfc822Size,
        "RFC822" => Rfc822,
        "RFC822.HEADER" => Rfc822Header,
        "RFC822.TEXT" => Rfc822Text,
        "UID" => Uid,
        "MODSEQ" => ModSeq,
        "BODYSTRUCTURE" => BodyStructure,
        "BODY" if c.peek() != Some(b'[') => Body,
        "BODY" | "BODY.PEEK" => {
            let section = section(c)?;
            BodySection {
                section,
                partial: partial(c)?,
                peek: name == "BODY.PEEK",
            }
        }
        "BINARY" | "BINARY.PEEK" => {
            let part = section_binary(c)?;
            Binary {
                part,
                partial: partial(c)?,
                peek: name == "BINARY.PEEK",
            }
        }
        "BINARY.SIZE" => BinarySize {
            part: section_binary(c)?,
        },
        "EMAILID" => EmailId,
        "THREADID" => ThreadId,
        "SAVEDATE" => SaveDate,
        "PREVIEW" => {
            // RFC 8970 §6: `"PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"]`,
            // `preview-mod = "LAZY"`.
            let mut lazy = false;
            if c.peek() == Some(b' ') && c.peek_at(1) == Some(b'(') {
                c.sp()?;
                c.paren_list(false, 10, |c| {
                    if c.keyword_upper() != "LAZY" {
                        return err("Unknown PREVIEW modifier");
                    }
                    lazy = true;
                    Ok(())
                })?;
            }
            Preview { lazy }
        }
        "" if c.at_line_end() => return err("Missing arguments"),
        _ => return err("Invalid fetch-att"),
    })
}

/// `section = "[" [section-spec] "]"`;
/// `section-spec = section-msgtext / (section-part ["." section-text])`.
fn section(c: &mut Cursor<'_>) -> PResult<Section> {
    c.expect(b'[')?;
    let mut s = Section::default();
    if c.eat(b']') {
        return Ok(s);
    }
    if c.peek().is_some_and(|b| b.is_ascii_digit()) {
        s.part = section_part(c)?;
        if c.eat(b']') {
            return Ok(s);
        }
        c.expect(b'.')?;
    }
    // `section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"`;
    // `section-text = section-msgtext / "MIME"`.
    s.text = Some(match &c.keyword_upper()[..] {
        "HEADER" => SectionText::Header,
        "TEXT" => SectionText::Text,
        "MIME" if !s.part.is_empty() => SectionText::Mime,
        "HEADER.FIELDS" => SectionText::HeaderFields(header_list(c)?),
        "HEADER.FIELDS.NOT" => SectionText::HeaderFieldsNot(header_list(c)?),
        _ => return err("Invalid section"),
    });
    c.expect(b']')?;
    Ok(s)
}

/// `section-part = nz-number *("." nz-number)`; stops before `.TEXT` and the like.
fn section_part(c: &mut Cursor<'_>) -> PResult<Vec<u32>> {
    let mut part = vec![c.nz_number()?];
    while c.peek() == Some(b'.') && c.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
        if part.len() >= MAX_PART_DEPTH {
            return err("Section part too deep");
        }
        c.bump();
        part.push(c.nz_number()?);
    }
    Ok(part)
}

/// `header-list = "(" header-fld-name *(SP header-fld-name) ")"`; `header-fld-name = astring`.
fn header_list(c: &mut Cursor<'_>) -> PResult<Vec<Vec<u8>>> {
    c.sp()?;
    c.paren_list(false, MAX_HEADER_FIELDS, Cursor::astring)
}

/// `section-binary = "[" [section-part] "]"`.
fn section_binary(c: &mut Cursor<'_>) -> PResult<Vec<u32>> {
    c.expect(b'[')?;
    let part = if c.peek() == Some(b']') {
        Vec::new()
    } else {
        section_part(c)?
    };
    c.expect(b']')?;
    Ok(part)
}

/// `partial = "<" number64 "." nz-number64 ">"`.
fn partial(c: &mut Cursor<'_>) -> PResult<Option<(u64, u64)>> {
    if !c.eat(b'<') {
        return Ok(None);
    }
    let offset = c.number64()?;
    c.expect(b'.')?;
    let len = c.number64()?;
    if len == 0 {
        return err("Partial length must not be zero");
    }
    c.expect(b'>')?;
    Ok(Some((offset, len)))
}

/// `store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags`;
/// `store-modifiers = SP "(" "UNCHANGEDSINCE" SP mod-sequence-valzer ")"` (RFC 7162);
/// `store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))`.
pub(crate) fn store(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let set = sequence_set(c)?;
    c.sp()?;
    let mut unchanged_since = None;
    if c.peek() == Some(b'(') {
        c.paren_list(false, 10, |c| {
            if c.keyword_upper() != "UNCHANGEDSINCE" {
                return err("Unknown STORE modifier");
            }
            c.sp()?;
            unchanged_since = Some(c.number64()?);
            Ok(())
        })?;
        c.sp()?;
    }
    let action = if c.eat(b'+') {
        StoreAction::Add
    } else if c.eat(b'-') {
        StoreAction::Remove
    } else {
        StoreAction::Replace
    };
    let silent = match &c.keyword_upper()[..] {
        "FLAGS" => false,
        "FLAGS.SILENT" => true,
        _ => return err("Invalid STORE data item"),
    };
    c.sp()?;
    let flags = if c.peek() == Some(b'(') {
        flag_list(c)?
    } else {
        let mut flags = vec![flag(c)?];
        while c.eat(b' ') {
            if flags.len() >= MAX_FLAGS {
                return err("Too many flags");
            }
            flags.push(flag(c)?);
        }
        flags
    };
    Ok(CommandBody::Store {
        uid,
        set,
        action,
        silent,
        flags,
        unchanged_since,
    })
}
