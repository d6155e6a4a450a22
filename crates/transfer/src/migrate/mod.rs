//! `mailkeep migrate`: every folder, message, flag, keyword and INTERNALDATE of an account on
//! another IMAP server, into our store.
//!
//! - [`client`]: the IMAP client (TLS / STARTTLS, login, pipelined UID FETCH, big literals
//!   spooled to files).
//! - [`parse`]: LIST, EXAMINE and FETCH responses.
//! - [`state`]: what earlier runs did, so a run fetches only what is new.
//!
//! Per folder: EXAMINE, one `UID FETCH 1:* (UID FLAGS)` listing, then the messages not yet
//! migrated are fetched with `UID FETCH set (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])`
//! in chunks of [`Options::chunk`] UIDs, [`Options::in_flight`] commands in flight, while
//! a second future appends what arrived to the store in batches (one transaction each). Known
//! messages get the source's flags; those gone at the source are reported (and expunged with
//! `--delete-missing`). When the folder's UIDVALIDITY changed (or the server says
//! `[UIDNOTSTICKY]`) the listing also fetches Message-IDs and earlier messages are matched by
//! them instead of by UID, so nothing is fetched twice.

pub mod client;
pub mod parse;
pub mod state;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use mailkeep_store::{FlagOp, Flags, MailStore, MessageBytes, NewMessage, ParsedInfo, UserId};

use crate::progress::{Progress, Summary};
use client::{Client, Endpoint, Literal, Login, quote};
use parse::FetchItem;
use state::{Entry, State};

/// The special-use mailboxes a new account gets (as at its first IMAP login).
const DEFAULT_MAILBOXES: [(&str, &str); 5] = [
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
];

/// A batch is stored once it holds this many messages ...
const BATCH_MESSAGES: usize = 200;
/// ... or this many bytes.
const BATCH_BYTES: u64 = 16 * 1024 * 1024;
/// Batches waiting for the store: appended together, up to this many messages at once.
const MERGED_MESSAGES: usize = 2000;
/// How many prepared batches may wait for the store.
const READY_BATCHES: usize = 4;

/// One account's migration.
#[derive(Debug, Clone)]
pub struct Options {
    pub endpoint: Endpoint,
    pub login: Login,
    /// The local account (must exist).
    pub local_user: String,
    /// The data directory: state files (`migrate/`) and spooled big messages (`spool/`).
    pub data_dir: PathBuf,
    /// Expunge local copies of messages gone at the source.
    pub delete_missing: bool,
    /// Print nothing but the summary's figures to the caller.
    pub quiet: bool,
    /// UIDs per UID FETCH command.
    pub chunk: usize,
    /// UID FETCH commands in flight at once.
    pub in_flight: usize,
}

/// Parses `imaps://user@host[:port]` / `imap://...`: (endpoint, user if given).
pub fn parse_url(url: &str, insecure: bool) -> Result<(Endpoint, Option<String>)> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("imaps://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("imap://") {
        (false, r)
    } else {
        bail!("--from must start with imaps:// or imap://, not {url:?}");
    };
    let rest = rest.trim_end_matches('/');
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(percent_decode(u)?), h),
        None => (None, rest),
    };
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, p) = h
            .split_once(']')
            .ok_or_else(|| anyhow!("bad host in {url:?}"))?;
        (h.to_string(), p.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        bail!("no host in {url:?}");
    }
    let port = match port {
        Some(p) => p.parse().with_context(|| format!("bad port in {url:?}"))?,
        None if tls => 993,
        None => 143,
    };
    Ok((
        Endpoint {
            host,
            port,
            tls,
            insecure,
        },
        user.filter(|u| !u.is_empty()),
    ))
}

fn percent_decode(s: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let h = std::str::from_utf8(&b[i + 1..i + 3])?;
            out.push(u8::from_str_radix(h, 16).with_context(|| format!("bad %-escape in {s:?}"))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8(out)?)
}

/// What changed at the source since the last run (all zero on a first run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceChanges {
    /// True if nothing had been migrated from this source before.
    pub first_run: bool,
    pub new_messages: u64,
    /// Messages whose flags differed; the source's were applied.
    pub flags_changed: u64,
    /// Messages migrated before and gone at the source now.
    pub gone: u64,
    /// Of those, expunged here (`--delete-missing`).
    pub deleted: u64,
    pub new_folders: Vec<String>,
    pub gone_folders: Vec<String>,
    /// Folders whose UIDVALIDITY changed (matched again by Message-ID).
    pub uidvalidity_changed: Vec<String>,
    /// Messages matched by Message-ID instead of UID.
    pub matched_by_id: u64,
}

impl fmt::Display for SourceChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first_run {
            return write!(f, "first run: {} messages new", self.new_messages);
        }
        write!(
            f,
            "changes at the source: {} new messages, {} flag changes applied, {} messages gone at the source",
            self.new_messages, self.flags_changed, self.gone
        )?;
        if self.gone > 0 {
            if self.deleted > 0 {
                write!(f, " ({} deleted here)", self.deleted)?;
            } else {
                write!(f, " (kept here; --delete-missing deletes them)")?;
            }
        }
        for (what, list) in [
            ("new folders", &self.new_folders),
            ("folders gone at the source", &self.gone_folders),
            (
                "UIDVALIDITY changed (matched by Message-ID)",
                &self.uidvalidity_changed,
            ),
        ] {
            if !list.is_empty() {
                write!(f, "; {what}: {}", list.join(", "))?;
            }
        }
        if self.matched_by_id > 0 {
            write!(f, "; {} messages matched by Message-ID", self.matched_by_id)?;
        }
        Ok(())
    }
}

/// What one account's migration did.
#[derive(Debug, Clone)]
pub struct Report {
    pub user: String,
    pub summary: Summary,
    pub changes: SourceChanges,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}\n{}: {}",
            self.user, self.summary, self.user, self.changes
        )
    }
}

/// Migrates one account.
pub async fn migrate(store: Arc<dyn MailStore>, opts: &Options) -> Result<Report> {
    let user = store
        .get_user(&opts.local_user)
        .await?
        .ok_or_else(|| anyhow!("no local account {:?}", opts.local_user))?;
    let spool = opts.data_dir.join("spool");
    let mut client = Client::connect(&opts.endpoint, &spool).await?;
    client.login(&opts.login).await?;
    let state = State::load(state::path_for(&opts.data_dir, &opts.local_user))?;
    let mut m = Migration {
        store,
        user: user.id,
        client,
        state,
        progress: Progress::new(format!("migrate {}", opts.local_user), opts.quiet),
        changes: SourceChanges::default(),
        opts,
    };
    m.changes.first_run = m.state.folders.is_empty();
    m.ensure_defaults().await?;
    m.run().await?;
    m.state.compact()?;
    let _ = m.client.run("LOGOUT").await;
    let changes = m.changes;
    Ok(Report {
        user: opts.local_user.clone(),
        summary: m.progress.finish(),
        changes,
    })
}

struct Migration<'a> {
    store: Arc<dyn MailStore>,
    user: UserId,
    client: Client,
    state: State,
    progress: Progress,
    changes: SourceChanges,
    opts: &'a Options,
}

/// A source message known from the listing.
struct Listed {
    uid: u32,
    flags: Flags,
    /// Set in Message-ID mode.
    key: Option<String>,
}

fn fallback_key(size: Option<u64>, date: Option<&str>) -> String {
    format!("size={} date={}", size.unwrap_or(0), date.unwrap_or(""))
}

impl Migration<'_> {
    /// The special-use mailboxes an account gets at its first login, made now if the account
    /// has nothing but INBOX (so the source's \Sent lands in our Sent).
    async fn ensure_defaults(&mut self) -> Result<()> {
        let existing = self.store.list_mailboxes(self.user).await?;
        if existing
            .iter()
            .any(|m| !m.name.eq_ignore_ascii_case("INBOX"))
        {
            return Ok(());
        }
        for (name, special) in DEFAULT_MAILBOXES {
            match self
                .store
                .create_mailbox(self.user, name, Some(special))
                .await
            {
                Ok(_) | Err(mailkeep_store::StoreError::AlreadyExists) => {}
                Err(e) => return Err(e.into()),
            }
            self.store.subscribe(self.user, name).await?;
        }
        self.store.subscribe(self.user, "INBOX").await?;
        Ok(())
    }

    async fn run(&mut self) -> Result<()> {
        let extended = self.client.has("LIST-EXTENDED");
        let mut ret = Vec::new();
        if extended {
            ret.push("SUBSCRIBED");
            if self.client.has("SPECIAL-USE") {
                ret.push("SPECIAL-USE");
            }
        }
        let cmd = if ret.is_empty() {
            "LIST \"\" \"*\"".to_string()
        } else {
            format!("LIST \"\" \"*\" RETURN ({})", ret.join(" "))
        };
        let (mut untagged, done) = self.client.run(&cmd).await?;
        if !done.ok {
            bail!("LIST failed at the source: {}", done.text);
        }
        let mut entries: Vec<_> = untagged.iter_mut().filter_map(parse::list_entry).collect();
        // INBOX first, then by name (parents before children).
        entries.sort_by_key(|e| (!e.wire.eq_ignore_ascii_case(b"INBOX"), e.wire.clone()));
        let mut seen = BTreeSet::new();
        for e in &entries {
            let Some(name) = parse::decode_mutf7(&e.wire) else {
                self.progress.skip(
                    "folder name not valid modified UTF-7",
                    String::from_utf8_lossy(&e.wire).into_owned(),
                );
                continue;
            };
            if e.has("\\NonExistent") || e.has("\\Noselect") {
                continue;
            }
            if quote(&e.wire).is_err() {
                self.progress
                    .skip("folder name cannot be sent back to the source", name);
                continue;
            }
            seen.insert(name.clone());
            let local = self.local_name(&name, e).await?;
            let subscribe = !extended || e.has("\\Subscribed");
            if let Err(err) = self.folder(&name, &e.wire, &local, subscribe).await {
                // A folder the store refuses (a name it cannot take, a quota) is skipped;
                // anything else (the connection) ends the run.
                if err.downcast_ref::<mailkeep_store::StoreError>().is_none() {
                    return Err(err.context(format!("migrating folder {name:?}")));
                }
                self.progress
                    .skip("folder failed", format!("{name}: {err:#}"));
            }
        }
        let gone: Vec<String> = self
            .state
            .folders
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for name in gone {
            self.state.forget_folder(&name)?;
            self.changes.gone_folders.push(name);
        }
        Ok(())
    }

    /// Our name for a source folder: its hierarchy delimiter becomes `/` (a `/` inside a name
    /// becomes `_`), and a special-use folder goes to our mailbox of that use.
    async fn local_name(&mut self, name: &str, e: &parse::ListEntry) -> Result<String> {
        if name.eq_ignore_ascii_case("INBOX") {
            return Ok("INBOX".to_string());
        }
        if let Some(prev) = self.state.folders.get(name) {
            return Ok(prev.local.clone());
        }
        if let Some(use_) = e.special_use() {
            let mine = self.store.list_mailboxes(self.user).await?;
            if let Some(m) = mine.iter().find(|m| {
                m.special_use
                    .as_deref()
                    .is_some_and(|u| u.eq_ignore_ascii_case(use_))
            }) {
                return Ok(m.name.clone());
            }
        }
        let parts: Vec<String> = match e.delimiter {
            Some(d) if d != b'/' => name.split(d as char).map(|p| p.replace('/', "_")).collect(),
            _ => name.split('/').map(str::to_string).collect(),
        };
        let mut parts: Vec<String> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        if parts
            .first()
            .is_some_and(|p| p.eq_ignore_ascii_case("INBOX"))
        {
            parts[0] = "INBOX".to_string();
        }
        Ok(parts.join("/"))
    }

    /// Makes `name` (and its parents) here if missing.
    async fn ensure_mailbox(
        &mut self,
        name: &str,
        special: Option<&str>,
    ) -> Result<mailkeep_store::Mailbox> {
        if let Some(m) = self.store.get_mailbox(self.user, name).await? {
            return Ok(m);
        }
        let mut prefix = String::new();
        let parts: Vec<&str> = name.split('/').collect();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                prefix.push('/');
            }
            prefix.push_str(p);
            if i + 1 < parts.len() && self.store.get_mailbox(self.user, &prefix).await?.is_none() {
                match self.store.create_mailbox(self.user, &prefix, None).await {
                    Ok(_) | Err(mailkeep_store::StoreError::AlreadyExists) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        match self.store.create_mailbox(self.user, name, special).await {
            Ok(m) => Ok(m),
            Err(mailkeep_store::StoreError::AlreadyExists) => self
                .store
                .get_mailbox(self.user, name)
                .await?
                .ok_or_else(|| anyhow!("mailbox {name:?} vanished")),
            Err(e) => Err(e.into()),
        }
    }

    async fn folder(
        &mut self,
        name: &str,
        wire: &[u8],
        local: &str,
        subscribe: bool,
    ) -> Result<()> {
        let (untagged, done) = self
            .client
            .run(&format!("EXAMINE {}", quote(wire)?))
            .await?;
        if !done.ok {
            self.progress
                .skip("source refused EXAMINE", format!("{name}: {}", done.text));
            return Ok(());
        }
        let ex = parse::examined(&untagged);
        let uidvalidity = ex.uidvalidity.unwrap_or(0);
        let mailbox = self.ensure_mailbox(local, None).await?;
        if subscribe {
            self.store.subscribe(self.user, local).await?;
        }
        let prev = self.state.folders.get(name).cloned();
        if prev.is_none() && !self.changes.first_run {
            self.changes.new_folders.push(name.to_string());
        }
        // Earlier messages are known by UID if both sides kept their UIDVALIDITY and the
        // source's UIDs stick; by Message-ID if only the source changed; not at all if our
        // mailbox was made anew (it holds none of them).
        let prev = prev.filter(|p| p.local == local && p.local_uidvalidity == mailbox.uidvalidity);
        let by_id = prev
            .as_ref()
            .is_some_and(|p| p.uidvalidity != uidvalidity || ex.not_sticky || uidvalidity == 0);
        if by_id && prev.as_ref().is_some_and(|p| p.uidvalidity != uidvalidity) {
            self.changes.uidvalidity_changed.push(name.to_string());
        }

        // The listing.
        let mut listed = Vec::new();
        if ex.exists > 0 {
            let items = if by_id {
                "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
            } else {
                "(UID FLAGS)"
            };
            let tag = self.client.send(&format!("UID FETCH 1:* {items}")).await?;
            loop {
                let mut r = self.client.read_response().await?;
                if let Some(done) = client::tagged(&r, &tag) {
                    if !done.ok {
                        bail!("the source refused the listing of {name}: {}", done.text);
                    }
                    break;
                }
                if let Some(f) = parse::fetch_item(&mut r) {
                    let key = by_id.then(|| {
                        f.header
                            .as_deref()
                            .and_then(parse::message_id)
                            .unwrap_or_else(|| fallback_key(f.size, f.internal_date.as_deref()))
                    });
                    listed.push(Listed {
                        uid: f.uid,
                        flags: parse::flags_of(f.flags.as_deref().unwrap_or(&[])),
                        key,
                    });
                }
            }
        }
        listed.sort_by_key(|l| l.uid);
        listed.dedup_by_key(|l| l.uid);

        // What we have of it.
        let mut known: HashMap<u32, Entry> = HashMap::new();
        match &prev {
            Some(p) if by_id => {
                let mut by_key: HashMap<&str, VecDeque<&Entry>> = HashMap::new();
                for e in p.msgs.values() {
                    by_key.entry(e.key.as_str()).or_default().push_back(e);
                }
                self.state
                    .begin_folder(name, uidvalidity, local, mailbox.uidvalidity)?;
                for l in &listed {
                    let Some(key) = &l.key else { continue };
                    if let Some(e) = by_key.get_mut(key.as_str()).and_then(VecDeque::pop_front) {
                        self.state.record(name, l.uid, e.clone())?;
                        known.insert(l.uid, e.clone());
                        self.changes.matched_by_id += 1;
                    }
                }
                // Earlier messages the source no longer has under any UID.
                self.changes.gone += by_key.values().map(|q| q.len() as u64).sum::<u64>();
                if self.opts.delete_missing {
                    let uids: Vec<u32> = by_key
                        .values()
                        .flat_map(|q| q.iter().map(|e| e.local_uid))
                        .collect();
                    self.delete_local(mailbox.id, uids).await?;
                }
            }
            Some(p) => known = p.msgs.iter().map(|(k, v)| (*k, v.clone())).collect(),
            None => self
                .state
                .begin_folder(name, uidvalidity, local, mailbox.uidvalidity)?,
        }

        // Flags of known messages; messages gone at the source.
        if !known.is_empty() {
            let here: HashMap<u32, Flags> = self
                .store
                .messages(mailbox.id)
                .await?
                .into_iter()
                .map(|m| (m.uid, m.flags))
                .collect();
            let mut listed_uids = BTreeSet::new();
            for l in &listed {
                listed_uids.insert(l.uid);
                let Some(e) = known.get(&l.uid) else { continue };
                match here.get(&e.local_uid) {
                    Some(f) if mailkeep_store::flagops::normalize(f) != l.flags => {
                        self.store
                            .set_flags(mailbox.id, &[e.local_uid], FlagOp::Replace, &l.flags, None)
                            .await?;
                        self.changes.flags_changed += 1;
                    }
                    _ => {}
                }
            }
            let gone: Vec<(u32, u32)> = known
                .iter()
                .filter(|(src, _)| !listed_uids.contains(src))
                .map(|(src, e)| (*src, e.local_uid))
                .collect();
            self.changes.gone += gone.len() as u64;
            for (src, _) in &gone {
                self.state.forget(name, *src)?;
            }
            if self.opts.delete_missing {
                self.delete_local(mailbox.id, gone.iter().map(|g| g.1).collect())
                    .await?;
            }
            self.state.flush()?;
        }

        let new: Vec<u32> = listed
            .iter()
            .filter(|l| !known.contains_key(&l.uid))
            .map(|l| l.uid)
            .collect();
        self.changes.new_messages += new.len() as u64;
        let mut folder = self.progress.folder(name, Some(new.len() as u64));
        if !new.is_empty() {
            let (tx, rx) = tokio::sync::mpsc::channel::<FetchItem>(64);
            let chunk = self.opts.chunk.max(1);
            let depth = self.opts.in_flight.max(1);
            let reader = fetch_pipelined(&mut self.client, &new, chunk, depth, tx);
            let (ready_tx, ready_rx) = tokio::sync::mpsc::channel::<Vec<Ready>>(READY_BATCHES);
            let preparer = prepare_batches(name, rx, ready_tx);
            let writer = store_all(
                &*self.store,
                mailbox.id,
                name,
                ready_rx,
                &mut self.state,
                &self.progress,
                &mut folder,
            );
            let (read, prepared, written) = tokio::join!(reader, preparer, writer);
            let mut skips = written?;
            skips.extend(prepared?);
            let outcome = read?;
            for (reason, what) in skips {
                self.progress.skip(&reason, what);
            }
            for uid in outcome.missing {
                self.progress.skip(
                    "gone at the source during the migration",
                    format!("{name} UID {uid}"),
                );
            }
            for (uids, why) in outcome.refused {
                self.progress.skip(
                    "the source refused to FETCH",
                    format!("{name} UIDs {}: {why}", uid_set(&uids)),
                );
            }
        }
        self.state.flush()?;
        self.progress.finish_folder(folder);
        Ok(())
    }

    async fn delete_local(
        &mut self,
        mailbox: mailkeep_store::MailboxId,
        mut uids: Vec<u32>,
    ) -> Result<()> {
        uids.sort_unstable();
        uids.dedup();
        if !uids.is_empty() {
            let done = self.store.expunge(mailbox, &uids).await?;
            self.changes.deleted += done.len() as u64;
        }
        Ok(())
    }
}

/// `1:3,7,9:10`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[derive(Default)]
struct FetchOutcome {
    /// Asked for and not sent (expunged meanwhile).
    missing: Vec<u32>,
    /// Chunks the source answered NO/BAD to.
    refused: Vec<(Vec<u32>, String)>,
}

/// Fetches the messages `uids` (ascending), `depth` commands of `chunk` UIDs in flight,
/// handing each to `tx`.
async fn fetch_pipelined(
    client: &mut Client,
    uids: &[u32],
    chunk: usize,
    depth: usize,
    tx: tokio::sync::mpsc::Sender<FetchItem>,
) -> Result<FetchOutcome> {
    let mut wanted: BTreeSet<u32> = uids.iter().copied().collect();
    let mut chunks = uids.chunks(chunk);
    let mut in_flight: VecDeque<(String, &[u32])> = VecDeque::new();
    let mut out = FetchOutcome::default();
    loop {
        while in_flight.len() < depth {
            let Some(c) = chunks.next() else { break };
            let tag = client
                .send(&format!(
                    "UID FETCH {} (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])",
                    uid_set(c)
                ))
                .await?;
            in_flight.push_back((tag, c));
        }
        let Some((tag, _)) = in_flight.front() else {
            break;
        };
        let tag = tag.clone();
        let mut r = client.read_response().await?;
        if let Some(done) = client::tagged(&r, &tag) {
            let (_, c) = in_flight.pop_front().unwrap_or_default();
            if !done.ok {
                let left: Vec<u32> = c.iter().copied().filter(|u| wanted.remove(u)).collect();
                out.refused.push((left, done.text));
            }
            continue;
        }
        if let Some(item) = parse::fetch_item(&mut r)
            && item.body.is_some()
            && wanted.remove(&item.uid)
        {
            tx.send(item)
                .await
                .map_err(|_| anyhow!("storing stopped"))?;
        }
    }
    out.missing = wanted.into_iter().collect();
    Ok(out)
}

/// A fetched message made ready for the store; its spool file (if any) lives as long as this.
struct Ready {
    uid: u32,
    key: String,
    bytes: u64,
    message: NewMessage,
    _spool: Option<tempfile::TempPath>,
}

fn prepare(item: FetchItem) -> Result<Ready> {
    let (internal_date, internal_date_offset) = item
        .internal_date
        .as_deref()
        .and_then(parse::internal_date)
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            (now, 0)
        });
    let flags = parse::flags_of(item.flags.as_deref().unwrap_or(&[]));
    let fallback = fallback_key(item.size, item.internal_date.as_deref());
    let (data, parsed, key, bytes, spool) = match item.body {
        Some(Literal::Memory(raw)) => {
            let data = mailkeep_mime::prepare_received(&raw, false).into_owned();
            let key = parse::message_id(&data).unwrap_or(fallback);
            let parsed = ParsedInfo::from(mailkeep_mime::analyze(&data));
            let n = raw.len() as u64;
            (MessageBytes::Memory(Arc::new(data)), parsed, key, n, None)
        }
        Some(Literal::File(path, len)) => {
            let mut head = vec![0u8; 64 * 1024];
            let mut f = std::fs::File::open(&path)?;
            let n = std::io::Read::read(&mut f, &mut head)?;
            head.truncate(n);
            let key = parse::message_id(&head).unwrap_or(fallback);
            let data = MessageBytes::Received {
                path: path.to_path_buf(),
                len,
                binary: false,
            };
            (data, ParsedInfo::default(), key, len, Some(path))
        }
        None => bail!("no body"),
    };
    Ok(Ready {
        uid: item.uid,
        key,
        bytes,
        message: NewMessage {
            data,
            flags,
            internal_date,
            internal_date_offset,
            parsed,
        },
        _spool: spool,
    })
}

/// Cuts what arrives on `rx` into batches and makes them ready for the store (MIME analysis,
/// on a blocking thread) while the previous batch is being appended. Returns the skips.
async fn prepare_batches(
    folder_name: &str,
    mut rx: tokio::sync::mpsc::Receiver<FetchItem>,
    tx: tokio::sync::mpsc::Sender<Vec<Ready>>,
) -> Result<Vec<(String, String)>> {
    let mut skips = Vec::new();
    loop {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < BATCH_MESSAGES && bytes < BATCH_BYTES {
            let Some(item) = rx.recv().await else { break };
            bytes += item.body.as_ref().map_or(0, Literal::size);
            batch.push(item);
        }
        if batch.is_empty() {
            break;
        }
        let ready = tokio::task::spawn_blocking(move || {
            batch
                .into_iter()
                .map(|item| {
                    let uid = item.uid;
                    prepare(item).map_err(|e| (uid, e.to_string()))
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| anyhow!("preparing messages: {e}"))?;
        let mut ok = Vec::new();
        for r in ready {
            match r {
                Ok(r) => ok.push(r),
                Err((uid, why)) => skips.push((
                    format!("unreadable: {why}"),
                    format!("{folder_name} UID {uid}"),
                )),
            }
        }
        if !ok.is_empty() && tx.send(ok).await.is_err() {
            break;
        }
    }
    Ok(skips)
}

/// Appends the batches arriving on `rx`, one transaction each; returns the skips.
async fn store_all(
    store: &dyn MailStore,
    mailbox: mailkeep_store::MailboxId,
    folder_name: &str,
    mut rx: tokio::sync::mpsc::Receiver<Vec<Ready>>,
    state: &mut State,
    progress: &Progress,
    folder: &mut crate::progress::Folder,
) -> Result<Vec<(String, String)>> {
    let mut skips = Vec::new();
    while let Some(mut ok) = rx.recv().await {
        // Batches that became ready while the last append ran go together: when the store's
        // commits (their fsyncs) are what limits, the batches grow and the fsyncs get fewer.
        while ok.len() < MERGED_MESSAGES {
            match rx.try_recv() {
                Ok(more) => ok.extend(more),
                Err(_) => break,
            }
        }
        let messages: Vec<NewMessage> = ok.iter().map(|r| r.message.clone()).collect();
        let stored: Vec<(usize, u32)> = match store.append(mailbox, messages).await {
            Ok((_, uids)) => uids.into_iter().enumerate().collect(),
            Err(mailkeep_store::StoreError::Internal(e)) => {
                return Err(anyhow!("storing into {folder_name}: {e}"));
            }
            Err(_) if ok.len() > 1 => {
                // Find the one(s) refused: store them one by one.
                let mut stored = Vec::new();
                for (i, r) in ok.iter().enumerate() {
                    match store.append(mailbox, vec![r.message.clone()]).await {
                        Ok((_, uids)) => stored.extend(uids.first().map(|u| (i, *u))),
                        Err(e) => skips.push((
                            format!("refused by the store: {e}"),
                            format!("{folder_name} UID {}", r.uid),
                        )),
                    }
                }
                stored
            }
            Err(e) => {
                skips.push((
                    format!("refused by the store: {e}"),
                    format!("{folder_name} UID {}", ok[0].uid),
                ));
                Vec::new()
            }
        };
        let (mut n, mut b) = (0, 0);
        for (i, local_uid) in stored {
            let r = &ok[i];
            state.record(
                folder_name,
                r.uid,
                Entry {
                    local_uid,
                    key: r.key.clone(),
                },
            )?;
            n += 1;
            b += r.bytes;
        }
        state.flush()?;
        progress.advance(folder, n, b);
    }
    Ok(skips)
}

/// One line of an `--all-users` file: `user password` or `user` (master login).
pub fn parse_users_line(line: &str) -> Option<(String, Option<String>)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    match line.split_once(char::is_whitespace) {
        Some((u, p)) => Some((u.to_string(), Some(p.trim().to_string()))),
        None => Some((line.to_string(), None)),
    }
}

/// Migrates many accounts, `parallel` at a time; one report (or error) per account, in order.
pub async fn migrate_many(
    store: Arc<dyn MailStore>,
    jobs: Vec<Options>,
    parallel: usize,
) -> Vec<(String, Result<Report>)> {
    let sem = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, opts) in jobs.into_iter().enumerate() {
        let store = store.clone();
        let sem = sem.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let r = migrate(store, &opts).await;
            (i, opts.local_user, r)
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(x) => out.push(x),
            Err(e) => out.push((usize::MAX, String::new(), Err(anyhow!("task failed: {e}")))),
        }
    }
    out.sort_by_key(|x| x.0);
    out.into_iter().map(|(_, u, r)| (u, r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let (e, u) = parse_url("imaps://bob@mail.example.org", false).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.tls, u.as_deref()),
            ("mail.example.org", 993, true, Some("bob"))
        );
        let (e, u) = parse_url("imap://a%40b@127.0.0.1:1143/", true).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.tls, e.insecure, u.as_deref()),
            ("127.0.0.1", 1143, false, true, Some("a@b"))
        );
        let (e, u) = parse_url("imap://[::1]:99", false).unwrap();
        assert_eq!((e.host.as_str(), e.port, u), ("::1", 99, None));
        assert!(parse_url("pop3://x", false).is_err());
    }

    #[test]
    fn uid_sets() {
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
    }

    #[test]
    fn users_lines() {
        assert_eq!(parse_users_line("  # x"), None);
        assert_eq!(
            parse_users_line("alice secret pw"),
            Some(("alice".into(), Some("secret pw".into())))
        );
        assert_eq!(parse_users_line("bob"), Some(("bob".into(), None)));
    }
}
