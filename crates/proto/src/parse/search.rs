//! SEARCH (RFC 9051 §6.4.4 and RFC 3501 §6.4.4 keys, RFC 4731/9051 `RETURN (...)`, RFC 5182
//! `$` and SAVE, RFC 7162 MODSEQ), and SORT / THREAD (RFC 5256, RFC 5267 ESORT, RFC 5957),
//! which take the same search program.

use super::cursor::{Cursor, PResult, err};
use super::values::{date, flag_keyword, sequence_set};
use crate::types::{
    CommandBody, PartialRange, SearchKey, SearchReturn, SearchSource, SortCriterion, SortKey,
    ThreadAlgorithm,
};

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
    let (ret, charset, criteria) = search_rest(c)?;
    Ok(CommandBody::Search {
        uid,
        charset,
        criteria,
        ret,
    })
}

/// The part SEARCH and ESEARCH share, after the SP: `[search-return-opts SP] search-program`.
#[allow(clippy::type_complexity)]
fn search_rest(
    c: &mut Cursor<'_>,
) -> PResult<(Option<Vec<SearchReturn>>, Option<String>, SearchKey)> {
    let ret = return_opts(c)?;
    let mut charset = None;
    let before = c.clone();
    if c.keyword_upper() == "CHARSET" && c.peek() == Some(b' ') {
        c.sp()?;
        charset = Some(charset_name(c)?);
        c.sp()?;
    } else {
        *c = before;
    }
    let criteria = search_program(c)?;
    Ok((ret, charset, criteria))
}

/// Most mailboxes named in one `ESEARCH IN (...)`, and most source options.
const MAX_SOURCE_MAILBOXES: usize = 1000;

/// RFC 7377 §4: `esearch = "ESEARCH" [SP esearch-source-opts] [SP search-return-opts] SP
/// search-program`; `esearch-source-opts = "IN" SP "(" source-mbox [SP "(" scope-options ")"]
/// ")"`; `source-mbox = filter-mailboxes *(SP filter-mailboxes)`. No scope option is defined,
/// so any is refused.
pub(crate) fn esearch(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let before = c.clone();
    let mut sources = None;
    if c.keyword_upper() == "IN" && c.peek() == Some(b' ') {
        c.sp()?;
        c.expect(b'(')?;
        let mut list = Vec::new();
        loop {
            if list.len() >= MAX_SOURCE_MAILBOXES {
                return err("Too many source options");
            }
            list.push(filter_mailboxes(c)?);
            if c.eat(b')') {
                break;
            }
            c.sp()?;
            if c.peek() == Some(b'(') {
                return err("Unknown scope option");
            }
        }
        sources = Some(list);
        c.sp()?;
    } else {
        *c = before;
    }
    let (ret, charset, criteria) = search_rest(c)?;
    Ok(CommandBody::Esearch {
        sources,
        charset,
        criteria,
        ret,
    })
}

/// RFC 5465 §8 `filter-mailboxes`, as RFC 7377 §4 changes it.
fn filter_mailboxes(c: &mut Cursor<'_>) -> PResult<SearchSource> {
    let name = c.keyword_upper();
    let names = |c: &mut Cursor<'_>| -> PResult<Vec<Vec<u8>>> {
        // `one-or-more-mailbox = mailbox / many-mailboxes`.
        c.sp()?;
        if c.peek() == Some(b'(') {
            c.paren_list(false, MAX_SOURCE_MAILBOXES, |c| c.astring())
        } else {
            Ok(vec![c.astring()?])
        }
    };
    Ok(match &name[..] {
        "SELECTED" => SearchSource::Selected,
        "INBOXES" => SearchSource::Inboxes,
        "PERSONAL" => SearchSource::Personal,
        "SUBSCRIBED" => SearchSource::Subscribed,
        "SUBTREE" => SearchSource::Subtree(names(c)?),
        "SUBTREE-ONE" => SearchSource::SubtreeOne(names(c)?),
        "MAILBOXES" => SearchSource::Mailboxes(names(c)?),
        "SELECTED-DELAYED" => return err("selected-delayed is not valid in ESEARCH"),
        _ => return err("Unknown source option"),
    })
}

/// RFC 5267 §5: `"CANCELUPDATE" 1*(SP quoted)`.
pub(crate) fn cancel_update(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mut tags = Vec::new();
    loop {
        if tags.len() >= 100 {
            return err("Too many tags");
        }
        c.sp()?;
        tags.push(String::from_utf8_lossy(&c.quoted()?).into_owned());
        if c.at_line_end() {
            return Ok(CommandBody::CancelUpdate(tags));
        }
    }
}

/// `[search-return-opts SP]` after the command name's SP: `RETURN (...)` with its SP, or
/// nothing. `RETURN ()` means `RETURN (ALL)` (RFC 4731 §3.1, RFC 5267 §3.3).
fn return_opts(c: &mut Cursor<'_>) -> PResult<Option<Vec<SearchReturn>>> {
    let before = c.clone();
    if c.keyword_upper() == "RETURN" && c.peek() == Some(b' ') {
        c.sp()?;
        let mut opts = c.paren_list(true, 10, search_return_opt)?;
        if opts.is_empty() {
            opts.push(SearchReturn::All);
        }
        // RFC 9394 §3.1: at most one PARTIAL or ALL.
        let ranges = opts
            .iter()
            .filter(|o| matches!(o, SearchReturn::All | SearchReturn::Partial(_)))
            .count();
        if ranges > 1 {
            return err("At most one of PARTIAL and ALL");
        }
        c.sp()?;
        Ok(Some(opts))
    } else {
        *c = before;
        Ok(None)
    }
}

/// `charset = atom / quoted`.
fn charset_name(c: &mut Cursor<'_>) -> PResult<String> {
    let cs = if c.peek() == Some(b'"') {
        c.quoted()?
    } else {
        c.atom()?.to_vec()
    };
    String::from_utf8(cs).map_err(|_| "Invalid charset".to_string())
}

/// `search-key *(SP search-key)`; several top-level keys become [`SearchKey::And`].
fn search_program(c: &mut Cursor<'_>) -> PResult<SearchKey> {
    let mut keys = vec![search_key(c, 0)?];
    while c.eat(b' ') {
        if keys.len() >= MAX_KEYS {
            return err("Too many search keys");
        }
        keys.push(search_key(c, 0)?);
    }
    Ok(if keys.len() == 1 {
        keys.pop().unwrap_or(SearchKey::All)
    } else {
        SearchKey::And(keys)
    })
}

/// RFC 5256 §5 / RFC 5267 §6: `sort = ["UID" SP] "SORT" [search-return-opts] SP sort-criteria
/// SP search-criteria`; `search-criteria = charset 1*(SP search-key)`.
pub(crate) fn sort(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let ret = return_opts(c)?;
    let criteria = c.paren_list(false, 20, sort_criterion)?;
    c.sp()?;
    let charset = charset_name(c)?;
    c.sp()?;
    let search = search_program(c)?;
    Ok(CommandBody::Sort {
        uid,
        criteria,
        charset,
        search,
        ret,
    })
}

/// `sort-criterion = ["REVERSE" SP] sort-key` (RFC 5256 §5, RFC 5957 §5).
fn sort_criterion(c: &mut Cursor<'_>) -> PResult<SortCriterion> {
    let mut name = c.keyword_upper();
    let reverse = name == "REVERSE";
    if reverse {
        c.sp()?;
        name = c.keyword_upper();
    }
    let key = match &name[..] {
        "ARRIVAL" => SortKey::Arrival,
        "CC" => SortKey::Cc,
        "DATE" => SortKey::Date,
        "FROM" => SortKey::From,
        "SIZE" => SortKey::Size,
        "SUBJECT" => SortKey::Subject,
        "TO" => SortKey::To,
        "DISPLAYFROM" => SortKey::DisplayFrom,
        "DISPLAYTO" => SortKey::DisplayTo,
        _ => return err("Unknown sort criterion"),
    };
    Ok(SortCriterion { reverse, key })
}

/// `thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria` (RFC 5256 §5).
pub(crate) fn thread(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let algorithm = match &c.keyword_upper()[..] {
        "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
        "REFERENCES" => ThreadAlgorithm::References,
        "REFS" => ThreadAlgorithm::Refs,
        _ => return err("Unknown thread algorithm"),
    };
    c.sp()?;
    let charset = charset_name(c)?;
    c.sp()?;
    let search = search_program(c)?;
    Ok(CommandBody::Thread {
        uid,
        algorithm,
        charset,
        search,
    })
}

/// `search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT" / "SAVE" / modifier-partial /
/// modifier-context / modifier-update` (RFC 9394 §4, RFC 5267 §5).
fn search_return_opt(c: &mut Cursor<'_>) -> PResult<SearchReturn> {
    Ok(match &c.keyword_upper()[..] {
        "MIN" => SearchReturn::Min,
        "MAX" => SearchReturn::Max,
        "ALL" => SearchReturn::All,
        "COUNT" => SearchReturn::Count,
        "SAVE" => SearchReturn::Save,
        "UPDATE" => SearchReturn::Update,
        "CONTEXT" => SearchReturn::Context,
        "PARTIAL" => {
            c.sp()?;
            SearchReturn::Partial(partial_range(c)?)
        }
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
        "OLDER" | "YOUNGER" => {
            // RFC 5032: nz-number, an interval in seconds.
            c.sp()?;
            let n = c.nz_number()?;
            if name == "OLDER" {
                K::Older(n)
            } else {
                K::Younger(n)
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
        "EMAILID" => K::EmailId(objectid(c)?),
        "THREADID" => K::ThreadId(objectid(c)?),
        "SAVEDBEFORE" => K::SavedBefore(sp_date(c)?),
        "SAVEDON" => K::SavedOn(sp_date(c)?),
        "SAVEDSINCE" => K::SavedSince(sp_date(c)?),
        "SAVEDATESUPPORTED" => K::SaveDateSupported,
        "" if c.at_line_end() => return err("Missing search key"),
        _ => return err("Unknown search key"),
    })
}

/// `SP objectid`; `objectid = 1*255(ALPHA / DIGIT / "_" / "-")` (RFC 8474 §7).
fn objectid(c: &mut Cursor<'_>) -> PResult<String> {
    c.sp()?;
    let id = c.atom()?;
    if id.is_empty()
        || id.len() > 255
        || !id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
    {
        return err("Invalid objectid");
    }
    Ok(String::from_utf8_lossy(id).into_owned())
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

/// RFC 9394 §4: `partial-range = partial-range-first / partial-range-last`;
/// `partial-range-first = nz-number ":" nz-number`;
/// `partial-range-last = MINUS nz-number ":" MINUS nz-number`.
pub(crate) fn partial_range(c: &mut Cursor<'_>) -> PResult<PartialRange> {
    let from_end = c.eat(b'-');
    let first = c.nz_number()?;
    c.expect(b':')?;
    if from_end {
        c.expect(b'-')?;
    }
    let second = c.nz_number()?;
    Ok(PartialRange {
        from_end,
        first,
        second,
    })
}
