//! Values shared by several commands: `sequence-set` (with RFC 5182 `$`), flags, `date` and
//! `date-time`.

use super::cursor::{Cursor, PResult, err};
use crate::types::{Date, DateTime, Flag, SeqNum, SeqRange, SequenceSet};
use crate::write::days_from_civil;

/// Most ranges accepted in one sequence set (the line length limit comes first in practice).
const MAX_SET_RANGES: usize = 100_000;
/// Most flags in one flag list.
pub(crate) const MAX_FLAGS: usize = 1_000;

/// `seq-number = nz-number / "*"`.
fn seq_number(c: &mut Cursor<'_>) -> PResult<SeqNum> {
    if c.eat(b'*') {
        Ok(SeqNum::Largest)
    } else if c.peek().is_some_and(|b| b.is_ascii_digit()) {
        c.nz_number().map(SeqNum::Value)
    } else {
        err("Invalid messageset")
    }
}

/// `sequence-set = (seq-number / seq-range) ["," sequence-set]` / `"$"` (RFC 5182).
/// Ranges are kept as sent: `4:2` is the same set as `2:4`.
pub(crate) fn sequence_set(c: &mut Cursor<'_>) -> PResult<SequenceSet> {
    if c.eat(b'$') {
        return Ok(SequenceSet::Saved);
    }
    let mut ranges = Vec::new();
    loop {
        if ranges.len() >= MAX_SET_RANGES {
            return err("Too many ranges in messageset");
        }
        let a = seq_number(c)?;
        ranges.push(if c.eat(b':') {
            SeqRange::Range(a, seq_number(c)?)
        } else {
            SeqRange::Single(a)
        });
        if !c.eat(b',') {
            return Ok(SequenceSet::Ranges(ranges));
        }
    }
}

/// `flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" / flag-keyword /
/// flag-extension`. System flags match case-insensitively; `\Recent` parses (the session
/// refuses to STORE it); other `\atom` flags keep their backslash in [`Flag::Extension`].
pub(crate) fn flag(c: &mut Cursor<'_>) -> PResult<Flag> {
    if c.eat(b'\\') {
        let name = c.atom()?;
        let known = [
            (&b"SEEN"[..], Flag::Seen),
            (b"ANSWERED", Flag::Answered),
            (b"FLAGGED", Flag::Flagged),
            (b"DELETED", Flag::Deleted),
            (b"DRAFT", Flag::Draft),
            (b"RECENT", Flag::Recent),
        ];
        for (text, f) in known {
            if name.eq_ignore_ascii_case(text) {
                return Ok(f);
            }
        }
        Ok(Flag::Extension(format!(
            "\\{}",
            String::from_utf8_lossy(name)
        )))
    } else {
        Ok(Flag::Keyword(flag_keyword(c)?))
    }
}

/// `flag-keyword = "$MDNSent" / "$Forwarded" / "$Junk" / "$NotJunk" / "$Phishing" / atom`.
pub(crate) fn flag_keyword(c: &mut Cursor<'_>) -> PResult<String> {
    // Atoms are 7-bit, so this is valid UTF-8.
    Ok(String::from_utf8_lossy(c.atom()?).into_owned())
}

/// `flag-list = "(" [flag *(SP flag)] ")"`.
pub(crate) fn flag_list(c: &mut Cursor<'_>) -> PResult<Vec<Flag>> {
    c.paren_list(true, MAX_FLAGS, flag)
}

const MONTHS: [&[u8]; 12] = [
    b"JAN", b"FEB", b"MAR", b"APR", b"MAY", b"JUN", b"JUL", b"AUG", b"SEP", b"OCT", b"NOV", b"DEC",
];

fn month(c: &mut Cursor<'_>) -> PResult<u32> {
    for (i, m) in MONTHS.iter().enumerate() {
        if c.eat_ci(m) {
            return Ok(i as u32 + 1);
        }
    }
    err("Invalid month")
}

/// Exactly `n` digits.
fn fixed_digits(c: &mut Cursor<'_>, n: usize) -> PResult<u32> {
    let mut v = 0;
    for _ in 0..n {
        match c.peek() {
            Some(d) if d.is_ascii_digit() => {
                v = v * 10 + u32::from(d - b'0');
                c.bump();
            }
            _ => return err("Invalid date"),
        }
    }
    Ok(v)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `date-text = date-day "-" date-month "-" date-year` after the day; validates the day.
fn month_year(c: &mut Cursor<'_>, day: u32) -> PResult<Date> {
    c.expect(b'-').map_err(|_| "Invalid date".to_string())?;
    let month = month(c)?;
    c.expect(b'-').map_err(|_| "Invalid date".to_string())?;
    let year = fixed_digits(c, 4)? as i32;
    if day == 0 || day > days_in_month(year, month) {
        return err("Invalid date");
    }
    Ok(Date { year, month, day })
}

/// `date = date-text / DQUOTE date-text DQUOTE`; `date-day = 1*2DIGIT`.
pub(crate) fn date(c: &mut Cursor<'_>) -> PResult<Date> {
    let quoted = c.eat(b'"');
    let day = fixed_digits(c, 1)?;
    let day = if c.peek().is_some_and(|b| b.is_ascii_digit()) {
        day * 10 + fixed_digits(c, 1)?
    } else {
        day
    };
    let date = month_year(c, day)?;
    if quoted {
        c.expect(b'"').map_err(|_| "Invalid date".to_string())?;
    }
    Ok(date)
}

/// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE`.
/// `date-day-fixed = (SP DIGIT) / 2DIGIT`; a single digit without the space is accepted too.
pub(crate) fn date_time(c: &mut Cursor<'_>) -> PResult<DateTime> {
    c.expect(b'"')?;
    c.eat(b' ');
    let day = fixed_digits(c, 1)?;
    let day = if c.peek().is_some_and(|b| b.is_ascii_digit()) {
        day * 10 + fixed_digits(c, 1)?
    } else {
        day
    };
    let date = month_year(c, day)?;
    let bad = |_| "Invalid date-time".to_string();
    c.expect(b' ').map_err(bad)?;
    let hour = fixed_digits(c, 2)?;
    c.expect(b':').map_err(bad)?;
    let minute = fixed_digits(c, 2)?;
    c.expect(b':').map_err(bad)?;
    let second = fixed_digits(c, 2)?;
    c.expect(b' ').map_err(bad)?;
    let sign = match c.peek() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return err("Invalid date-time"),
    };
    c.bump();
    let zone = fixed_digits(c, 4)?;
    c.expect(b'"').map_err(bad)?;
    // RFC 9051 allows second 60 (leap second); zone minutes must be < 60.
    if hour > 23 || minute > 59 || second > 60 || zone % 100 > 59 {
        return err("Invalid date-time");
    }
    let offset_minutes = sign * (zone / 100 * 60 + zone % 100) as i32;
    let days = days_from_civil(i64::from(date.year), date.month, date.day);
    let local = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Ok(DateTime {
        unix: local - i64::from(offset_minutes) * 60,
        offset_minutes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Fragment;

    fn with<T>(input: &str, f: impl FnOnce(&mut Cursor<'_>) -> PResult<T>) -> PResult<T> {
        let frags = vec![Fragment::Line(input.as_bytes().to_vec())];
        let mut c = Cursor::new(&frags).unwrap();
        let v = f(&mut c)?;
        if !c.at_line_end() {
            return err("trailing");
        }
        Ok(v)
    }

    #[test]
    fn sequence_sets() {
        use SeqNum::{Largest as S, Value as V};
        let cases: &[(&str, Option<SequenceSet>)] = &[
            ("1", Some(SequenceSet::Ranges(vec![SeqRange::Single(V(1))]))),
            ("*", Some(SequenceSet::Ranges(vec![SeqRange::Single(S)]))),
            ("$", Some(SequenceSet::Saved)),
            (
                "1:*",
                Some(SequenceSet::Ranges(vec![SeqRange::Range(V(1), S)])),
            ),
            (
                "*:4",
                Some(SequenceSet::Ranges(vec![SeqRange::Range(S, V(4))])),
            ),
            (
                "5:2,7,9:*",
                Some(SequenceSet::Ranges(vec![
                    SeqRange::Range(V(5), V(2)),
                    SeqRange::Single(V(7)),
                    SeqRange::Range(V(9), S),
                ])),
            ),
            (
                "4294967295",
                Some(SequenceSet::Ranges(vec![SeqRange::Single(V(u32::MAX))])),
            ),
            ("0", None),
            ("1:0", None),
            ("4294967296", None),
            ("1,", None),
            (",1", None),
            ("1::2", None),
            ("1:", None),
            ("$1", None),
            ("", None),
            ("a", None),
        ];
        for (input, want) in cases {
            assert_eq!(with(input, sequence_set).ok(), *want, "{input:?}");
        }
    }

    #[test]
    fn dates() {
        let d = |year, month, day| Some(Date { year, month, day });
        let cases: &[(&str, Option<Date>)] = &[
            ("1-Feb-1994", d(1994, 2, 1)),
            ("01-feb-1994", d(1994, 2, 1)),
            ("\"29-Feb-2024\"", d(2024, 2, 29)),
            ("29-Feb-2023", None),
            ("31-Apr-2023", None),
            ("0-Jan-2023", None),
            ("001-Jan-2023", None),
            ("1-Foo-2023", None),
            ("1-Jan-23", None),
            ("\"1-Jan-2023", None),
            ("1-Jan-2023\"", None),
        ];
        for (input, want) in cases {
            assert_eq!(with(input, date).ok(), *want, "{input:?}");
        }
    }

    #[test]
    fn date_times() {
        let dt = |unix, offset_minutes| {
            Some(DateTime {
                unix,
                offset_minutes,
            })
        };
        let cases: &[(&str, Option<DateTime>)] = &[
            ("\"17-Jul-1996 02:44:25 -0700\"", dt(837_596_665, -420)),
            ("\" 1-Jan-1970 00:00:00 +0000\"", dt(0, 0)),
            ("\"01-Jan-1970 01:00:00 +0100\"", dt(0, 60)),
            ("\"1-Jan-1970 00:00:00 -0030\"", dt(1800, -30)),
            ("\"31-Dec-1969 23:59:59 +0000\"", dt(-1, 0)),
            ("\"17-Jul-1996 24:00:00 -0700\"", None),
            ("\"17-Jul-1996 02:44:25 -0760\"", None),
            ("\"17-Jul-1996 02:44:25\"", None),
            ("\"17-Jul-1996 2:44:25 -0700\"", None),
            ("17-Jul-1996 02:44:25 -0700", None),
        ];
        for (input, want) in cases {
            assert_eq!(with(input, date_time).ok(), *want, "{input:?}");
        }
    }

    #[test]
    fn flags() {
        let cases: &[(&str, Option<Vec<Flag>>)] = &[
            ("()", Some(vec![])),
            (
                "(\\seen \\ANSWERED \\Flagged \\Deleted \\Draft $Forwarded \\Foo)",
                Some(vec![
                    Flag::Seen,
                    Flag::Answered,
                    Flag::Flagged,
                    Flag::Deleted,
                    Flag::Draft,
                    Flag::Keyword("$Forwarded".into()),
                    Flag::Extension("\\Foo".into()),
                ]),
            ),
            ("(\\Recent)", Some(vec![Flag::Recent])),
            ("(\\*)", None),
            ("(a  b)", None),
            ("(a", None),
            ("(\\)", None),
            ("(a]b)", None),
        ];
        for (input, want) in cases {
            assert_eq!(with(input, flag_list).ok(), *want, "{input:?}");
        }
    }
}
