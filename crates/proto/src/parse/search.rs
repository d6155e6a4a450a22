//! SEARCH (RFC 9051 §6.4.4 and RFC 3501 §6.4.4 keys, RFC 4731/9051 `RETURN (...)`, RFC 5182
//! `$` and SAVE, RFC 7162 MODSEQ).

use super::cursor::{Cursor, PResult, err};
use super::values::{date, flag_keyword, sequence_set};
use crate::types::{CommandBody, SearchKey, SearchReturn};

/// Deepest nesting of NOT / OR / parentheses: recursion must stay bounded on hostile input.
const MAX_DEPTH: usize = 100;
/// Most keys in one list (top level or parenthesized).
const MAX_KEYS: usize = 10_000;

/// `search = "SEARCH" [search-return-opts] SP search-program`;
/// `search-program = ["CHARSET" SP charset SP] search-key *(SP search-key)`.
/// Several top-level keys become [`SearchKey::And`]; `RETURN ()` means `RETURN (ALL)`
/// (RFC 4731 §3.1), so `ret` is then `Some([All])`.
pub(crate) fn search(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let mut ret = None;
    let before = c.clone();
    if c.keyword_upper() == "RETURN" && c.peek() == Some(b' ') {
        c.sp()?;
        let mut opts = c.paren_list(true, 10, search_return_opt)?;
        if opts.is_empty() {
            opts.push(SearchReturn::All);
        }
        ret = Some(opts);
        c.sp()?;
    } else {
        *c = before;
    }
    let mut charset = None;
    let before = c.clone();
    if c.keyword_upper() == "CHARSET" && c.peek() == Some(b' ') {
        c.sp()?;
        let cs = if c.peek() == Some(b'"') {
            c.quoted()?
        } else {
            c.atom()?.to_vec()
        };
        charset = Some(String::from_utf8(cs).map_err(|_| "Invalid charset".to_string())?);
        c.sp()?;
    } else {
        *c = before;
    }
    let mut keys = vec![search_key(c, 0)?];
    while c.eat(b' ') {
        if keys.len() >= MAX_KEYS {
            return err("Too many search keys");
        }
        keys.push(search_key(c, 0)?);
    }
    let criteria = if keys.len() == 1 {
        keys.pop().unwrap_or(SearchKey::All)
    } else {
        SearchKey::And(keys)
    };
    Ok(CommandBody::Search {
        uid,
        charset,
        criteria,
        ret,
    })
}

/// `search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT" / "SAVE"`.
fn search_return_opt(c: &mut Cursor<'_>) -> PResult<SearchReturn> {
    Ok(match &c.keyword_upper()[..] {
        "MIN" => SearchReturn::Min,
        "MAX" => SearchReturn::Max,
        "ALL" => SearchReturn::All,
        "COUNT" => SearchReturn::Count,
        "SAVE" => SearchReturn::Save,
        _ => return err("Unknown SEARCH return option"),
    })
}

/// `search-key`, at nesting `depth`.
fn search_key(c: &mut Cursor<'_>, depth: usize) -> PResult<SearchKey> {
    use SearchKey as K;
    if depth >= MAX_DEPTH {
        return err("Search keys nested too deeply");
    }
    match c.peek() {
        Some(b'(') => {
            let keys = c.paren_list(false, MAX_KEYS, |c| search_key(c, depth + 1))?;
            return Ok(K::And(keys));
        }
        Some(b'0'..=b'9' | b'*' | b'$') => return sequence_set(c).map(K::SequenceSet),
        _ => {}
    }
    let name = c.keyword_upper();
    let arg = |c: &mut Cursor<'_>| -> PResult<Vec<u8>> {
        c.sp()?;
        c.astring()
    };
    let sp_date = |c: &mut Cursor<'_>| {
        c.sp()?;
        date(c)
    };
    Ok(match &name[..] {
        "ALL" => K::All,
        "ANSWERED" => K::Answered,
        "DELETED" => K::Deleted,
        "DRAFT" => K::Draft,
        "FLAGGED" => K::Flagged,
        "NEW" => K::New,
        "OLD" => K::Old,
        "RECENT" => K::Recent,
        "SEEN" => K::Seen,
        "UNANSWERED" => K::Unanswered,
        "UNDELETED" => K::Undeleted,
        "UNDRAFT" => K::Undraft,
        "UNFLAGGED" => K::Unflagged,
        "UNSEEN" => K::Unseen,
        "BCC" => K::Bcc(arg(c)?),
        "BODY" => K::Body(arg(c)?),
        "CC" => K::Cc(arg(c)?),
        "FROM" => K::From(arg(c)?),
        "SUBJECT" => K::Subject(arg(c)?),
        "TEXT" => K::Text(arg(c)?),
        "TO" => K::To(arg(c)?),
        "HEADER" => {
            let field = arg(c)?;
            K::Header(field, arg(c)?)
        }
        "KEYWORD" | "UNKEYWORD" => {
            c.sp()?;
            let kw = flag_keyword(c)?;
            if name == "KEYWORD" {
                K::Keyword(kw)
            } else {
                K::Unkeyword(kw)
            }
        }
        "BEFORE" => K::Before(sp_date(c)?),
        "ON" => K::On(sp_date(c)?),
        "SINCE" => K::Since(sp_date(c)?),
        "SENTBEFORE" => K::SentBefore(sp_date(c)?),
        "SENTON" => K::SentOn(sp_date(c)?),
        "SENTSINCE" => K::SentSince(sp_date(c)?),
        "LARGER" | "SMALLER" => {
            c.sp()?;
            let n = c.number64()?;
            if name == "LARGER" {
                K::Larger(n)
            } else {
                K::Smaller(n)
            }
        }
        "UID" => {
            c.sp()?;
            K::Uid(sequence_set(c)?)
        }
        "NOT" => {
            c.sp()?;
            K::Not(Box::new(search_key(c, depth + 1)?))
        }
        "OR" => {
            c.sp()?;
            let a = search_key(c, depth + 1)?;
            c.sp()?;
            K::Or(Box::new(a), Box::new(search_key(c, depth + 1)?))
        }
        "MODSEQ" => modseq(c)?,
        "" if c.at_line_end() => return err("Missing search key"),
        _ => return err("Unknown search key"),
    })
}

/// RFC 7162 §3.1.5: `search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer`;
/// `search-modseq-ext = SP entry-name SP entry-type-req`; `entry-name = DQUOTE "/flags/"
/// attr-flag DQUOTE`; `entry-type-req = "priv" / "shared" / "all"`. The entry is checked and
/// ignored: the server keeps one modseq per message, not per flag.
fn modseq(c: &mut Cursor<'_>) -> PResult<SearchKey> {
    c.sp()?;
    if c.peek() == Some(b'"') {
        let entry = c.quoted()?;
        if !entry
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"/flags/"))
            || entry.len() == 7
        {
            return err("Invalid MODSEQ entry name");
        }
        c.sp()?;
        if !matches!(&c.keyword_upper()[..], "PRIV" | "SHARED" | "ALL") {
            return err("Invalid MODSEQ entry type");
        }
        c.sp()?;
    }
    Ok(SearchKey::ModSeq(c.number64()?))
}
