//! MULTISEARCH (RFC 7377): `ESEARCH [IN (sources)] [RETURN (...)] program`, in the
//! authenticated and the selected state.
//!
//! Each mailbox the sources name is searched in turn (the selected one in the session's own
//! view, any other in a view loaded for the command and dropped after it), and answered with
//! `* ESEARCH (TAG "t" MAILBOX "m" UIDVALIDITY n) UID ...` when something matched (§2.1).
//! Names that do not exist are skipped without a word (§2.2: not told apart from mailboxes the
//! user may not read). One time budget covers the whole command: past it `NO [LIMIT]` (§2.4).

use std::collections::HashSet;
use std::time::Instant;

use mailkeep_proto::write;
use mailkeep_proto::{SearchKey, SearchReturn, SearchSource};
use mailkeep_store::{Mailbox, User};

use super::search::{self, context, esearch};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::selected::SelectedMailbox;
use crate::{Inner, Outcome, names};

/// One ESEARCH command's arguments.
pub(crate) struct Esearch<'a> {
    pub tag: &'a str,
    pub sources: Option<&'a [SearchSource]>,
    pub charset: Option<&'a str>,
    pub criteria: &'a SearchKey,
    pub ret: Option<&'a [SearchReturn]>,
}

pub(crate) async fn esearch(
    inner: &Inner,
    user: &User,
    mut sel: Option<&mut SelectedMailbox>,
    cmd: Esearch<'_>,
    out: &mut Vec<u8>,
) -> CmdResult<Outcome> {
    let default = [SearchSource::Selected];
    let sources = cmd.sources.unwrap_or(&default);
    let has_selected = sources.contains(&SearchSource::Selected);
    let has = |r: SearchReturn| cmd.ret.is_some_and(|ret| ret.contains(&r));
    // §2.2: "selected" needs the selected state; SAVE only with "selected" alone; UPDATE only
    // with a mailbox selected.
    if (has_selected || has(SearchReturn::Update)) && sel.is_none() {
        return Err(CmdError::Bad("No mailbox selected.".into()));
    }
    if has(SearchReturn::Save) && sources.iter().any(|s| *s != SearchSource::Selected) {
        return Err(CmdError::Bad(
            "SAVE is only allowed when searching the selected mailbox alone.".into(),
        ));
    }
    if let Some(sel) = sel.as_deref() {
        context::check_tag(sel, cmd.tag, cmd.ret)?;
    }
    let selected_id = sel.as_deref().map(|s| s.mailbox.id);
    let mailboxes = resolve(inner, user, sources, selected_id).await?;
    let deadline = Instant::now() + search::SEARCH_TIME_BUDGET;
    let shown = match cmd.ret {
        Some(ret) => context::shown(ret),
        None => Some(Vec::new()),
    };
    let mut update_kept = false;
    for mbox in mailboxes {
        if Some(mbox.id) == selected_id {
            let Some(sel) = sel.as_deref_mut() else {
                continue;
            };
            let mut ctx = Ctx {
                store: &inner.store,
                enabled: &inner.enabled,
                orders: &inner.orders,
                user,
                sel,
            };
            let result = search::run_until(&ctx, cmd.charset, cmd.criteria, deadline).await;
            let m = search::matches(&mut ctx, true, cmd.ret, result, out)?;
            if let Some(ret) = cmd.ret.filter(|_| has(SearchReturn::Save)) {
                ctx.sel.saved = esearch::saved_subset(ret, &m.uids);
            }
            if let Some(shown) = &shown {
                write(out, &cmd, &ctx.sel.mailbox, inner, shown, &m.uids, m.modseq);
            }
            if has(SearchReturn::Update) {
                let new = context::NewContext {
                    tag: cmd.tag,
                    uid: true,
                    correlators: correlators(&ctx.sel.mailbox, inner),
                    charset: cmd.charset,
                    program: cmd.criteria,
                    sort: None,
                    results: m.uids,
                };
                context::register(ctx.sel, inner.max_search_contexts, new, out);
                update_kept = true;
            }
        } else {
            // A view of this mailbox for this command only.
            let subscription = inner.store.notifier().subscribe(mbox.id);
            let messages = inner.store.messages(mbox.id).await?;
            let mut view =
                SelectedMailbox::new(mbox, true, messages, HashSet::new(), false, subscription);
            let ctx = Ctx {
                store: &inner.store,
                enabled: &inner.enabled,
                orders: &inner.orders,
                user,
                sel: &mut view,
            };
            let (idx, modseq_key) =
                search::run_until(&ctx, cmd.charset, cmd.criteria, deadline).await?;
            let modseq = modseq_key
                .then(|| {
                    search::returned(cmd.ret, &idx)
                        .map(|i| ctx.sel.messages[i].modseq)
                        .max()
                })
                .flatten();
            let uids: Vec<u32> = idx.iter().map(|&i| ctx.sel.messages[i].uid).collect();
            if let Some(shown) = &shown {
                write(out, &cmd, &ctx.sel.mailbox, inner, shown, &uids, modseq);
            }
        }
    }
    if has(SearchReturn::Update) && !update_kept {
        // §2.2: UPDATE applies to the selected mailbox only, which was not searched.
        context::refuse(
            out,
            cmd.tag,
            "Updates are only kept for the selected mailbox.",
        );
    }
    Ok(Outcome::ok("ESEARCH completed."))
}

/// ` MAILBOX "m" UIDVALIDITY n` (RFC 7377 §4 `one-correlator`).
fn correlators(mbox: &Mailbox, inner: &Inner) -> String {
    let mut name = Vec::new();
    write::string(
        &mut name,
        names::encode(&mbox.name, &inner.enabled).as_bytes(),
        true,
    );
    format!(
        " MAILBOX {} UIDVALIDITY {}",
        String::from_utf8_lossy(&name),
        mbox.uidvalidity
    )
}

/// One mailbox's answer, only if something matched (§2.1).
fn write(
    out: &mut Vec<u8>,
    cmd: &Esearch<'_>,
    mbox: &Mailbox,
    inner: &Inner,
    shown: &[SearchReturn],
    uids: &[u32],
    modseq: Option<u64>,
) {
    if uids.is_empty() {
        return;
    }
    let corr = correlators(mbox, inner);
    esearch::write_esearch_with(out, Some(cmd.tag), &corr, true, shown, uids, modseq);
}

/// The mailboxes the sources name, each once, in the order first named. The selected one is
/// `selected`; names that do not exist (or cannot be decoded) name nothing.
async fn resolve(
    inner: &Inner,
    user: &User,
    sources: &[SearchSource],
    selected: Option<i64>,
) -> CmdResult<Vec<Mailbox>> {
    let all = inner.store.list_mailboxes(user.id).await?;
    let mut seen = HashSet::new();
    let mut picked: Vec<Mailbox> = Vec::new();
    let mut pick = |m: &Mailbox, picked: &mut Vec<Mailbox>| {
        if seen.insert(m.id) {
            picked.push(m.clone());
        }
    };
    let decode = |raw: &Vec<u8>| names::decode(raw, &inner.enabled).ok();
    for source in sources {
        match source {
            SearchSource::Selected => {
                for m in all.iter().filter(|m| Some(m.id) == selected) {
                    pick(m, &mut picked);
                }
            }
            // Mail is delivered to INBOX only.
            SearchSource::Inboxes => {
                for m in all.iter().filter(|m| names::is_inbox(&m.name)) {
                    pick(m, &mut picked);
                }
            }
            SearchSource::Personal => {
                for m in &all {
                    pick(m, &mut picked);
                }
            }
            SearchSource::Subscribed => {
                let subs: HashSet<String> = inner
                    .store
                    .subscriptions(user.id)
                    .await?
                    .into_iter()
                    .collect();
                for m in all.iter().filter(|m| subs.contains(&m.name)) {
                    pick(m, &mut picked);
                }
            }
            SearchSource::Mailboxes(list) => {
                for name in list.iter().filter_map(decode) {
                    for m in all.iter().filter(|m| m.name == name) {
                        pick(m, &mut picked);
                    }
                }
            }
            SearchSource::Subtree(list) | SearchSource::SubtreeOne(list) => {
                let one = matches!(source, SearchSource::SubtreeOne(_));
                for name in list.iter().filter_map(decode) {
                    for m in all.iter().filter(|m| in_subtree(&m.name, &name, one)) {
                        pick(m, &mut picked);
                    }
                }
            }
        }
    }
    Ok(picked)
}

/// `name` is `root` or below it (only one level down with `one_level`, RFC 7377 §2.2).
fn in_subtree(name: &str, root: &str, one_level: bool) -> bool {
    if name == root {
        return true;
    }
    if !names::is_child_of(name, root) {
        return false;
    }
    !one_level || !name[root.len() + 1..].contains(names::SEP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtrees() {
        assert!(in_subtree("folder2", "folder2", true));
        assert!(in_subtree("folder2/banana", "folder2", true));
        assert!(!in_subtree("folder2/banana/x", "folder2", true));
        assert!(in_subtree("folder2/banana/x", "folder2", false));
        assert!(!in_subtree("folder20", "folder2", false));
        assert!(!in_subtree("folder", "folder2", false));
    }
}
