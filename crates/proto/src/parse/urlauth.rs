//! URLAUTH (RFC 4467 §9) and URLAUTH=BINARY (RFC 5524 §4):
//!
//! ```abnf
//! genurlauth      = "GENURLAUTH" 1*(SP url-rump SP mechanism)
//! resetkey        = "RESETKEY" [SP mailbox *(SP mechanism)]
//! urlfetch        = "URLFETCH" 1*(SP url-fetch-param)            ; RFC 5524
//! url-fetch-param = url-full / "(" url-full *(SP url-fetch-item) ")"
//! url-fetch-item  = "BODYPARTSTRUCTURE" / "BINARY" / "BODY"
//! mechanism       = "INTERNAL" / 1*(ALPHA / DIGIT / "-" / ".")
//! ```
//!
//! The URLs are astrings, kept as sent: the token covers them byte for byte (RFC 4467 §6).

use super::cursor::{Cursor, PResult, err};
use crate::types::{CommandBody, UrlFetchArg};

/// At most this many URLs in one GENURLAUTH or URLFETCH.
pub(crate) const MAX_URLS: usize = 100;

fn mechanism(c: &mut Cursor<'_>) -> PResult<String> {
    let m = c.atom()?;
    if !m
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
    {
        return err("Invalid URLAUTH mechanism name");
    }
    Ok(String::from_utf8_lossy(m).to_ascii_uppercase())
}

pub(crate) fn genurlauth(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mut pairs = Vec::new();
    loop {
        if pairs.len() >= MAX_URLS {
            return err("Too many URLs");
        }
        c.sp()?;
        let url = c.astring()?;
        c.sp()?;
        pairs.push((url, mechanism(c)?));
        if c.at_line_end() {
            return Ok(CommandBody::GenUrlAuth(pairs));
        }
    }
}

pub(crate) fn resetkey(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    if c.at_line_end() {
        return Ok(CommandBody::ResetKey {
            mailbox: None,
            mechanisms: Vec::new(),
        });
    }
    c.sp()?;
    let mailbox = c.astring()?;
    let mut mechanisms = Vec::new();
    while !c.at_line_end() {
        if mechanisms.len() >= 16 {
            return err("Too many mechanisms");
        }
        c.sp()?;
        mechanisms.push(mechanism(c)?);
    }
    Ok(CommandBody::ResetKey {
        mailbox: Some(mailbox),
        mechanisms,
    })
}

pub(crate) fn urlfetch(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mut args = Vec::new();
    loop {
        if args.len() >= MAX_URLS {
            return err("Too many URLs");
        }
        c.sp()?;
        if c.eat(b'(') {
            let url = c.astring()?;
            let mut arg = UrlFetchArg {
                url,
                extended: true,
                ..Default::default()
            };
            while !c.eat(b')') {
                c.sp()?;
                let item = c.atom()?.to_ascii_uppercase();
                let seen = match &item[..] {
                    b"BODYPARTSTRUCTURE" => &mut arg.bodypartstructure,
                    b"BINARY" => &mut arg.binary,
                    b"BODY" => &mut arg.body,
                    _ => return err("Unknown URLFETCH parameter"),
                };
                if std::mem::replace(seen, true) {
                    return err("URLFETCH parameter given twice");
                }
            }
            if arg.binary && arg.body {
                return err("URLFETCH takes BINARY or BODY, not both");
            }
            args.push(arg);
        } else {
            args.push(UrlFetchArg {
                url: c.astring()?,
                ..Default::default()
            });
        }
        if c.at_line_end() {
            return Ok(CommandBody::UrlFetch(args));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::frame::Fragment;
    use crate::types::{CommandBody, UrlFetchArg};

    fn parse(line: &str) -> Result<CommandBody, String> {
        let frags = [Fragment::Line(format!("{line}\r\n").into_bytes())];
        crate::parse_command(&frags)
            .map(|c| c.body)
            .map_err(|e| e.message)
    }

    #[test]
    fn commands() {
        assert_eq!(
            parse(
                r#"a GENURLAUTH "imap://joe@h/INBOX/;uid=20;urlauth=anonymous" internal u2 X-Y.1"#
            ),
            Ok(CommandBody::GenUrlAuth(vec![
                (
                    b"imap://joe@h/INBOX/;uid=20;urlauth=anonymous".to_vec(),
                    "INTERNAL".into()
                ),
                (b"u2".to_vec(), "X-Y.1".into()),
            ]))
        );
        assert_eq!(
            parse("a RESETKEY"),
            Ok(CommandBody::ResetKey {
                mailbox: None,
                mechanisms: vec![]
            })
        );
        assert_eq!(
            parse("a RESETKEY INBOX internal"),
            Ok(CommandBody::ResetKey {
                mailbox: Some(b"INBOX".to_vec()),
                mechanisms: vec!["INTERNAL".into()]
            })
        );
        let url = |u: &str| UrlFetchArg {
            url: u.as_bytes().to_vec(),
            ..Default::default()
        };
        assert_eq!(
            parse(r#"a URLFETCH "u1" ("u2" BODYPARTSTRUCTURE binary) u3 ("u4")"#),
            Ok(CommandBody::UrlFetch(vec![
                url("u1"),
                UrlFetchArg {
                    extended: true,
                    bodypartstructure: true,
                    binary: true,
                    ..url("u2")
                },
                url("u3"),
                UrlFetchArg {
                    extended: true,
                    ..url("u4")
                },
            ]))
        );
        for bad in [
            "a GENURLAUTH",
            "a GENURLAUTH u",
            "a GENURLAUTH u INT_ERNAL",
            "a RESETKEY INBOX a+b",
            "a URLFETCH",
            "a URLFETCH (u FOO)",
            "a URLFETCH (u BODY BODY)",
            "a URLFETCH (u BODY BINARY)",
            "a URLFETCH (u",
            "a URLFETCH u ",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let many = format!("a URLFETCH{}", " u".repeat(super::MAX_URLS + 1));
        assert!(parse(&many).unwrap_err().contains("Too many URLs"));
    }
}
