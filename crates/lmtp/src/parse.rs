//! LMTP command lines (RFC 2033, with RFC 5321's syntax for MAIL and RCPT): case-insensitive
//! verbs, `<path>` arguments and `KEY=VALUE` parameters.

/// One command line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Lhlo,
    /// HELO / EHLO: not LMTP (RFC 2033 §4.1).
    Helo,
    Mail {
        from: String,
        size: Option<u64>,
        body: Body,
    },
    Rcpt {
        to: String,
    },
    Data,
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Vrfy,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
}

/// Why a line is not a valid command: the reply code and enhanced status to give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad {
    pub code: u16,
    pub status: &'static str,
    pub text: &'static str,
}

const fn bad(code: u16, status: &'static str, text: &'static str) -> Bad {
    Bad { code, status, text }
}

/// Longest address accepted (RFC 5321 §4.5.3.1.3: a path is at most 256 octets).
pub const MAX_PATH: usize = 256;

/// Parses a line without its line ending.
pub fn command(line: &[u8]) -> Result<Command, Bad> {
    let Ok(line) = std::str::from_utf8(line) else {
        return Err(bad(500, "5.5.2", "Syntax error: not UTF-8"));
    };
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    let verb = verb.to_ascii_uppercase();
    match verb.as_str() {
        "LHLO" => {
            if rest.trim().is_empty() {
                Err(bad(501, "5.5.4", "LHLO needs a host name"))
            } else {
                Ok(Command::Lhlo)
            }
        }
        "HELO" | "EHLO" => Ok(Command::Helo),
        "MAIL" => mail(rest),
        "RCPT" => rcpt(rest),
        "DATA" => no_args(rest, Command::Data),
        "BDAT" => bdat(rest),
        "RSET" => no_args(rest, Command::Rset),
        // RFC 5321 §4.1.1.9: NOOP may have a string argument.
        "NOOP" => Ok(Command::Noop),
        "QUIT" => no_args(rest, Command::Quit),
        "VRFY" => Ok(Command::Vrfy),
        _ => Ok(Command::Unknown),
    }
}

fn no_args(rest: &str, c: Command) -> Result<Command, Bad> {
    if rest.trim().is_empty() {
        Ok(c)
    } else {
        Err(bad(501, "5.5.4", "No parameters allowed"))
    }
}

/// `FROM:<path> [params]` after `MAIL `.
fn mail(rest: &str) -> Result<Command, Bad> {
    let (from, params) = path_after(rest, "FROM:")?;
    let (mut size, mut body) = (None, Body::SevenBit);
    for p in params.split(' ').filter(|p| !p.is_empty()) {
        let (key, value) = p.split_once('=').unwrap_or((p, ""));
        match key.to_ascii_uppercase().as_str() {
            "SIZE" => {
                size = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| bad(501, "5.5.4", "Bad SIZE parameter"))?,
                )
            }
            "BODY" => {
                body = match value.to_ascii_uppercase().as_str() {
                    "7BIT" => Body::SevenBit,
                    "8BITMIME" => Body::EightBitMime,
                    _ => return Err(bad(501, "5.5.4", "Unsupported BODY type")),
                }
            }
            _ => return Err(bad(555, "5.5.4", "Unsupported MAIL parameter")),
        }
    }
    Ok(Command::Mail { from, size, body })
}

/// `TO:<path> [params]` after `RCPT `.
fn rcpt(rest: &str) -> Result<Command, Bad> {
    let (to, params) = path_after(rest, "TO:")?;
    if !params.trim().is_empty() {
        return Err(bad(555, "5.5.4", "Unsupported RCPT parameter"));
    }
    if to.is_empty() {
        return Err(bad(501, "5.1.3", "Empty recipient"));
    }
    Ok(Command::Rcpt { to })
}

fn bdat(rest: &str) -> Result<Command, Bad> {
    let mut words = rest.split(' ').filter(|w| !w.is_empty());
    let size = words.next().and_then(|w| w.parse::<u64>().ok()).ok_or(bad(
        501,
        "5.5.4",
        "BDAT needs a size",
    ))?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(bad(501, "5.5.4", "Syntax: BDAT size [LAST]")),
    };
    if words.next().is_some() {
        return Err(bad(501, "5.5.4", "Syntax: BDAT size [LAST]"));
    }
    Ok(Command::Bdat { size, last })
}

/// `KEYWORD:<path> rest`: the path without brackets or source route, and the rest.
fn path_after<'a>(rest: &'a str, keyword: &str) -> Result<(String, &'a str), Bad> {
    let syntax = bad(
        501,
        "5.5.4",
        "Syntax: MAIL FROM:<address>, RCPT TO:<address>",
    );
    let head = rest.get(..keyword.len()).ok_or(syntax.clone())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return Err(syntax);
    }
    let rest = rest[keyword.len()..].trim_start();
    if !rest.starts_with('<') {
        return Err(syntax);
    }
    // The closing `>` that is not inside a quoted local part.
    let mut quoted = false;
    let mut escaped = false;
    let mut end = None;
    for (i, c) in rest.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    let end = end.ok_or(syntax)?;
    let mut path = &rest[1..end];
    if path.len() > MAX_PATH {
        return Err(bad(501, "5.1.3", "Address too long"));
    }
    if path
        .chars()
        .any(|c| c.is_control() || c == ' ' && !path.contains('"'))
    {
        return Err(bad(501, "5.1.3", "Bad address syntax"));
    }
    // A source route (`@a,@b:user@c`) is to be ignored (RFC 5321 §4.1.1.3).
    if path.starts_with('@')
        && let Some(i) = path.find(':')
    {
        path = &path[i + 1..];
    }
    let params = &rest[end + 1..];
    if !params.is_empty() && !params.starts_with(' ') {
        return Err(bad(501, "5.5.4", "Syntax error after the address"));
    }
    Ok((path.to_owned(), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(command(b"lhlo x"), Ok(Command::Lhlo));
        assert_eq!(
            command(b"MAIL FROM:<a@b> SIZE=10 BODY=8BITMIME"),
            Ok(Command::Mail {
                from: "a@b".into(),
                size: Some(10),
                body: Body::EightBitMime
            })
        );
        assert_eq!(
            command(b"mail from: <>"),
            Ok(Command::Mail {
                from: String::new(),
                size: None,
                body: Body::SevenBit
            })
        );
        assert_eq!(
            command(b"RCPT TO:<@relay:bob@example.org>"),
            Ok(Command::Rcpt {
                to: "bob@example.org".into()
            })
        );
        assert_eq!(
            command(b"RCPT TO:<\"a>b\"@example.org>"),
            Ok(Command::Rcpt {
                to: "\"a>b\"@example.org".into()
            })
        );
        assert_eq!(
            command(b"BDAT 12 LAST"),
            Ok(Command::Bdat {
                size: 12,
                last: true
            })
        );
        assert_eq!(command(b"FOO"), Ok(Command::Unknown));
        assert_eq!(command(b"RCPT TO:<>").unwrap_err().status, "5.1.3");
        assert_eq!(command(b"RCPT TO:bob").unwrap_err().code, 501);
        assert_eq!(command(b"MAIL FROM:<a> X=1").unwrap_err().code, 555);
        assert_eq!(command(b"BDAT x").unwrap_err().code, 501);
        assert_eq!(command(b"DATA x").unwrap_err().code, 501);
        assert_eq!(command(b"LHLO").unwrap_err().code, 501);
        assert_eq!(command(b"RCPT TO:<a\x01b>").unwrap_err().status, "5.1.3");
        let long = format!("RCPT TO:<{}@x>", "a".repeat(300));
        assert_eq!(command(long.as_bytes()).unwrap_err().status, "5.1.3");
        assert_eq!(command(b"\xff").unwrap_err().code, 500);
    }
}
