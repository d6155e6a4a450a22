//! Command-level tests: one table per command family, plus literals, errors and fuzz-ish input.

mod commands;
mod errors;
mod fetch_store;
mod objects;
mod search;

use super::*;
use crate::types::*;

/// Split `input` at each `{n}` / `{n+}` / `~{n}` announcement into Line and Literal fragments,
/// the way the server hands them over.
pub(crate) fn frags(input: &[u8]) -> Vec<Fragment> {
    let mut out = Vec::new();
    let mut rest = input;
    loop {
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            out.push(Fragment::Line(rest.to_vec()));
            return out;
        };
        let (line, after) = rest.split_at(nl + 1);
        out.push(Fragment::Line(line.to_vec()));
        rest = after;
        match crate::frame::literal_announcement(line) {
            Ok(Some(a)) if (a.len as usize) <= rest.len() => {
                let (lit, after) = rest.split_at(a.len as usize);
                out.push(Fragment::Literal(lit.to_vec()));
                rest = after;
            }
            _ => {
                if !rest.is_empty() {
                    // More lines without a literal: keep them in one line (the parser rejects it).
                    let last = out.pop();
                    if let Some(Fragment::Line(mut l)) = last {
                        l.extend_from_slice(rest);
                        out.push(Fragment::Line(l));
                    }
                }
                return out;
            }
        }
    }
}

pub(crate) fn parse(input: &str) -> Result<Command, ParseError> {
    parse_command(&frags(input.as_bytes()))
}

pub(crate) fn body(input: &str) -> CommandBody {
    match parse(input) {
        Ok(c) => c.body,
        Err(e) => panic!("{input:?}: {e:?}"),
    }
}

pub(crate) fn set(text: &str) -> SequenceSet {
    let frags = vec![Fragment::Line(text.as_bytes().to_vec())];
    let mut c = Cursor::new(&frags).unwrap();
    values::sequence_set(&mut c).unwrap()
}
