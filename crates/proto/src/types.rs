//! The command AST: what a parsed client command means, independent of its wire spelling.
//!
//! Names follow RFC 9051 section 9 (formal syntax); RFC 3501 and extension syntax (RFC 4466,
//! RFC 4731, RFC 5182, RFC 5258, RFC 7162, RFC 2971, ...) map onto the same types.

use std::path::PathBuf;

/// A client command: `tag SP command-body CRLF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: String,
    pub body: CommandBody,
}

/// Bytes of a message given in APPEND. Small literals stay in memory; the server spools large
/// ones to a file before the parser sees them (the parser only carries the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageData {
    Inline(Vec<u8>),
    Spooled {
        path: PathBuf,
        len: u64,
    },
    /// RFC 4469 `CATENATE (...)`: the parts to join, which the session resolves into one
    /// message before storing it. A `Text` part is `Inline` or `Spooled`.
    Catenate(Vec<CatenatePart>),
}

/// One `cat-part` of CATENATE (RFC 4469 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatenatePart {
    /// `TEXT literal`.
    Text(MessageData),
    /// `URL astring`: a relative IMAP URL (RFC 5092) of a message or part, as sent.
    Url(Vec<u8>),
}

impl MessageData {
    pub fn len(&self) -> u64 {
        match self {
            MessageData::Inline(v) => v.len() as u64,
            MessageData::Spooled { len, .. } => *len,
            // The TEXT parts; what the URLs add is known once they are resolved.
            MessageData::Catenate(parts) => parts
                .iter()
                .map(|p| match p {
                    CatenatePart::Text(d) => d.len(),
                    CatenatePart::Url(_) => 0,
                })
                .sum(),
        }
    }
    pub fn is_empty(&self) -> bool {
        !matches!(self, MessageData::Catenate(_)) && self.len() == 0
    }
}

/// A mailbox name as sent (already decoded from quoted/literal form, NOT from modified UTF-7:
/// the session decides how to interpret it depending on UTF8=ACCEPT / IMAP4rev2).
pub type MailboxName = Vec<u8>;

/// RFC 2971 `ID` field-value pairs; a value may be NIL.
pub type IdParams = Vec<(Vec<u8>, Option<Vec<u8>>)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    // Any state (RFC 9051 §6.1)
    Capability,
    Noop,
    Logout,
    /// RFC 2971: `ID ("name" "value" ...)` or `ID NIL`. `ID ()` is `Some(vec![])`.
    Id(Option<IdParams>),

    // Not authenticated (§6.2)
    StartTls,
    /// `AUTHENTICATE mech [SP initial-response]`; the mechanism is uppercased, the initial
    /// response is still base64 text (`=` means empty).
    Authenticate {
        mechanism: String,
        initial_response: Option<Vec<u8>>,
    },
    Login {
        username: Vec<u8>,
        password: Vec<u8>,
    },

    // Authenticated (§6.3)
    /// Capability names, uppercased.
    Enable(Vec<String>),
    Select {
        mailbox: MailboxName,
        params: SelectParams,
    },
    Examine {
        mailbox: MailboxName,
        params: SelectParams,
    },
    /// `CREATE mbox [SP "(" "USE" SP "(" use-attr ... ")" ")"]` (RFC 6154 §3).
    /// `special_use` holds the attributes with their backslash, as sent (`\Sent`).
    Create {
        mailbox: MailboxName,
        special_use: Vec<String>,
    },
    Delete(MailboxName),
    Rename {
        from: MailboxName,
        to: MailboxName,
    },
    Subscribe(MailboxName),
    Unsubscribe(MailboxName),
    List(ListCommand),
    /// RFC 3501 LSUB (rev1 only).
    Lsub {
        reference: MailboxName,
        pattern: MailboxName,
    },
    Namespace,
    Status {
        mailbox: MailboxName,
        items: Vec<StatusItem>,
    },
    /// One or more messages (MULTIAPPEND, RFC 3502).
    Append {
        mailbox: MailboxName,
        messages: Vec<AppendMessage>,
    },
    Idle,
    /// RFC 4978 `COMPRESS mechanism` (uppercased; only `DEFLATE` is defined).
    Compress(String),
    /// RFC 9208.
    GetQuota(Vec<u8>),
    GetQuotaRoot(MailboxName),
    /// RFC 9208 §4.1.3 (and RFC 2087, same syntax): `SETQUOTA root (RESOURCE limit ...)`;
    /// resource names uppercased, in the order given.
    SetQuota {
        root: Vec<u8>,
        limits: Vec<(String, u64)>,
    },

    // Selected (§6.4)
    Check,
    Close,
    Unselect,
    Expunge,
    UidExpunge(SequenceSet),
    Search {
        uid: bool,
        charset: Option<String>,
        criteria: SearchKey,
        /// `Some` when `RETURN (...)` was given (answer with ESEARCH); `RETURN ()` arrives as
        /// `Some([All])` (RFC 4731 §3.1).
        ret: Option<Vec<SearchReturn>>,
    },
    /// RFC 5256 SORT / UID SORT, with RFC 5267 `RETURN (...)` (ESORT) and the RFC 5957
    /// DISPLAYFROM / DISPLAYTO keys. The charset is mandatory (RFC 5256 §3).
    Sort {
        uid: bool,
        criteria: Vec<SortCriterion>,
        charset: String,
        search: SearchKey,
        /// `Some` when `RETURN (...)` was given (answer with ESEARCH); `RETURN ()` arrives as
        /// `Some([All])` (RFC 5267 §3.3).
        ret: Option<Vec<SearchReturn>>,
    },
    /// RFC 7377 `ESEARCH [IN (sources)] [RETURN (...)] program`: `sources` is `None` without
    /// `IN` (the selected mailbox). Always answered with UIDs.
    Esearch {
        sources: Option<Vec<SearchSource>>,
        charset: Option<String>,
        criteria: SearchKey,
        ret: Option<Vec<SearchReturn>>,
    },
    /// RFC 5267 §4.3.5 `CANCELUPDATE "tag" ...`: the tags as sent.
    CancelUpdate(Vec<String>),
    /// RFC 5256 THREAD / UID THREAD.
    Thread {
        uid: bool,
        algorithm: ThreadAlgorithm,
        charset: String,
        search: SearchKey,
    },
    Fetch {
        uid: bool,
        set: SequenceSet,
        items: FetchItems,
        modifiers: FetchModifiers,
    },
    Store {
        uid: bool,
        set: SequenceSet,
        action: StoreAction,
        silent: bool,
        flags: Vec<Flag>,
        unchanged_since: Option<u64>,
    },
    Copy {
        uid: bool,
        set: SequenceSet,
        mailbox: MailboxName,
    },
    Move {
        uid: bool,
        set: SequenceSet,
        mailbox: MailboxName,
    },
    /// RFC 8508 `REPLACE seq-number SP mailbox append-message` / `UID REPLACE uniqueid ...`.
    Replace {
        uid: bool,
        number: SeqNum,
        mailbox: MailboxName,
        message: AppendMessage,
    },

    // URLAUTH (RFC 4467, RFC 5524), authenticated and selected states
    /// `GENURLAUTH url-rump mechanism ...`: (URL as sent, mechanism uppercased).
    GenUrlAuth(Vec<(Vec<u8>, String)>),
    /// `RESETKEY [mailbox *(SP mechanism)]` (mechanisms uppercased).
    ResetKey {
        mailbox: Option<MailboxName>,
        mechanisms: Vec<String>,
    },
    /// `URLFETCH url ...`.
    UrlFetch(Vec<UrlFetchArg>),
}

/// One URL of URLFETCH: the URL as sent and, in RFC 5524's parenthesized form, what to
/// return for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlFetchArg {
    pub url: Vec<u8>,
    /// `(url ...)`: answered as `(url (ITEM ...) ...)` (RFC 5524), even with no items.
    pub extended: bool,
    pub bodypartstructure: bool,
    pub binary: bool,
    pub body: bool,
}

impl CommandBody {
    /// The command's name for logs and error messages.
    pub fn name(&self) -> &'static str {
        use CommandBody::*;
        match self {
            Capability => "CAPABILITY",
            Noop => "NOOP",
            Logout => "LOGOUT",
            Id(_) => "ID",
            StartTls => "STARTTLS",
            Authenticate { .. } => "AUTHENTICATE",
            Login { .. } => "LOGIN",
            Enable(_) => "ENABLE",
            Select { .. } => "SELECT",
            Examine { .. } => "EXAMINE",
            Create { .. } => "CREATE",
            Delete(_) => "DELETE",
            Rename { .. } => "RENAME",
            Subscribe(_) => "SUBSCRIBE",
            Unsubscribe(_) => "UNSUBSCRIBE",
            List(_) => "LIST",
            Lsub { .. } => "LSUB",
            Namespace => "NAMESPACE",
            Status { .. } => "STATUS",
            Append { .. } => "APPEND",
            Idle => "IDLE",
            Compress(_) => "COMPRESS",
            GetQuota(_) => "GETQUOTA",
            GetQuotaRoot(_) => "GETQUOTAROOT",
            SetQuota { .. } => "SETQUOTA",
            Check => "CHECK",
            Close => "CLOSE",
            Unselect => "UNSELECT",
            Expunge => "EXPUNGE",
            UidExpunge(_) => "UID EXPUNGE",
            Search { .. } => "SEARCH",
            Sort { .. } => "SORT",
            Esearch { .. } => "ESEARCH",
            CancelUpdate(_) => "CANCELUPDATE",
            Thread { .. } => "THREAD",
            Fetch { .. } => "FETCH",
            Store { .. } => "STORE",
            Copy { .. } => "COPY",
            Move { .. } => "MOVE",
            Replace { .. } => "REPLACE",
            GenUrlAuth(_) => "GENURLAUTH",
            ResetKey { .. } => "RESETKEY",
            UrlFetch(_) => "URLFETCH",
        }
    }
}

/// SELECT/EXAMINE parameters (RFC 4466 `select-params`): CONDSTORE and QRESYNC (RFC 7162).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectParams {
    pub condstore: bool,
    pub qresync: Option<QresyncParams>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QresyncParams {
    pub uidvalidity: u32,
    pub modseq: u64,
    pub known_uids: Option<SequenceSet>,
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// `LIST [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]` (RFC 5258, RFC 9051).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListCommand {
    pub reference: MailboxName,
    /// One or more patterns (a parenthesized list of patterns is allowed by RFC 5258).
    pub patterns: Vec<MailboxName>,
    pub select_subscribed: bool,
    pub select_remote: bool,
    pub select_recursive_match: bool,
    pub select_special_use: bool,
    pub return_subscribed: bool,
    pub return_children: bool,
    pub return_special_use: bool,
    pub return_status: Option<Vec<StatusItem>>,
    /// True when the command used any extended syntax (selection or return options),
    /// which changes some answers (RFC 5258 §3).
    pub extended: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusItem {
    Messages,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    /// RFC 9208 §4.1.4: octets an EXPUNGE would free (RFC822.SIZE of the `\\Deleted` messages).
    DeletedStorage,
    Size,
    Recent,
    HighestModSeq,
    AppendLimit,
    /// RFC 8474 §4.2.
    MailboxId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<Flag>,
    /// Seconds since the Unix epoch and the zone offset in minutes, as given in `date-time`.
    pub internal_date: Option<DateTime>,
    pub data: MessageData,
    /// True if sent as `literal8` (`~{n}`, RFC 3516); such data may contain NUL.
    pub binary: bool,
}

/// An RFC 9051 `date-time` ("dd-Mon-yyyy hh:mm:ss +zzzz").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub unix: i64,
    pub offset_minutes: i32,
}

/// A `date` in SEARCH (no time): days are compared in the server's notion of the date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Flag {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
    /// `\Recent` only appears in rev1 responses; clients cannot STORE it.
    Recent,
    /// A keyword (atom), spelled as the client sent it.
    Keyword(String),
    /// Any other `\Something` flag extension, with its backslash (`\Foo`) as the parser keeps
    /// it; the writer also accepts the name without one.
    Extension(String),
}

/// One element of a sequence set. `u32::MAX` stands for `*` in bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqRange {
    /// `n` or `*`
    Single(SeqNum),
    /// `a:b` (order as sent; either may be larger)
    Range(SeqNum, SeqNum),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNum {
    Value(u32),
    /// `*`: the largest number in use.
    Largest,
}

/// `sequence-set` or `$` (RFC 5182 saved search result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceSet {
    Ranges(Vec<SeqRange>),
    Saved,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Answered,
    Bcc(Vec<u8>),
    Before(Date),
    Body(Vec<u8>),
    Cc(Vec<u8>),
    Deleted,
    Draft,
    Flagged,
    From(Vec<u8>),
    Header(Vec<u8>, Vec<u8>),
    Keyword(String),
    Larger(u64),
    New,
    Not(Box<SearchKey>),
    Old,
    /// OLDER n (RFC 5032): INTERNALDATE at least n seconds ago.
    Older(u32),
    On(Date),
    Or(Box<SearchKey>, Box<SearchKey>),
    Recent,
    Seen,
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    Since(Date),
    Smaller(u64),
    Subject(Vec<u8>),
    Text(Vec<u8>),
    /// YOUNGER n (RFC 5032): INTERNALDATE at most n seconds ago.
    Younger(u32),
    To(Vec<u8>),
    Uid(SequenceSet),
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unkeyword(String),
    Unseen,
    /// A message set (sequence numbers) as a key, or `$`.
    SequenceSet(SequenceSet),
    /// A parenthesized list or the implicit AND of the top level.
    And(Vec<SearchKey>),
    /// RFC 7162 `MODSEQ [entry-name entry-type] mod-sequence-valzer`.
    ModSeq(u64),
    /// RFC 8474 §5.3 `EMAILID objectid`.
    EmailId(String),
    /// RFC 8474 §5.3 `THREADID objectid`.
    ThreadId(String),
    /// RFC 8514 §4.3.
    SavedBefore(Date),
    SavedOn(Date),
    SavedSince(Date),
    SaveDateSupported,
}

/// `SEARCH RETURN (...)` options (RFC 4731, RFC 5182, RFC 9051, RFC 9394 PARTIAL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
    Save,
    /// `PARTIAL range` (RFC 9394 §3.1, RFC 5267 §4.4).
    Partial(PartialRange),
    /// RFC 5267 §4.3 `UPDATE`: keep the result up to date with ADDTO / REMOVEFROM.
    Update,
    /// RFC 5267 §4.2 `CONTEXT`: a hint that the criteria will be used again.
    Context,
}

/// One `filter-mailboxes` of an RFC 7377 `ESEARCH IN (...)` (RFC 5465 §6, with RFC 7377's
/// `subtree-one`; `selected-delayed` is not allowed there). Mailbox names as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchSource {
    Selected,
    Inboxes,
    Personal,
    Subscribed,
    Subtree(Vec<MailboxName>),
    SubtreeOne(Vec<MailboxName>),
    Mailboxes(Vec<MailboxName>),
}

/// RFC 9394 `partial-range`: `a:b` counts results from the first (lowest UID), `-a:-b` from
/// the last; `a` and `b` as sent (either may be the larger), both non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialRange {
    pub from_end: bool,
    pub first: u32,
    pub second: u32,
}

impl PartialRange {
    /// The positions of `len` results this range selects, as a half-open index range (empty
    /// when the whole range lies beyond the results).
    pub fn slice(&self, len: usize) -> std::ops::Range<usize> {
        let lo = self.first.min(self.second) as usize;
        let hi = self.first.max(self.second) as usize;
        if lo > len {
            return 0..0;
        }
        if self.from_end {
            // -lo is index len - lo; -hi is len - hi (clamped at the first result).
            len.saturating_sub(hi)..len - lo + 1
        } else {
            lo - 1..hi.min(len)
        }
    }

    /// The range as written in a response (as the client sent it).
    pub fn to_wire(&self) -> String {
        if self.from_end {
            format!("-{}:-{}", self.first, self.second)
        } else {
            format!("{}:{}", self.first, self.second)
        }
    }
}

/// One `sort-criterion` (RFC 5256 §5): `["REVERSE" SP] sort-key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    pub reverse: bool,
    pub key: SortKey,
}

/// `sort-key` (RFC 5256 §5, RFC 5957 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

/// `thread-alg` (RFC 5256 §5; REFS from draft-ietf-morg-inthread, as Dovecot offers it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
    Refs,
}

/// FETCH item list, macros already expanded (ALL, FAST, FULL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchItems(pub Vec<FetchItem>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    Flags,
    InternalDate,
    Rfc822Size,
    Envelope,
    /// `BODYSTRUCTURE`
    BodyStructure,
    /// `BODY` (non-extensible form of BODYSTRUCTURE)
    Body,
    Uid,
    ModSeq,
    /// `RFC822` = BODY[] (sets \Seen)
    Rfc822,
    /// `RFC822.HEADER` = BODY.PEEK[HEADER]
    Rfc822Header,
    /// `RFC822.TEXT` = BODY[TEXT] (sets \Seen)
    Rfc822Text,
    /// `BODY[section]<partial>` / `BODY.PEEK[...]`
    BodySection {
        section: Section,
        partial: Option<(u64, u64)>,
        peek: bool,
    },
    /// `BINARY[part]<partial>` / `BINARY.PEEK[...]` (RFC 3516)
    Binary {
        part: Vec<u32>,
        partial: Option<(u64, u64)>,
        peek: bool,
    },
    /// `BINARY.SIZE[part]`
    BinarySize {
        part: Vec<u32>,
    },
    /// RFC 8474 §5.1.
    EmailId,
    ThreadId,
    /// RFC 8514 §4.2.
    SaveDate,
    /// RFC 8970 `PREVIEW [SP "(" "LAZY" ")"]`.
    Preview {
        lazy: bool,
    },
}

/// `section-spec`: a part path and what of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// `1.2.3`; empty for the whole message.
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    /// `HEADER.FIELDS (..)`; names as sent (compare case-insensitively).
    HeaderFields(Vec<Vec<u8>>),
    HeaderFieldsNot(Vec<Vec<u8>>),
    Text,
    /// Only valid with a non-empty part path.
    Mime,
}

/// FETCH modifiers (RFC 4466 `fetch-modifier`): CHANGEDSINCE and VANISHED (RFC 7162),
/// PARTIAL (RFC 9394 §3.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchModifiers {
    pub changed_since: Option<u64>,
    pub vanished: bool,
    pub partial: Option<PartialRange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreAction {
    Replace,
    Add,
    Remove,
}

#[cfg(test)]
mod tests {
    use super::PartialRange;

    fn r(from_end: bool, first: u32, second: u32) -> PartialRange {
        PartialRange {
            from_end,
            first,
            second,
        }
    }

    #[test]
    fn partial_range_slices() {
        // RFC 9394 §3.1: 23764 results.
        assert_eq!(r(true, 1, 100).slice(23764), 23664..23764);
        assert_eq!(r(false, 23500, 24000).slice(23764), 23499..23764);
        assert_eq!(r(false, 1, 500).slice(23764), 0..500);
        assert!(r(false, 24000, 24500).slice(23764).is_empty());
        // Either order; beyond the start from the end is clamped.
        assert_eq!(r(false, 5, 3).slice(10), 2..5);
        assert_eq!(r(true, 100, 1).slice(10), 0..10);
        assert_eq!(r(true, 2, 3).slice(10), 7..9);
        assert!(r(true, 11, 20).slice(10).is_empty());
        assert!(r(false, 1, 1).slice(0).is_empty());
        assert_eq!(r(false, u32::MAX, u32::MAX).slice(3), 0..0);
        assert_eq!(r(true, 1, 1).to_wire(), "-1:-1");
    }
}
