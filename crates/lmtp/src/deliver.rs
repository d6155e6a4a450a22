//! Delivery: a received message made ready once (CRLF, analysis) and appended to every
//! recipient's mailbox, sharing one stored body.

use std::sync::Arc;

use mailkeep_store::{Flags, MailStore, MessageBytes, NewMessage, StoreError, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    TooBig,
    OverQuota,
    Storage,
}

/// Messages up to this size go to several mailboxes at once; bigger ones one mailbox at a time
/// (each append hashes and packs the message, which takes memory and CPU in proportion).
const CONCURRENT_MAX: usize = 1 << 20;
/// Mailboxes a small message is appended to at once.
const CONCURRENT_TARGETS: usize = 32;

/// Appends `message` to every target (distinct mailboxes), one result each, in order.
///
/// The store keeps one body for identical messages and takes its search text from the append
/// that creates it; later appends of the same bytes only add a reference. So the first
/// target gets the message with its search text (again and again, one at a time, until one
/// append succeeds) and the others a copy without it: a message for many recipients does not
/// hold its decoded text once per recipient. Appends to different mailboxes that run at the
/// same time share the writer's fsyncs (group commit).
pub(crate) async fn append_all(
    store: &Arc<dyn MailStore>,
    targets: &[(UserId, String)],
    message: NewMessage,
) -> Vec<Result<(), Failure>> {
    let n = targets.len();
    let mut results = Vec::with_capacity(n);
    let light = without_search_text(&message);
    let mut full = message;
    let mut next = 0;
    while next < n {
        let r = append_one(store.clone(), targets[next].clone(), full).await;
        next += 1;
        let ok = r.is_ok();
        results.push(r);
        if ok || next == n {
            break;
        }
        // Rare (that account is gone, over quota, a fault): analyze again for the next one
        // rather than hold a second copy of the text all along.
        full = match reanalyze(&light).await {
            Some(m) => m,
            None => {
                results.resize(n, Err(Failure::Storage));
                return results;
            }
        };
    }
    let size = match &light.data {
        MessageBytes::Memory(d) => d.len(),
        MessageBytes::File(_) | MessageBytes::Received { .. } => usize::MAX,
    };
    let window = if size <= CONCURRENT_MAX {
        CONCURRENT_TARGETS
    } else {
        1
    };
    for group in targets[next..].chunks(window) {
        let tasks: Vec<_> = group
            .iter()
            .map(|t| tokio::spawn(append_one(store.clone(), t.clone(), light.clone())))
            .collect();
        for t in tasks {
            results.push(t.await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "LMTP delivery task failed");
                Err(Failure::Storage)
            }));
        }
    }
    results
}

/// Appends to the user's `mailbox`, or INBOX if that folder went away since RCPT. The mailbox
/// is looked up by the store's writer in the append's own transaction (`append_to`): no read
/// before it.
async fn append_one(
    store: Arc<dyn MailStore>,
    (user, mailbox): (UserId, String),
    m: NewMessage,
) -> Result<(), Failure> {
    let r = async {
        if mailbox != "INBOX" {
            // A `+detail` folder: rare, so the copy kept for INBOX does not matter.
            if let Some(done) = store.append_to(user, &mailbox, vec![m.clone()]).await? {
                return Ok(done);
            }
        }
        store
            .append_to(user, "INBOX", vec![m])
            .await?
            .ok_or(StoreError::NoSuchUser)
    };
    match r.await {
        Ok(_) => Ok(()),
        Err(StoreError::OverQuota) => Err(Failure::OverQuota),
        Err(e) => {
            tracing::warn!(error = %e, user, "LMTP delivery failed");
            Err(Failure::Storage)
        }
    }
}

/// `m` (a copy without search text) with its analysis done again.
async fn reanalyze(m: &NewMessage) -> Option<NewMessage> {
    let MessageBytes::Memory(data) = &m.data else {
        return None;
    };
    let data2 = data.clone();
    let parsed = tokio::task::spawn_blocking(move || {
        mailkeep_session::parsed_info(mailkeep_mime::analyze(&data2))
    })
    .await
    .ok()?;
    Some(NewMessage {
        data: MessageBytes::Memory(data.clone()),
        parsed,
        ..m.clone()
    })
}

fn without_search_text(m: &NewMessage) -> NewMessage {
    let p = &m.parsed;
    NewMessage {
        data: m.data.clone(),
        flags: m.flags.clone(),
        internal_date: m.internal_date,
        internal_date_offset: m.internal_date_offset,
        parsed: mailkeep_store::ParsedInfo {
            envelope: p.envelope.clone(),
            bodystructure: p.bodystructure.clone(),
            body: p.body.clone(),
            parts: p.parts.clone(),
            search_text: String::new(),
            search_body_offset: 0,
            sent_date: p.sent_date,
        },
    }
}

/// Messages up to this size are analyzed on the session's own thread.
const ANALYZE_INLINE_MAX: usize = 64 << 10;

/// CRLF-normalizes the message (copying it only if it has a bare LF) and analyzes it once.
pub(crate) async fn prepare(data: Vec<u8>) -> Result<NewMessage, String> {
    let small = data.len() <= ANALYZE_INLINE_MAX;
    let build = move || {
        let data = match mailkeep_mime::normalize_crlf(&data) {
            std::borrow::Cow::Borrowed(_) => data,
            std::borrow::Cow::Owned(v) => v,
        };
        let parsed = mailkeep_session::parsed_info(mailkeep_mime::analyze(&data));
        (data, parsed)
    };
    let (data, parsed) = if small {
        build()
    } else {
        tokio::task::spawn_blocking(build)
            .await
            .map_err(|e| e.to_string())?
    };
    let now = chrono::Local::now();
    Ok(NewMessage {
        data: MessageBytes::Memory(Arc::new(data)),
        flags: Flags::default(),
        internal_date: now.timestamp(),
        internal_date_offset: now.offset().local_minus_utc() / 60,
        parsed,
    })
}
