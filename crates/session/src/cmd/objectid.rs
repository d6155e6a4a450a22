//! OBJECTID (RFC 8474), SAVEDATE (RFC 8514) and PREVIEW (RFC 8970): the response code and
//! FETCH items; the SEARCH keys are in `search::key` / `search::eval`.

use chrono::{Local, Offset, TimeZone};
use mailkeep_proto::write::{self, Code};
use mailkeep_store::{Mailbox, MessageObjects};

/// `MAILBOXID (id)` for SELECT/EXAMINE's untagged OK and CREATE's tagged OK (RFC 8474 §4.1).
pub(crate) fn mailbox_id_code(mailbox: &Mailbox) -> Code {
    Code::Other(format!(
        "MAILBOXID ({})",
        mailkeep_store::mailbox_object_id(mailbox)
    ))
}

/// The server's zone offset (minutes) at `unix`: save dates are written in local time, as
/// INTERNALDATE of an APPEND without a date is.
pub(crate) fn local_offset_minutes(unix: i64) -> i32 {
    Local
        .timestamp_opt(unix, 0)
        .single()
        .map_or(0, |t| t.offset().fix().local_minus_utc() / 60)
}

/// `EMAILID (id)`, `THREADID (id)` / `THREADID NIL`, `SAVEDATE "date-time"`.
pub(crate) fn write_object_item(out: &mut Vec<u8>, item: Item, o: Option<&MessageObjects>) {
    match item {
        Item::EmailId => {
            out.extend_from_slice(b"EMAILID ");
            match o {
                Some(o) => out.extend_from_slice(format!("({})", o.email_id).as_bytes()),
                None => out.extend_from_slice(b"NIL"),
            }
        }
        Item::ThreadId => {
            out.extend_from_slice(b"THREADID ");
            match o.and_then(|o| o.thread_id.as_deref()) {
                Some(t) => out.extend_from_slice(format!("({t})").as_bytes()),
                None => out.extend_from_slice(b"NIL"),
            }
        }
        Item::SaveDate => {
            out.extend_from_slice(b"SAVEDATE ");
            match o {
                Some(o) => {
                    write::date_time(out, o.save_date, local_offset_minutes(o.save_date));
                }
                None => out.extend_from_slice(b"NIL"),
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Item {
    EmailId,
    ThreadId,
    SaveDate,
}

/// `PREVIEW "text"` (a literal when it cannot be quoted), or `PREVIEW NIL` for a LAZY
/// request whose preview was not kept (RFC 8970 §4.1).
pub(crate) fn write_preview(out: &mut Vec<u8>, preview: Option<&str>, utf8: bool) {
    out.extend_from_slice(b"PREVIEW ");
    match preview {
        Some(p) => write::string(out, p.as_bytes(), utf8),
        None => out.extend_from_slice(b"NIL"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items() {
        let o = MessageObjects {
            email_id: "Mabc".into(),
            thread_id: None,
            save_date: 0,
        };
        let mut out = Vec::new();
        write_object_item(&mut out, Item::EmailId, Some(&o));
        out.push(b' ');
        write_object_item(&mut out, Item::ThreadId, Some(&o));
        assert_eq!(out, b"EMAILID (Mabc) THREADID NIL");
        let mut out = Vec::new();
        write_preview(&mut out, Some("caf\u{e9}"), false);
        assert_eq!(out, "PREVIEW {5}\r\ncaf\u{e9}".as_bytes());
        let mut out = Vec::new();
        write_preview(&mut out, None, true);
        assert_eq!(out, b"PREVIEW NIL");
    }
}
