//! POP3 command lines (RFC 1939 §3, RFC 2449 §3, RFC 5034 §4): a keyword of up to four letters,
//! case-insensitive, then arguments separated by single spaces.

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(Vec<u8>),
    /// The whole rest of the line: passwords may contain spaces (RFC 1939 §7 allows it).
    Pass(Vec<u8>),
    Apop,
    /// `AUTH` alone lists the mechanisms (a common extension); otherwise the mechanism and
    /// the optional initial response (still base64).
    Auth {
        mechanism: Option<String>,
        initial_response: Option<Vec<u8>>,
    },
    Stls,
    Capa,
    Quit,
    Stat,
    List(Option<u32>),
    Retr(u32),
    Dele(u32),
    Noop,
    Rset,
    Top(u32, u64),
    Uidl(Option<u32>),
}

/// Why a line is not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Empty,
    Unknown,
    /// A known command with wrong arguments; the text says what is expected.
    Syntax(&'static str),
}

/// The line without its line ending.
pub fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Parse one command line (with or without its CRLF).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = trim_eol(line);
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    let (keyword, rest) = match line.iter().position(|b| *b == b' ') {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    if keyword.len() > 4 {
        return Err(ParseError::Unknown);
    }
    let mut kw = [0u8; 4];
    for (d, s) in kw.iter_mut().zip(keyword) {
        *d = s.to_ascii_uppercase();
    }
    let args: Vec<&[u8]> = match rest {
        Some(r) => r.split(|b| *b == b' ').collect(),
        None => Vec::new(),
    };
    let none = |c: Command| {
        if args.is_empty() {
            Ok(c)
        } else {
            Err(ParseError::Syntax("No arguments expected."))
        }
    };
    match &kw[..keyword.len()] {
        b"USER" => match rest {
            Some(r) if !r.is_empty() && !r.contains(&b' ') => Ok(Command::User(r.to_vec())),
            _ => Err(ParseError::Syntax("USER takes one user name.")),
        },
        b"PASS" => match rest {
            Some(r) if !r.is_empty() => Ok(Command::Pass(r.to_vec())),
            _ => Err(ParseError::Syntax("PASS takes a password.")),
        },
        b"APOP" => Ok(Command::Apop),
        b"AUTH" => match args.as_slice() {
            [] => Ok(Command::Auth {
                mechanism: None,
                initial_response: None,
            }),
            [m] if valid_mechanism(m) => Ok(Command::Auth {
                mechanism: Some(String::from_utf8_lossy(m).into_owned()),
                initial_response: None,
            }),
            [m, ir] if valid_mechanism(m) && !ir.is_empty() => Ok(Command::Auth {
                mechanism: Some(String::from_utf8_lossy(m).into_owned()),
                initial_response: Some(ir.to_vec()),
            }),
            _ => Err(ParseError::Syntax(
                "AUTH takes a mechanism and an optional initial response.",
            )),
        },
        b"STLS" => none(Command::Stls),
        b"CAPA" => none(Command::Capa),
        b"QUIT" => none(Command::Quit),
        b"STAT" => none(Command::Stat),
        b"NOOP" => none(Command::Noop),
        b"RSET" => none(Command::Rset),
        b"LIST" => optional_number(&args).map(Command::List),
        b"UIDL" => optional_number(&args).map(Command::Uidl),
        b"RETR" => one_number(&args).map(Command::Retr),
        b"DELE" => one_number(&args).map(Command::Dele),
        b"TOP" => match args.as_slice() {
            [n, lines] => match (number(n), count(lines)) {
                (Some(n), Some(lines)) => Ok(Command::Top(n, lines)),
                _ => Err(ParseError::Syntax(
                    "TOP takes a message number and a line count.",
                )),
            },
            _ => Err(ParseError::Syntax(
                "TOP takes a message number and a line count.",
            )),
        },
        _ => Err(ParseError::Unknown),
    }
}

/// SASL mechanism names (RFC 4422 §3.1): 1-20 of A-Z, 0-9, `-`, `_` (any case here).
fn valid_mechanism(m: &[u8]) -> bool {
    (1..=20).contains(&m.len())
        && m.iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

/// A message number: 1 to 10 decimal digits (RFC 1939 forbids signs). 0 and numbers beyond
/// u32 parse here and are answered "no such message" later.
fn number(arg: &[u8]) -> Option<u32> {
    if arg.is_empty() || arg.len() > 10 || !arg.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(arg).ok()?.parse().ok()?;
    Some(u32::try_from(n).unwrap_or(u32::MAX))
}

/// A line count for TOP: any run of digits; a huge one means "the whole body".
fn count(arg: &[u8]) -> Option<u64> {
    if arg.is_empty() || !arg.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        std::str::from_utf8(arg)
            .ok()?
            .parse::<u64>()
            .unwrap_or(u64::MAX),
    )
}

fn optional_number(args: &[&[u8]]) -> Result<Option<u32>, ParseError> {
    match args {
        [] => Ok(None),
        [n] => number(n)
            .map(Some)
            .ok_or(ParseError::Syntax("Invalid message number.")),
        _ => Err(ParseError::Syntax("At most one message number expected.")),
    }
}

fn one_number(args: &[&[u8]]) -> Result<u32, ParseError> {
    match args {
        [n] => number(n).ok_or(ParseError::Syntax("Invalid message number.")),
        _ => Err(ParseError::Syntax("One message number expected.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_table() {
        let cases: &[(&[u8], Result<Command, ParseError>)] = &[
            (b"user alice\r\n", Ok(Command::User(b"alice".to_vec()))),
            (
                b"PASS pass word \r\n",
                Ok(Command::Pass(b"pass word ".to_vec())),
            ),
            (b"stat\n", Ok(Command::Stat)),
            (b"LIST\r\n", Ok(Command::List(None))),
            (b"LIST 3\r\n", Ok(Command::List(Some(3)))),
            (
                b"list 99999999999\r\n",
                Err(ParseError::Syntax("Invalid message number.")),
            ),
            (b"LIST 4294967296\r\n", Ok(Command::List(Some(u32::MAX)))),
            (
                b"RETR +1\r\n",
                Err(ParseError::Syntax("Invalid message number.")),
            ),
            (
                b"RETR\r\n",
                Err(ParseError::Syntax("One message number expected.")),
            ),
            (b"TOP 1 0\r\n", Ok(Command::Top(1, 0))),
            (
                b"TOP 1 99999999999999999999999\r\n",
                Ok(Command::Top(1, u64::MAX)),
            ),
            (
                b"AUTH PLAIN AGFsaWNlAHBhc3M=\r\n",
                Ok(Command::Auth {
                    mechanism: Some("PLAIN".into()),
                    initial_response: Some(b"AGFsaWNlAHBhc3M=".to_vec()),
                }),
            ),
            (
                b"AUTH\r\n",
                Ok(Command::Auth {
                    mechanism: None,
                    initial_response: None,
                }),
            ),
            (
                b"AUTH \xff\r\n",
                Err(ParseError::Syntax(
                    "AUTH takes a mechanism and an optional initial response.",
                )),
            ),
            (b"\r\n", Err(ParseError::Empty)),
            (b"XYZZY\r\n", Err(ParseError::Unknown)),
            (b"\xff\xfe\r\n", Err(ParseError::Unknown)),
            (
                b"NOOP x\r\n",
                Err(ParseError::Syntax("No arguments expected.")),
            ),
            (
                b"USER\r\n",
                Err(ParseError::Syntax("USER takes one user name.")),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(&parse(line), want, "{:?}", String::from_utf8_lossy(line));
        }
    }
}
