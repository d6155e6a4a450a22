//! mbox import: one file (`--folder` names its folder) or a directory of them, as Thunderbird
//! keeps them (`Folder` files, children in `Folder.sbd/`) or Apple Mail exports them
//! (`Folder.mbox/mbox`, children nested inside).
//!
//! - A message starts at a `From ` line that follows an empty line (or starts the file) and
//!   carries a date, as mutt and Dovecot decide; a `From ` line in a body that does not look
//!   so (an mboxo file did not quote it) stays in the message.
//! - Quoting: one `>` is taken off every `>From `, `>>From `, ... line (mboxrd; for mboxo only
//!   `>From ` was quoted, and it is unquoted the same way).
//! - The `From ` line's date (read as UTC) is the INTERNALDATE.
//! - Flags: `Status:` (`R` seen), `X-Status:` (`A` answered, `F` flagged, `T` draft, `D`
//!   deleted), `X-Keywords:`, Thunderbird's `X-Mozilla-Status:` (read, replied, marked,
//!   expunged) and `X-Mozilla-Keys:`. These headers stay in the message, except the three
//!   lines `mailkeep export mbox` puts first (`Status:`, `X-Status:`, `X-Keywords:` in that
//!   order at the very top of the header), which are taken off again so a round trip gives
//!   back the same bytes.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailkeep_store::{Flags, MailStore, MessageBytes, NewMessage, ParsedInfo, UserId, flags};

use crate::progress::Progress;
use crate::target::{ImportOptions, Target};

/// One message read from an mbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// The `From ` line's date (UTC seconds), if it had one.
    pub date: Option<i64>,
    /// The message, unquoted, without its `From ` line and the empty line after it.
    pub data: Vec<u8>,
    /// Bytes the message had in the file (for progress).
    pub raw_len: u64,
    /// It was bigger than the limit: `data` was dropped.
    pub too_big: bool,
}

/// Reads the messages of an mbox one at a time.
pub struct Reader<R> {
    r: R,
    /// A `From ` line already read (the start of the next message).
    next_from: Option<Vec<u8>>,
    started: bool,
    limit: u64,
}

impl<R: BufRead> Reader<R> {
    pub fn new(r: R, limit: u64) -> Reader<R> {
        Reader {
            r,
            next_from: None,
            started: false,
            limit,
        }
    }

    /// The next message; `None` at the end.
    pub fn next_message(&mut self) -> std::io::Result<Option<RawMessage>> {
        let mut line = Vec::new();
        let from = match self.next_from.take() {
            Some(f) => f,
            None if !self.started => {
                self.started = true;
                // Text before the first `From ` line is not a message of an mbox: skip
                // leading empty lines only; anything else starts a message without a date.
                loop {
                    line.clear();
                    if self.r.read_until(b'\n', &mut line)? == 0 {
                        return Ok(None);
                    }
                    if !is_blank(&line) {
                        break;
                    }
                }
                if line.starts_with(b"From ") {
                    std::mem::take(&mut line)
                } else {
                    Vec::new()
                }
            }
            None => return Ok(None),
        };
        let mut msg = RawMessage {
            date: from_line_date(&from),
            data: Vec::new(),
            raw_len: from.len() as u64,
            too_big: false,
        };
        // `line` may hold the first line of a file that had no `From ` line.
        let mut prev_blank = false;
        let mut pending = std::mem::take(&mut line);
        loop {
            if pending.is_empty() && self.r.read_until(b'\n', &mut pending)? == 0 {
                break;
            }
            let l = std::mem::take(&mut pending);
            if prev_blank && l.starts_with(b"From ") && from_line_date(&l).is_some() {
                self.next_from = Some(l);
                break;
            }
            prev_blank = is_blank(&l);
            msg.raw_len += l.len() as u64;
            if msg.too_big {
                continue;
            }
            let unquoted = match l.iter().position(|&c| c != b'>') {
                Some(n) if n > 0 && l[n..].starts_with(b"From ") => &l[1..],
                _ => &l[..],
            };
            msg.data.extend_from_slice(unquoted);
            if msg.data.len() as u64 > self.limit.saturating_add(2) {
                msg.too_big = true;
                msg.data = Vec::new();
            }
        }
        // The empty line before the next `From ` (or the end) separates, it is not the
        // message's.
        if prev_blank {
            let eol = if msg.data.ends_with(b"\r\n") { 2 } else { 1 };
            msg.data.truncate(msg.data.len().saturating_sub(eol));
        }
        if msg.data.len() as u64 > self.limit {
            msg.too_big = true;
            msg.data = Vec::new();
        }
        Ok(Some(msg))
    }
}

fn is_blank(line: &[u8]) -> bool {
    line == b"\n" || line == b"\r\n"
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// The date of a `From sender Www Mmm dd hh:mm[:ss] [zone] yyyy` line (UTC seconds, a
/// numeric zone applied); `None` if the line has no such date.
pub fn from_line_date(line: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(line.strip_prefix(b"From ")?).ok()?;
    let tokens: Vec<&str> = text.split_whitespace().collect();
    // The sender may be missing or hold spaces: find the weekday followed by a month.
    let at = (0..tokens.len().saturating_sub(1))
        .find(|&i| DAYS.contains(&tokens[i]) && MONTHS.contains(&tokens[i + 1]))?;
    let t = &tokens[at + 1..];
    let month = MONTHS.iter().position(|m| *m == t[0])? as u32 + 1;
    let day: u32 = t.get(1)?.parse().ok()?;
    let mut hms = t.get(2)?.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let m: i64 = hms.next()?.parse().ok()?;
    let s: i64 = hms.next().map_or(Some(0), |s| s.parse().ok())?;
    let mut zone = 0i64;
    let mut year = None;
    for tok in &t[3..] {
        if let Ok(y) = tok.parse::<i64>()
            && tok.len() == 4
            && year.is_none()
        {
            year = Some(y);
        } else if let Some(z) = tok.strip_prefix('+').or(tok.strip_prefix('-'))
            && z.len() == 4
            && let Ok(v) = z.parse::<i64>()
        {
            let mins = v / 100 * 60 + v % 100;
            zone = if tok.starts_with('-') { -mins } else { mins };
        }
    }
    let year = year?;
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = mailkeep_proto::write::days_from_civil(year, month, day);
    Some(days * 86_400 + h * 3600 + m * 60 + s - zone * 60)
}

/// `From MAILER-DAEMON Www Mmm dd hh:mm:ss yyyy` for a time (UTC).
pub fn from_line(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, mo, d) = mailkeep_proto::write::civil_from_days(days);
    let wd = (days + 4).rem_euclid(7) as usize;
    format!(
        "From MAILER-DAEMON {} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS[wd],
        MONTHS[mo as usize - 1],
        d,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        y
    )
}

/// The flags the message's headers give, and how many bytes of header lines at its start
/// were put there by `mailkeep export mbox` (to take off).
pub fn header_flags(data: &[u8]) -> (Flags, usize) {
    let mut f = Flags::default();
    let mut lines: Vec<(&[u8], usize)> = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let end = data[at..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(data.len(), |p| at + p + 1);
        let line = &data[at..end];
        if is_blank(line) {
            break;
        }
        lines.push((line, end));
        at = end;
    }
    let value = |line: &[u8], name: &str| -> Option<String> {
        let (n, v) = line.split_at(line.iter().position(|&c| c == b':')?);
        n.eq_ignore_ascii_case(name.as_bytes())
            .then(|| String::from_utf8_lossy(&v[1..]).trim().to_string())
    };
    let ours = lines.len() >= 3
        && value(lines[0].0, "Status").is_some()
        && value(lines[1].0, "X-Status").is_some()
        && value(lines[2].0, "X-Keywords").is_some();
    // Our own lines say it all; the message's own status headers below them are its text.
    let read = if ours { &lines[..3] } else { &lines[..] };
    let mut keywords: Vec<String> = Vec::new();
    for (line, _) in read {
        if let Some(v) = value(line, "Status") {
            if v.contains('R') {
                f.system |= flags::SEEN;
            }
        } else if let Some(v) = value(line, "X-Status") {
            for (c, bit) in [
                ('A', flags::ANSWERED),
                ('F', flags::FLAGGED),
                ('T', flags::DRAFT),
                ('D', flags::DELETED),
            ] {
                if v.contains(c) {
                    f.system |= bit;
                }
            }
        } else if let Some(v) = value(line, "X-Keywords").or_else(|| value(line, "X-Mozilla-Keys"))
        {
            keywords.extend(v.split([' ', ',', '\t']).map(str::to_string));
        } else if let Some(v) = value(line, "X-Mozilla-Status")
            && let Ok(bits) = u32::from_str_radix(&v, 16)
        {
            for (m, bit) in [
                (0x1, flags::SEEN),
                (0x2, flags::ANSWERED),
                (0x4, flags::FLAGGED),
                (0x8, flags::DELETED),
            ] {
                if bits & m != 0 {
                    f.system |= bit;
                }
            }
        }
    }
    keywords.retain(|k| is_keyword(k));
    keywords.sort();
    keywords.dedup();
    f.keywords = keywords;
    (f, if ours { lines[2].1 } else { 0 })
}

/// An IMAP keyword (an atom, not a system flag).
fn is_keyword(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 100
        && !k.starts_with('\\')
        && k.bytes()
            .all(|c| c.is_ascii_graphic() && !b"(){%*\"\\]".contains(&c))
}

/// The header lines `export` puts first: see the module's documentation.
pub fn export_header(f: &Flags, eol: &str) -> String {
    let seen = if f.system & flags::SEEN != 0 {
        "RO"
    } else {
        "O"
    };
    let mut x = String::new();
    for (bit, c) in [
        (flags::ANSWERED, 'A'),
        (flags::FLAGGED, 'F'),
        (flags::DRAFT, 'T'),
        (flags::DELETED, 'D'),
    ] {
        if f.system & bit != 0 {
            x.push(c);
        }
    }
    format!(
        "Status: {seen}{eol}X-Status: {x}{eol}X-Keywords: {}{eol}",
        f.keywords.join(" ")
    )
}

/// The mbox files under `dir`: (folder name, file), folder names with `/` between levels.
pub fn mbox_files(
    dir: &Path,
    prefix: &str,
    out: &mut Vec<(String, PathBuf)>,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let file = entry.file_name();
        let Some(name) = file.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            if let Some(base) = name.strip_suffix(".sbd") {
                mbox_files(&path, &format!("{prefix}{base}/"), out)?;
            } else if let Some(base) = name.strip_suffix(".mbox") {
                if path.join("mbox").is_file() {
                    out.push((format!("{prefix}{base}"), path.join("mbox")));
                }
                mbox_files(&path, &format!("{prefix}{base}/"), out)?;
            } else {
                mbox_files(&path, &format!("{prefix}{name}/"), out)?;
            }
            continue;
        }
        let skip = [
            ".msf", ".dat", ".json", ".html", ".plist", ".sqlite", ".txt",
        ];
        if name == "mbox" && dir.extension().is_some_and(|e| e == "mbox")
            || name == "table_of_contents"
            || skip.iter().any(|s| name.ends_with(s))
        {
            continue;
        }
        let base = name
            .strip_suffix(".mbox")
            .or(name.strip_suffix(".mbx"))
            .unwrap_or(name);
        out.push((format!("{prefix}{base}"), path));
    }
    Ok(())
}

/// The folder name for a top-level `Inbox` (any case): `INBOX`.
fn folder_name(name: &str) -> String {
    if name.eq_ignore_ascii_case("inbox") {
        "INBOX".to_string()
    } else {
        name.to_string()
    }
}

/// Imports an mbox file (into `folder`, by default the file's name) or a directory of them
/// (under `folder/` if given).
pub async fn import(
    store: &dyn MailStore,
    user: UserId,
    path: &Path,
    folder: Option<&str>,
    opts: ImportOptions,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let mut files = Vec::new();
    if path.is_dir() {
        mbox_files(path, "", &mut files)?;
        if let Some(prefix) = folder {
            for f in &mut files {
                f.0 = format!("{prefix}/{}", f.0);
            }
        }
    } else {
        let stem = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.strip_suffix(".mbox").unwrap_or(n).to_string())
            .unwrap_or_else(|| "INBOX".into());
        files.push((folder.map_or(stem, str::to_string), path.to_path_buf()));
    }
    for (name, file) in files {
        import_file(store, user, &folder_name(&name), &file, opts, progress).await?;
    }
    Ok(())
}

async fn import_file(
    store: &dyn MailStore,
    user: UserId,
    name: &str,
    file: &Path,
    opts: ImportOptions,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let shown = file.display().to_string();
    let f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) => {
            progress.skip(&format!("unreadable file ({e})"), shown);
            return Ok(());
        }
    };
    let mtime = f
        .metadata()
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let mut head = [0u8; 5];
    let n = std::io::Read::read(&mut &f, &mut head).unwrap_or(0);
    if n > 0 && head[..n] != b"From "[..n] && !head[..n].iter().all(u8::is_ascii_whitespace) {
        progress.skip("not an mbox file (does not start with \"From \")", shown);
        return Ok(());
    }
    let f = std::fs::File::open(file)?;
    let mut reader = Reader::new(
        std::io::BufReader::with_capacity(256 << 10, f),
        opts.max_message_size,
    );
    let mut target = Target::open(store, user, name, None).await?;
    let mut folder = progress.folder(name, None);
    let mut index = 0u64;
    loop {
        let msg = match reader.next_message() {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(e) => {
                progress.skip(
                    &format!("read error ({e}), rest of file"),
                    format!("{shown} after message {index}"),
                );
                break;
            }
        };
        index += 1;
        let what = format!("{shown}: message {index}");
        if msg.too_big {
            progress.skip("bigger than [limits] max_message_size", what);
            continue;
        }
        if msg.data.iter().all(u8::is_ascii_whitespace) {
            progress.skip("empty message", what);
            continue;
        }
        let (flags, strip) = header_flags(&msg.data);
        let data = mailkeep_mime::prepare_received(&msg.data[strip..], false).into_owned();
        let parsed = ParsedInfo::from(mailkeep_mime::analyze(&data));
        let size = data.len() as u64;
        let message = NewMessage {
            data: MessageBytes::Memory(Arc::new(data)),
            flags,
            internal_date: msg.date.unwrap_or(mtime),
            internal_date_offset: 0,
            parsed,
        };
        target
            .push(progress, &mut folder, None, message, size, what)
            .await;
    }
    target.flush(progress, &mut folder).await;
    progress.finish_folder(folder);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &[u8]) -> Vec<RawMessage> {
        let mut r = Reader::new(text, 1 << 20);
        let mut out = Vec::new();
        while let Some(m) = r.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    #[test]
    fn mboxrd_quoting_and_separators() {
        let text = b"From a@b Thu Jan  1 00:00:10 1970\nSubject: one\n\n>From here\n>>From there\n>Fromage\n\nFrom b@c Fri Jan  2 00:00:00 1970\nSubject: two\n\nbody\n\n";
        let m = read_all(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].date, Some(10));
        assert_eq!(
            m[0].data,
            b"Subject: one\n\nFrom here\n>From there\n>Fromage\n"
        );
        assert_eq!(m[1].date, Some(86_400));
        assert_eq!(m[1].data, b"Subject: two\n\nbody\n");
    }

    #[test]
    fn mboxo_bare_from_in_body_stays() {
        // A bare `From ` line after an empty line but without a date, and one not after an
        // empty line: both are body text (as mutt and Dovecot read them).
        let text = b"From a@b Thu Jan  1 00:00:00 1970\nSubject: x\n\nhello\n\nFrom me to you\nFrom a@b Thu Jan  1 00:00:00 1970\n\n";
        let m = read_all(text);
        assert_eq!(m.len(), 1);
        assert_eq!(
            m[0].data,
            b"Subject: x\n\nhello\n\nFrom me to you\nFrom a@b Thu Jan  1 00:00:00 1970\n".to_vec()
        );
    }

    #[test]
    fn crlf_mbox() {
        let text = b"From a@b Sat Jan  3 01:02:03 1970\r\nA: b\r\n\r\nx\r\n\r\nFrom a@b Sat Jan  3 01:02:03 1970\r\nA: c\r\n\r\ny\r\n\r\n";
        let m = read_all(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].data, b"A: b\r\n\r\nx\r\n");
        assert_eq!(m[1].data, b"A: c\r\n\r\ny\r\n");
        assert_eq!(m[0].date, Some(2 * 86_400 + 3723));
    }

    #[test]
    fn from_line_dates() {
        assert_eq!(
            from_line_date(b"From x Thu Jan  1 00:00:00 1970\n"),
            Some(0)
        );
        assert_eq!(
            from_line_date(b"From x Thu Jan  1 01:00:00 +0100 1970\n"),
            Some(0)
        );
        assert_eq!(from_line_date(b"From x Thu Jan  1 00:01 1970"), Some(60));
        assert_eq!(
            from_line_date(b"From - Mon Mar  4 10:20:30 2024\r\n"),
            Some(1_709_547_630)
        );
        assert_eq!(from_line_date(b"From me to you\n"), None);
        for t in [0, 1_709_547_630, 951_782_400] {
            let l = from_line(t);
            assert_eq!(from_line_date(l.as_bytes()), Some(t), "{l}");
        }
        assert_eq!(from_line(0), "From MAILER-DAEMON Thu Jan  1 00:00:00 1970");
    }

    #[test]
    fn mozilla_status_bits() {
        let (f, strip) = header_flags(b"X-Mozilla-Status: 0003\nX-Mozilla-Status2: 00000000\nX-Mozilla-Keys: $label1 work   \nSubject: a\n\nbody\n");
        assert_eq!(f.system, flags::SEEN | flags::ANSWERED);
        assert_eq!(f.keywords, vec!["$label1", "work"]);
        assert_eq!(strip, 0);
        let (f, _) = header_flags(b"X-Mozilla-Status: 000d\n\n");
        assert_eq!(f.system, flags::SEEN | flags::FLAGGED | flags::DELETED);
    }

    #[test]
    fn status_headers_and_export_round_trip() {
        let (f, strip) =
            header_flags(b"Subject: a\nStatus: RO\nX-Status: AF\nX-Keywords: $Junk\n\n");
        assert_eq!(f.system, flags::SEEN | flags::ANSWERED | flags::FLAGGED);
        assert_eq!(f.keywords, vec!["$Junk"]);
        assert_eq!(strip, 0, "headers not first are the message's own");
        let flags = Flags {
            system: flags::DRAFT | flags::DELETED,
            keywords: vec!["a".into(), "b".into()],
        };
        let head = export_header(&flags, "\r\n");
        let msg = format!("{head}Status: R\r\nSubject: x\r\n\r\nbody\r\n");
        let (g, strip) = header_flags(msg.as_bytes());
        assert_eq!(&msg[strip..], "Status: R\r\nSubject: x\r\n\r\nbody\r\n");
        // Only the exported lines count, not the message's own `Status: R`.
        assert_eq!(g, flags);
    }
}
