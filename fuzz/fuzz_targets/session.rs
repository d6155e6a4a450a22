//! Fuzz a whole session from raw client bytes: the input is cut into commands the way the
//! server does (lines, literals), each command is parsed and run by a real `Session` on a real
//! SQLite store, and the session's flow (SASL continuation, IDLE, STARTTLS, close) is followed.
//! Nothing may panic, whatever the client sends. The store is shared by runs in a row
//! (`RESET_EVERY`), so state left by one input (mailboxes, messages) is there for the next, as on
//! a long-running server.
#![no_main]

use std::net::SocketAddr;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mailkeep_proto::frame::{Fragment, literal_announcement};
use mailkeep_proto::parse_command;
use mailkeep_session::{Flow, Session, SessionConfig};

/// Commands per input: a bound so one input cannot run for long.
const MAX_COMMANDS: usize = 32;
const MAX_FRAGMENTS: usize = 64;

#[path = "common/world.rs"]
mod world;

/// Inputs run on one store before a fresh one replaces it: they append and select, and with
/// 5,000 a grown mailbox made each input about four times slower.
const RESET_EVERY: u32 = 500;

/// Cut the next command off `rest`: one line, and a literal after each line that announces one.
fn next_command<'a>(rest: &mut &'a [u8]) -> Vec<Fragment> {
    let mut frags = Vec::new();
    while frags.len() < MAX_FRAGMENTS && !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
        let (line, after) = rest.split_at(end);
        frags.push(Fragment::Line(line.to_vec()));
        *rest = after;
        let Ok(Some(a)) = literal_announcement(line) else {
            break;
        };
        let len = usize::try_from(a.len).unwrap_or(usize::MAX).min(rest.len());
        let (lit, after) = rest.split_at(len);
        frags.push(Fragment::Literal(lit.to_vec()));
        *rest = after;
    }
    frags
}

fn next_line<'a>(rest: &mut &'a [u8]) -> &'a [u8] {
    let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
    let (line, after) = rest.split_at(end);
    *rest = after;
    line.strip_suffix(b"\n").map(|l| l.strip_suffix(b"\r").unwrap_or(l)).unwrap_or(line)
}

fuzz_target!(|data: &[u8]| {
    let w = world::current(RESET_EVERY);
    w.runtime.block_on(async {
        let config = SessionConfig {
            peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
            tls_active: false,
            starttls_available: true,
            plaintext_auth_without_tls: true,
            max_message_size: 1 << 20,
            max_auth_failures: 3,
            max_mailboxes: 50,
            max_subscriptions: 50,
        };
        let mut session = Session::new(w.store.clone(), config);
        session.set_auth_failure_delay(Duration::ZERO);
        let mut out = Vec::new();
        session.greeting(&mut out);
        let mut rest = data;
        for _ in 0..MAX_COMMANDS {
            if rest.is_empty() {
                break;
            }
            out.clear();
            let frags = next_command(&mut rest);
            let mut flow = match parse_command(&frags) {
                Ok(cmd) => session.handle(cmd, &mut out).await,
                Err(e) => session.parse_error(&e, &mut out),
            };
            loop {
                flow = match flow {
                    Flow::Continue => break,
                    Flow::Close => return,
                    Flow::StartTls => {
                        session.tls_started();
                        break;
                    }
                    // The server would deflate the stream from here; the session is the same.
                    Flow::Compress => break,
                    Flow::SaslContinue => {
                        let line = next_line(&mut rest);
                        session.sasl_response(line, &mut out).await
                    }
                    Flow::MoreOutput => session.resume_output(&mut out).await,
                    Flow::Idle => {
                        session.idle_update(&mut out).await;
                        let line = next_line(&mut rest);
                        session.idle_done(line.eq_ignore_ascii_case(b"DONE"), &mut out).await
                    }
                };
            }
            if session.is_logged_out() {
                return;
            }
        }
    });
});
