//! Fuzz the LMTP and POP3 sessions from raw client bytes on a real SQLite store: the first input
//! byte chooses the protocol, the rest is cut into lines (and, for LMTP, DATA lines and BDAT
//! chunks as the session asks for them) the way the server cuts them. Nothing may panic.
#![no_main]

use std::net::SocketAddr;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

/// Lines per input, and the longest line handed over (the servers' own caps are similar).
const MAX_STEPS: usize = 64;
const MAX_LINE: usize = 8 * 1024;

#[path = "common/world.rs"]
mod world;

/// Inputs run on one store before a fresh one replaces it (see `world::current`).
const RESET_EVERY: u32 = 5_000;

/// The next line with its line ending (the last one may have none).
fn next_line<'a>(rest: &mut &'a [u8]) -> &'a [u8] {
    let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
    let (line, after) = rest.split_at(end);
    *rest = after;
    line
}

async fn lmtp(w: &world::World, mut rest: &[u8]) {
    use mailkeep_lmtp::{Config, Flow, Session, Want};
    let config = Config { max_message_size: 1 << 20, ..Config::default() };
    let mut session = Session::new(w.store.clone(), config);
    let mut out = Vec::new();
    session.greeting(&mut out);
    for _ in 0..MAX_STEPS {
        if rest.is_empty() {
            break;
        }
        out.clear();
        let flow = match session.want() {
            Want::Command | Want::Data => {
                let line = next_line(&mut rest);
                if line.len() > MAX_LINE { session.line_too_long(&mut out) } else { session.line(line, &mut out).await }
            }
            Want::Chunk(n) => {
                let take = usize::try_from(n).unwrap_or(usize::MAX).min(rest.len());
                let (chunk, after) = rest.split_at(take);
                rest = after;
                session.chunk(chunk, &mut out).await
            }
        };
        if flow == Flow::Close {
            return;
        }
    }
    session.abort();
}

async fn pop3(w: &world::World, mut rest: &[u8]) {
    use mailkeep_pop3::{Flow, Pop3Config, Session};
    let config = Pop3Config {
        peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
        tls_active: false,
        stls_available: true,
        plaintext_auth_without_tls: true,
        max_auth_failures: 3,
        delete_on_quit: true,
    };
    let mut session = Session::new(w.store.clone(), w.maildrops.clone(), config);
    session.set_auth_failure_delay(Duration::ZERO);
    let mut out = Vec::new();
    session.greeting(&mut out);
    for _ in 0..MAX_STEPS {
        if rest.is_empty() {
            break;
        }
        out.clear();
        let line = next_line(&mut rest);
        let flow = if line.len() > MAX_LINE {
            session.line_too_long(&mut out)
        } else {
            let line = line.strip_suffix(b"\n").map(|l| l.strip_suffix(b"\r").unwrap_or(l)).unwrap_or(line);
            session.handle_line(line, &mut out).await
        };
        match flow {
            Flow::Continue => {}
            Flow::Close => return,
            Flow::StartTls => session.tls_started(),
            Flow::Message(mut message) => {
                let mut piece = Vec::new();
                while message.next_chunk(&mut piece, 4096).unwrap_or(false) {
                    piece.clear();
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let w = world::current(RESET_EVERY);
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    w.runtime.block_on(async { if which & 1 == 0 { lmtp(&w, rest).await } else { pop3(&w, rest).await } });
});
