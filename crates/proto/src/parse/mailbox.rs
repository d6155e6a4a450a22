//! Mailbox commands with extension syntax: SELECT/EXAMINE (RFC 4466 `select-params`, RFC 7162
//! CONDSTORE/QRESYNC), CREATE (RFC 6154 USE), LIST (RFC 5258, RFC 5819, RFC 6154), STATUS
//! (RFC 7162, RFC 7889, RFC 9051), APPEND (RFC 3502 MULTIAPPEND, RFC 3516 literal8, RFC 6855
//! UTF8), ID (RFC 2971) and ENABLE (RFC 5161).

use super::cursor::{Cursor, Literal, PResult, err};
use super::sp_mailbox;
use super::values::{date_time, flag_list, sequence_set};
use crate::types::{
    AppendMessage, CatenatePart, CommandBody, ListCommand, MessageData, QresyncParams,
    SelectParams, SequenceSet, StatusItem,
};

/// Most parts in one CATENATE (RFC 4469).
const MAX_CATENATE_PARTS: usize = 256;

/// Most messages in one MULTIAPPEND.
const MAX_APPEND_MESSAGES: usize = 1_000;
/// Most ID field-value pairs: RFC 2971 §3.3 lets clients send 30; leave room.
const MAX_ID_PAIRS: usize = 100;
/// Most options, patterns or status items in one list.
const MAX_OPTIONS: usize = 100;

/// `select = "SELECT" SP mailbox [select-params]`;
/// `select-params = SP "(" select-param *(SP select-param) ")"`.
pub(crate) fn select(c: &mut Cursor<'_>) -> PResult<(Vec<u8>, SelectParams)> {
    let mailbox = sp_mailbox(c)?;
    let mut params = SelectParams::default();
    if c.eat(b' ') {
        c.paren_list(false, MAX_OPTIONS, |c| select_param(c, &mut params))?;
    }
    Ok((mailbox, params))
}

/// `select-param = "CONDSTORE" / "QRESYNC" SP "(" uidvalidity SP mod-sequence-value
/// [SP known-uids] [SP seq-match-data] ")"`; `seq-match-data = "(" known-sequence-set SP
/// known-uid-set ")"` (RFC 7162 §3.2.5).
fn select_param(c: &mut Cursor<'_>, params: &mut SelectParams) -> PResult<()> {
    match &c.keyword_upper()[..] {
        "CONDSTORE" => params.condstore = true,
        "QRESYNC" => {
            c.sp()?;
            c.expect(b'(')?;
            let uidvalidity = c.nz_number()?;
            c.sp()?;
            let modseq = c.number64()?;
            let mut q = QresyncParams {
                uidvalidity,
                modseq,
                known_uids: None,
                seq_match: None,
            };
            if c.eat(b' ') {
                if c.peek() != Some(b'(') {
                    q.known_uids = Some(sequence_set(c)?);
                    if c.eat(b' ') {
                        q.seq_match = Some(seq_match_data(c)?);
                    }
                } else {
                    q.seq_match = Some(seq_match_data(c)?);
                }
            }
            c.expect(b')')?;
            params.qresync = Some(q);
        }
        _ => return err("Unknown SELECT parameter"),
    }
    Ok(())
}

/// `seq-match-data = "(" known-sequence-set SP known-uid-set ")"`.
fn seq_match_data(c: &mut Cursor<'_>) -> PResult<(SequenceSet, SequenceSet)> {
    c.expect(b'(')?;
    let seqs = sequence_set(c)?;
    c.sp()?;
    let uids = sequence_set(c)?;
    c.expect(b')')?;
    Ok((seqs, uids))
}

/// `create = "CREATE" SP mailbox [create-params]` with RFC 6154
/// `create-param =/ "USE" SP "(" [use-attr *(SP use-attr)] ")"`.
/// Use attributes are returned with their backslash (`\Sent`).
pub(crate) fn create(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mailbox = sp_mailbox(c)?;
    let mut special_use = Vec::new();
    if c.eat(b' ') {
        c.paren_list(false, MAX_OPTIONS, |c| {
            if c.keyword_upper() != "USE" {
                return err("Unknown CREATE parameter");
            }
            c.sp()?;
            let attrs = c.paren_list(true, MAX_OPTIONS, |c| {
                c.expect(b'\\')?;
                Ok(format!("\\{}", String::from_utf8_lossy(c.atom()?)))
            })?;
            special_use.extend(attrs);
            Ok(())
        })?;
    }
    Ok(CommandBody::Create {
        mailbox,
        special_use,
    })
}

/// `list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]`
/// (RFC 5258 §6, RFC 9051 §9).
pub(crate) fn list(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mut l = ListCommand::default();
    c.sp()?;
    if c.peek() == Some(b'(') {
        l.extended = true;
        let mut has_base = false;
        let opts = c.paren_list(true, MAX_OPTIONS, |c| Ok(c.keyword_upper()))?;
        for opt in opts {
            match &opt[..] {
                "SUBSCRIBED" => (l.select_subscribed, has_base) = (true, true),
                "REMOTE" => l.select_remote = true,
                "SPECIAL-USE" => (l.select_special_use, has_base) = (true, true),
                "RECURSIVEMATCH" => l.select_recursive_match = true,
                // RFC 5258 §3: unrecognized selection options MUST be rejected.
                _ => return err("Unknown LIST selection option"),
            }
        }
        // RFC 5258 §3: RECURSIVEMATCH needs another option it modifies.
        if l.select_recursive_match && !has_base {
            return err("RECURSIVEMATCH requires another selection option");
        }
        c.sp()?;
    }
    l.reference = c.astring()?;
    c.sp()?;
    // `mbox-or-pat = list-mailbox / patterns`; `patterns = "(" list-mailbox *(SP list-mailbox) ")"`.
    if c.peek() == Some(b'(') {
        l.extended = true;
        l.patterns = c.paren_list(false, MAX_OPTIONS, Cursor::list_mailbox)?;
    } else {
        l.patterns = vec![c.list_mailbox()?];
    }
    if c.eat(b' ') {
        l.extended = true;
        if !c.eat_ci(b"RETURN") {
            return err("Expected RETURN");
        }
        c.sp()?;
        c.paren_list(true, MAX_OPTIONS, |c| return_option(c, &mut l))?;
    }
    Ok(CommandBody::List(l))
}

/// `return-option = "SUBSCRIBED" / "CHILDREN" / "SPECIAL-USE" / status-option`.
fn return_option(c: &mut Cursor<'_>, l: &mut ListCommand) -> PResult<()> {
    match &c.keyword_upper()[..] {
        "SUBSCRIBED" => l.return_subscribed = true,
        "CHILDREN" => l.return_children = true,
        "SPECIAL-USE" => l.return_special_use = true,
        "STATUS" => {
            c.sp()?;
            l.return_status = Some(status_atts(c)?);
        }
        _ => return err("Unknown LIST return option"),
    }
    Ok(())
}

/// `"(" status-att *(SP status-att) ")"`.
fn status_atts(c: &mut Cursor<'_>) -> PResult<Vec<StatusItem>> {
    c.paren_list(false, MAX_OPTIONS, |c| {
        Ok(match &c.keyword_upper()[..] {
            "MESSAGES" => StatusItem::Messages,
            "UIDNEXT" => StatusItem::UidNext,
            "UIDVALIDITY" => StatusItem::UidValidity,
            "UNSEEN" => StatusItem::Unseen,
            "DELETED" => StatusItem::Deleted,
            "DELETED-STORAGE" => StatusItem::DeletedStorage,
            "SIZE" => StatusItem::Size,
            "RECENT" => StatusItem::Recent,
            "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            "APPENDLIMIT" => StatusItem::AppendLimit,
            "MAILBOXID" => StatusItem::MailboxId,
            _ => return err("Unknown STATUS item"),
        })
    })
}

/// `status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"`.
pub(crate) fn status(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mailbox = sp_mailbox(c)?;
    c.sp()?;
    Ok(CommandBody::Status {
        mailbox,
        items: status_atts(c)?,
    })
}

/// `append = "APPEND" SP mailbox 1*append-message` (RFC 3502);
/// `append-message = append-opts SP append-data`; `append-opts = [SP flag-list] [SP date-time]`;
/// `append-data = literal / literal8 / "UTF8" SP "(" literal8 ")"` (RFC 3516, RFC 6855).
pub(crate) fn append(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mailbox = sp_mailbox(c)?;
    let mut messages = Vec::new();
    while !c.at_line_end() || messages.is_empty() {
        if messages.len() >= MAX_APPEND_MESSAGES {
            return err("Too many messages in APPEND");
        }
        messages.push(append_message(c)?);
    }
    Ok(CommandBody::Append { mailbox, messages })
}

/// `SP append-message` (one message of APPEND, or REPLACE's, RFC 8508).
pub(crate) fn append_message(c: &mut Cursor<'_>) -> PResult<AppendMessage> {
    c.sp()?;
    let flags = if c.peek() == Some(b'(') {
        let f = flag_list(c)?;
        c.sp()?;
        f
    } else {
        Vec::new()
    };
    let internal_date = if c.peek() == Some(b'"') {
        let d = date_time(c)?;
        c.sp()?;
        Some(d)
    } else {
        None
    };
    let before = c.clone();
    if c.keyword_upper() == "CATENATE" && c.peek() == Some(b' ') {
        // RFC 4469 §5: `"CATENATE" SP "(" cat-part *(SP cat-part) ")"`.
        c.sp()?;
        let mut binary = false;
        let parts = c.paren_list(false, MAX_CATENATE_PARTS, |c| {
            Ok(match &c.keyword_upper()[..] {
                "TEXT" => {
                    // `text-literal = "TEXT" SP literal` (a literal8 with BINARY, RFC 3516).
                    c.sp()?;
                    if !c.at_literal(true) {
                        return err("Expected a literal after TEXT");
                    }
                    let (payload, is8) = c.literal(true, true)?;
                    binary |= is8;
                    CatenatePart::Text(match payload {
                        Literal::Bytes(b) => MessageData::Inline(b.to_vec()),
                        Literal::Spooled { path, len } => MessageData::Spooled { path, len },
                    })
                }
                "URL" => {
                    c.sp()?;
                    CatenatePart::Url(c.astring()?)
                }
                _ => return err("Expected TEXT or URL in CATENATE"),
            })
        })?;
        return Ok(AppendMessage {
            flags,
            internal_date,
            data: MessageData::Catenate(parts),
            binary,
        });
    }
    *c = before;
    let utf8 = c.eat_ci(b"UTF8 (");
    if !c.at_literal(true) {
        return err("Expected a literal with the message");
    }
    let (payload, binary) = c.literal(true, true)?;
    if utf8 {
        if !binary {
            return err("UTF8 data must be a literal8");
        }
        c.expect(b')')?;
    }
    let data = match payload {
        Literal::Bytes(b) => MessageData::Inline(b.to_vec()),
        Literal::Spooled { path, len } => MessageData::Spooled { path, len },
    };
    Ok(AppendMessage {
        flags,
        internal_date,
        data,
        binary,
    })
}

/// `id = "ID" SP id-params-list`; `id-params-list = "(" *(string SP nstring) ")" / nil`
/// (RFC 2971 §4; pairs are separated by SP).
pub(crate) fn id(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    if c.eat_ci(b"NIL") {
        return Ok(CommandBody::Id(None));
    }
    let pairs = c.paren_list(true, MAX_ID_PAIRS, |c| {
        let key = c.string()?;
        c.sp()?;
        Ok((key, c.nstring()?))
    })?;
    Ok(CommandBody::Id(Some(pairs)))
}

/// `enable = "ENABLE" 1*(SP capability)`; capability names are uppercased.
pub(crate) fn enable(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mut caps = Vec::new();
    loop {
        c.sp()?;
        if caps.len() >= MAX_OPTIONS {
            return err("Too many capabilities");
        }
        caps.push(String::from_utf8_lossy(c.atom()?).to_ascii_uppercase());
        if c.at_line_end() {
            return Ok(CommandBody::Enable(caps));
        }
    }
}
