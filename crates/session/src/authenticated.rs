//! Authenticated state (RFC 9051 §6.3): ENABLE, SELECT/EXAMINE, CREATE, DELETE, RENAME,
//! SUBSCRIBE/UNSUBSCRIBE, NAMESPACE, quota; LIST, STATUS, APPEND and IDLE have their own
//! modules. Also reached from the selected state for these commands (`sel` is then set).

use mailkeep_proto::write::{self, Code, StatusKind};
use mailkeep_proto::{CommandBody, MailboxName, SelectParams};
use mailkeep_store::{Mailbox, User};

use crate::error::{CmdError, CmdResult};
use crate::selected::SelectedMailbox;
use crate::state::Transition;
use crate::{
    CompressState, Flow, Inner, Outcome, append, capability, cmd, idle, list, names, status_cmd,
};

pub(crate) async fn handle(
    inner: &mut Inner,
    user: &User,
    sel: Option<&mut SelectedMailbox>,
    tag: &str,
    body: CommandBody,
    out: &mut Vec<u8>,
) -> Outcome {
    let result = match body {
        CommandBody::Enable(names) => Ok(enable(inner, sel, &names, out)),
        CommandBody::Select { mailbox, params } => {
            return select(inner, user, sel, &mailbox, &params, false, out).await;
        }
        CommandBody::Examine { mailbox, params } => {
            return select(inner, user, sel, &mailbox, &params, true, out).await;
        }
        CommandBody::Create {
            mailbox,
            special_use,
        } => create(inner, user, &mailbox, &special_use).await,
        CommandBody::Delete(mailbox) => delete(inner, user, sel, &mailbox, out).await,
        CommandBody::Rename { from, to } => rename(inner, user, sel, &from, &to).await,
        CommandBody::Subscribe(mailbox) => subscribe(inner, user, &mailbox, true).await,
        CommandBody::Unsubscribe(mailbox) => subscribe(inner, user, &mailbox, false).await,
        CommandBody::List(cmd) => list::list(inner, user, sel.as_deref(), &cmd, out).await,
        CommandBody::Lsub { reference, pattern } => {
            list::lsub(inner, user, &reference, &pattern, out).await
        }
        CommandBody::Namespace => {
            // One personal namespace, no prefix (RFC 2342, RFC 9051 §6.3.10).
            out.extend_from_slice(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
            Ok(Outcome::ok("Namespace completed."))
        }
        CommandBody::Status { mailbox, items } => {
            status_cmd::status(inner, user, sel, &mailbox, &items, out).await
        }
        CommandBody::Append { mailbox, messages } => {
            append::append(inner, user, sel, &mailbox, messages, out).await
        }
        CommandBody::Idle => idle::start(inner, user, sel, tag, out).await,
        CommandBody::GetQuotaRoot(mailbox) => {
            cmd::quota::get_quota_root(inner, user, &mailbox, out).await
        }
        CommandBody::GetQuota(root) => cmd::quota::get_quota(inner, user, &root, out).await,
        CommandBody::SetQuota { root, limits } => {
            cmd::quota::set_quota(inner, user, &root, &limits, out).await
        }
        CommandBody::Compress(mechanism) => Ok(compress(inner, &mechanism)),
        CommandBody::Esearch {
            sources,
            charset,
            criteria,
            ret,
        } => {
            let cmd = cmd::multisearch::Esearch {
                tag,
                sources: sources.as_deref(),
                charset: charset.as_deref(),
                criteria: &criteria,
                ret: ret.as_deref(),
            };
            cmd::multisearch::esearch(inner, user, sel, cmd, out).await
        }
        CommandBody::GenUrlAuth(pairs) => cmd::urlauth::genurlauth(inner, user, &pairs, out).await,
        CommandBody::ResetKey {
            mailbox,
            mechanisms,
        } => cmd::urlauth::resetkey(inner, user, mailbox.as_ref(), &mechanisms).await,
        CommandBody::UrlFetch(args) => cmd::urlauth::urlfetch(inner, user, &args, out).await,
        CommandBody::StartTls | CommandBody::Login { .. } | CommandBody::Authenticate { .. } => {
            Err(CmdError::Bad("Already logged in.".into()))
        }
        _ => Err(CmdError::Bad("No mailbox selected.".into())),
    };
    result.unwrap_or_else(Outcome::err)
}

/// A login is complete (PLAIN, LOGIN, SCRAM, OAuth alike): the account's connection limits,
/// its default mailboxes, then the OK with the capabilities.
pub(crate) async fn logged_in(inner: &mut Inner, user: User, mechanism: &'static str) -> Outcome {
    if let Err(e) = crate::gate::admit(inner, &user.name) {
        return Outcome::err(e);
    }
    if let Err(e) = first_login(inner, &user).await {
        return Outcome::err(e);
    }
    inner.mechanism = Some(mechanism);
    inner.user_name = Some(user.name.clone());
    let caps = capability::list_for(inner, true);
    Outcome::ok_code(Some(Code::Capability(caps)), "Logged in")
        .then(Transition::Authenticated(user))
}

/// The first login of a user creates INBOX and the special-use mailboxes most
/// clients look for (RFC 6154), all subscribed.
pub(crate) async fn first_login(inner: &Inner, user: &User) -> CmdResult<()> {
    const DEFAULTS: [(&str, Option<&str>); 6] = [
        ("INBOX", None),
        ("Drafts", Some("\\Drafts")),
        ("Sent", Some("\\Sent")),
        ("Trash", Some("\\Trash")),
        ("Junk", Some("\\Junk")),
        ("Archive", Some("\\Archive")),
    ];
    let store = &inner.store;
    // The store may create INBOX with the user: "first login" means nothing else exists yet.
    // (Someone who deleted every other mailbox gets the defaults back, like Dovecot's
    // `auto = create`.)
    let existing = store.list_mailboxes(user.id).await?;
    if existing.iter().any(|m| !names::is_inbox(&m.name)) {
        return Ok(());
    }
    for (name, special_use) in DEFAULTS {
        match store.create_mailbox(user.id, name, special_use).await {
            // Another session of the same user may be doing the same right now.
            Ok(_) | Err(mailkeep_store::StoreError::AlreadyExists) => {}
            Err(e) => return Err(e.into()),
        }
        store.subscribe(user.id, name).await?;
    }
    Ok(())
}

/// `ENABLE` (RFC 5161): only advertised extensions. `* ENABLED` lists every requested one that
/// is on, including those enabled before (as Dovecot does: RFC 9051 §7.2.1 only says
/// "successfully enabled").
fn enable(
    inner: &mut Inner,
    sel: Option<&mut SelectedMailbox>,
    requested: &[String],
    out: &mut Vec<u8>,
) -> Outcome {
    let mut listed: Vec<&'static str> = Vec::new();
    let condstore_before = inner.enabled.condstore;
    let e = &mut inner.enabled;
    for name in requested {
        let Some(cap) = capability::enableable(name) else {
            continue;
        };
        let flag = match cap {
            "IMAP4rev2" => &mut e.imap4rev2,
            "CONDSTORE" => &mut e.condstore,
            "QRESYNC" => {
                // RFC 7162 §3.2.3: QRESYNC is a CONDSTORE enabling command.
                e.condstore = true;
                &mut e.qresync
            }
            "UIDONLY" => &mut e.uidonly,
            _ => &mut e.utf8_accept,
        };
        *flag = true;
        if !listed.contains(&cap) {
            listed.push(cap);
        }
    }
    out.extend_from_slice(b"* ENABLED");
    for cap in &listed {
        out.push(b' ');
        out.extend_from_slice(cap.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    // RFC 7162 §3.1: the first CONDSTORE enabling command with a mailbox selected reports
    // HIGHESTMODSEQ.
    if let Some(sel) = sel
        && inner.enabled.condstore
        && !condstore_before
        && !sel.condstore
    {
        sel.condstore = true;
        cmd::write_highest_modseq(out, sel.modseq);
    }
    Outcome::ok("Enabled.")
}

/// Look up a mailbox by its client-side name; `NO [NONEXISTENT]` if missing.
pub(crate) async fn existing(inner: &Inner, user: &User, raw: &[u8]) -> CmdResult<Mailbox> {
    let name = names::decode(raw, &inner.enabled)?;
    inner
        .store
        .get_mailbox(user.id, &name)
        .await?
        .ok_or_else(|| CmdError::No(Some(Code::Nonexistent), "Mailbox doesn't exist.".into()))
}

/// SELECT / EXAMINE (RFC 9051 §6.3.2, §6.3.3; RFC 7162 §3.1.8 for CONDSTORE).
async fn select(
    inner: &mut Inner,
    user: &User,
    sel: Option<&mut SelectedMailbox>,
    raw: &MailboxName,
    params: &SelectParams,
    examine: bool,
    out: &mut Vec<u8>,
) -> Outcome {
    if sel.is_some() {
        // RFC 9051 §6.3.2: the old mailbox is closed whatever the outcome.
        write::status(
            out,
            None,
            StatusKind::Ok,
            Some(&Code::Closed),
            "Previous mailbox closed.",
        );
    }
    if params.qresync.is_some() && !inner.enabled.qresync {
        // RFC 7162 §3.2.5: QRESYNC parameter without ENABLE QRESYNC.
        return Outcome::bad("QRESYNC not enabled.").then(Transition::Unselect);
    }
    if let Some(q) = &params.qresync
        && let Err(e) = cmd::qresync::check_params(q)
    {
        return Outcome::err(e).then(Transition::Unselect);
    }
    match open(inner, user, raw, params, examine, out).await {
        Ok(new) => {
            let code = if new.read_only {
                Code::ReadOnly
            } else {
                Code::ReadWrite
            };
            let text = if examine {
                "Examine completed."
            } else {
                "Select completed."
            };
            Outcome::ok_code(Some(code), text).then(Transition::Select(Box::new(new)))
        }
        Err(e) => Outcome::err(e).then(Transition::Unselect),
    }
}

async fn open(
    inner: &mut Inner,
    user: &User,
    raw: &MailboxName,
    params: &SelectParams,
    examine: bool,
    out: &mut Vec<u8>,
) -> CmdResult<SelectedMailbox> {
    let mbox = existing(inner, user, raw).await?;
    let store = &inner.store;
    // Subscribe before loading so no change between the two is missed; a change already in
    // the loaded view is recognized later by its modseq and skipped.
    let subscription = store.notifier().subscribe(mbox.id);
    let messages = store.messages(mbox.id).await?;
    let recent = store.claim_recent(mbox.id, !examine).await?;
    if params.condstore {
        inner.enabled.condstore = true;
    }
    let condstore = inner.enabled.condstore;
    let rev1 = !inner.enabled.imap4rev2;
    let mut sel = SelectedMailbox::new(
        mbox,
        examine,
        messages,
        recent.into_iter().collect(),
        condstore,
        subscription,
    );
    let uidnext = sel
        .mailbox
        .uidnext
        .max(sel.messages.last().map_or(1, |m| m.uid.saturating_add(1)));

    sel.write_flag_lists(out, true);
    out.extend_from_slice(format!("* {} EXISTS\r\n", sel.exists()).as_bytes());
    if rev1 {
        // \Recent and UNSEEN are gone from IMAP4rev2 (RFC 9051 Appendix E).
        out.extend_from_slice(format!("* {} RECENT\r\n", sel.recent.len()).as_bytes());
        let first_unseen = sel
            .messages
            .iter()
            .position(|m| m.flags.system & mailkeep_store::flags::SEEN == 0);
        if let Some(i) = first_unseen {
            write::status(
                out,
                None,
                StatusKind::Ok,
                Some(&Code::Other(format!("UNSEEN {}", i + 1))),
                "First unseen.",
            );
        }
    }
    write::status(
        out,
        None,
        StatusKind::Ok,
        Some(&Code::UidValidity(sel.mailbox.uidvalidity)),
        "UIDs valid",
    );
    write::status(
        out,
        None,
        StatusKind::Ok,
        Some(&Code::UidNext(uidnext)),
        "Predicted next UID",
    );
    // RFC 8474 §4.1: the MAILBOXID of every selected mailbox.
    write::status(
        out,
        None,
        StatusKind::Ok,
        Some(&cmd::objectid::mailbox_id_code(&sel.mailbox)),
        "Ok",
    );
    if !rev1 {
        // RFC 9051 §6.3.2: IMAP4rev2 requires a LIST response for the selected mailbox.
        list::write_selected(inner, user, &sel.mailbox, out).await?;
    }
    if condstore {
        cmd::write_highest_modseq(out, sel.modseq);
    }
    sel.mailbox.uidnext = uidnext;
    if let Some(q) = &params.qresync {
        cmd::qresync::select_answer(&**store, &sel, q, rev1, inner.enabled.uidonly, out).await?;
    }
    Ok(sel)
}

/// CREATE (RFC 9051 §6.3.4) with USE (RFC 6154 §3); missing parents are created too.
async fn create(
    inner: &Inner,
    user: &User,
    raw: &[u8],
    special_use: &[String],
) -> CmdResult<Outcome> {
    let name = names::for_create(&names::decode(raw, &inner.enabled)?)?;
    if names::is_inbox(&name) {
        return Err(CmdError::No(
            Some(Code::AlreadyExists),
            "Mailbox already exists.".into(),
        ));
    }
    let special_use = match special_use {
        [] => None,
        [one] => Some(special_use_attr(one)?),
        _ => return Err(use_attr_error()),
    };
    let store = &inner.store;
    if store.get_mailbox(user.id, &name).await?.is_some() {
        return Err(CmdError::No(
            Some(Code::AlreadyExists),
            "Mailbox already exists.".into(),
        ));
    }
    check_mailbox_limit(inner, user, &name, 1).await?;
    create_parents(inner, user, &name).await?;
    let created = store.create_mailbox(user.id, &name, special_use).await?;
    // RFC 8474 §4.1: CREATE's OK carries the new mailbox's MAILBOXID.
    Ok(Outcome::ok_code(
        Some(cmd::objectid::mailbox_id_code(&created)),
        "Create completed.",
    ))
}

fn use_attr_error() -> CmdError {
    CmdError::No(
        Some(Code::Other("USEATTR".into())),
        "Unsupported special-use attribute.".into(),
    )
}

/// The attributes a real mailbox can carry (\All and \Flagged would need virtual mailboxes).
/// \Important (RFC 8457 §3) marks a mailbox the user keeps important messages in.
fn special_use_attr(attr: &str) -> CmdResult<&'static str> {
    [
        "\\Archive",
        "\\Drafts",
        "\\Important",
        "\\Junk",
        "\\Sent",
        "\\Trash",
    ]
    .into_iter()
    .find(|a| a.eq_ignore_ascii_case(attr))
    .ok_or_else(use_attr_error)
}

/// `NO [LIMIT]` if creating `extra` mailboxes plus the missing parents of `name` would take
/// the account past `max_mailboxes`.
async fn check_mailbox_limit(
    inner: &Inner,
    user: &User,
    name: &str,
    extra: usize,
) -> CmdResult<()> {
    let all = inner.store.list_mailboxes(user.id).await?;
    let missing = names::parents(name)
        .filter(|p| !all.iter().any(|m| m.name == *p))
        .count();
    if all.len() + missing + extra > inner.config.max_mailboxes {
        return Err(CmdError::No(
            Some(Code::Limit),
            format!(
                "Too many mailboxes (at most {}).",
                inner.config.max_mailboxes
            ),
        ));
    }
    Ok(())
}

async fn create_parents(inner: &Inner, user: &User, name: &str) -> CmdResult<()> {
    for parent in names::parents(name) {
        if inner.store.get_mailbox(user.id, parent).await?.is_none() {
            match inner.store.create_mailbox(user.id, parent, None).await {
                Ok(_) | Err(mailkeep_store::StoreError::AlreadyExists) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// DELETE (RFC 9051 §6.3.5). A mailbox with children is refused like Dovecot does, rather
/// than turned into a \Noselect placeholder.
async fn delete(
    inner: &Inner,
    user: &User,
    sel: Option<&mut SelectedMailbox>,
    raw: &[u8],
    out: &mut Vec<u8>,
) -> CmdResult<Outcome> {
    let mbox = existing(inner, user, raw).await?;
    if names::is_inbox(&mbox.name) {
        return Err(CmdError::No(
            Some(Code::Cannot),
            "INBOX can't be deleted.".into(),
        ));
    }
    let all = inner.store.list_mailboxes(user.id).await?;
    if all.iter().any(|m| names::is_child_of(&m.name, &mbox.name)) {
        return Err(CmdError::No(
            Some(Code::HasChildren),
            "Mailbox has children, delete them first.".into(),
        ));
    }
    inner.store.delete_mailbox(user.id, mbox.id).await?;
    let outcome = Outcome::ok("Delete completed.");
    // Deleting the selected mailbox leaves nothing selected; say so as SELECT of another
    // mailbox would (RFC 9051 §7.1 CLOSED), rather than let the next FETCH fail unexplained.
    Ok(match sel {
        Some(s) if s.mailbox.id == mbox.id => {
            write::status(
                out,
                None,
                StatusKind::Ok,
                Some(&Code::Closed),
                "Selected mailbox deleted.",
            );
            outcome.then(Transition::Unselect)
        }
        _ => outcome,
    })
}

/// RENAME (RFC 9051 §6.3.6): children follow; renaming INBOX moves its messages into a new
/// mailbox and leaves INBOX empty. Subscriptions follow the names (as in Dovecot).
async fn rename(
    inner: &Inner,
    user: &User,
    sel: Option<&mut SelectedMailbox>,
    raw_from: &[u8],
    raw_to: &[u8],
) -> CmdResult<Outcome> {
    let src = existing(inner, user, raw_from).await?;
    let to = names::for_create(&names::decode(raw_to, &inner.enabled)?)?;
    let store = &inner.store;
    let exists = || {
        CmdError::No(
            Some(Code::AlreadyExists),
            "Target mailbox already exists.".into(),
        )
    };
    if names::is_inbox(&to) || store.get_mailbox(user.id, &to).await?.is_some() {
        return Err(exists());
    }
    if names::is_inbox(&src.name) {
        check_mailbox_limit(inner, user, &to, 1).await?;
        create_parents(inner, user, &to).await?;
        let dst = store.create_mailbox(user.id, &to, None).await?;
        let uids: Vec<u32> = store
            .messages(src.id)
            .await?
            .iter()
            .map(|m| m.uid)
            .collect();
        if !uids.is_empty() {
            store.move_messages(src.id, &uids, dst.id).await?;
        }
        return Ok(Outcome::ok("Rename completed."));
    }
    if names::is_child_of(&to, &src.name) {
        return Err(CmdError::No(
            Some(Code::Cannot),
            "Can't rename mailbox under its own child.".into(),
        ));
    }
    let all = store.list_mailboxes(user.id).await?;
    if all.iter().any(|m| names::is_child_of(&m.name, &to)) {
        return Err(exists());
    }
    let renamed = |old: &str| format!("{to}{}", &old[src.name.len()..]);
    // The children's new names (and the subscriptions that follow them) must be valid names
    // too: check them all before anything is renamed.
    let subscriptions = store.subscriptions(user.id).await?;
    let moved_subs: Vec<&String> = subscriptions
        .iter()
        .filter(|n| **n == src.name || names::is_child_of(n, &src.name))
        .collect();
    for old in all
        .iter()
        .map(|m| &m.name)
        .filter(|n| names::is_child_of(n, &src.name))
        .chain(moved_subs.iter().copied())
    {
        names::check_size(&renamed(old))?;
    }
    check_mailbox_limit(inner, user, &to, 0).await?;
    create_parents(inner, user, &to).await?;
    store.rename_mailbox(user.id, src.id, &to).await?;
    for child in all
        .iter()
        .filter(|m| names::is_child_of(&m.name, &src.name))
    {
        store
            .rename_mailbox(user.id, child.id, &renamed(&child.name))
            .await?;
    }
    for name in moved_subs {
        store.unsubscribe(user.id, name).await?;
        store.subscribe(user.id, &renamed(name)).await?;
    }
    if let Some(s) = sel
        && (s.mailbox.id == src.id || names::is_child_of(&s.mailbox.name, &src.name))
    {
        s.mailbox.name = renamed(&s.mailbox.name);
    }

    Ok(Outcome::ok("Rename completed."))
}

/// SUBSCRIBE / UNSUBSCRIBE (RFC 9051 §6.3.7, §6.3.8): names, whether or not they exist.
/// SUBSCRIBE takes only names CREATE would take, and at most `max_subscriptions` of them;
/// UNSUBSCRIBE takes any name, so one stored before these checks can still be removed.
async fn subscribe(inner: &Inner, user: &User, raw: &[u8], on: bool) -> CmdResult<Outcome> {
    if on {
        let name = names::for_create(&names::decode(raw, &inner.enabled)?)?;
        let subs = inner.store.subscriptions(user.id).await?;
        let max = inner.config.max_subscriptions;
        if subs.len() >= max && !subs.contains(&name) {
            return Err(CmdError::No(
                Some(Code::Limit),
                format!("Too many subscriptions (at most {max})."),
            ));
        }
        inner.store.subscribe(user.id, &name).await?;
        Ok(Outcome::ok("Subscribe completed."))
    } else {
        let name = names::decode_lenient(raw, &inner.enabled)?;
        let name = name.trim_end_matches(names::SEP);
        inner.store.unsubscribe(user.id, name).await?;
        Ok(Outcome::ok("Unsubscribe completed."))
    }
}

/// `COMPRESS DEFLATE` (RFC 4978 §3): the OK goes out uncompressed, then the server compresses
/// both directions ([`Flow::Compress`]). Only after login, as Dovecot: before it, compression
/// would only let a client send more for its pre-login budget.
fn compress(inner: &mut Inner, mechanism: &str) -> Outcome {
    match inner.compress {
        _ if mechanism != "DEFLATE" => Outcome::bad("Unknown compression mechanism."),
        CompressState::Active => Outcome::err(CmdError::No(
            Some(Code::Other("COMPRESSIONACTIVE".into())),
            "DEFLATE is already active.".into(),
        )),
        CompressState::Unavailable => Outcome::bad("COMPRESS is not available."),
        CompressState::Available => {
            inner.compress = CompressState::Active;
            Outcome::ok("DEFLATE active.").flow(Flow::Compress)
        }
    }
}
