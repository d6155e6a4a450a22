//! Fuzz the SCRAM-SHA-256(-PLUS) server exchange (RFC 5802, 7677, 9266): the input's first byte
//! chooses the mechanism (-PLUS or not) and whether the connection has a TLS exporter; the rest
//! is the client-first and client-final messages, split at the first NUL. Nothing may panic,
//! and a client-final that is not built from the password's keys must never verify.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mailkeep_auth::scram::{parse_client_first, Binding, Secrets, ServerFirst};

fn secrets() -> &'static Secrets {
    static S: OnceLock<Secrets> = OnceLock::new();
    // Few iterations: the key derivation is not what is fuzzed here.
    S.get_or_init(|| Secrets::derive(b"pencil", b"fuzz salt", 16).expect("secrets"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let plus = mode & 1 != 0;
    let exporter = [7u8; 32];
    let binding = if mode & 2 != 0 { Binding::of(Some(&exporter)) } else { Binding::of(None) };
    let (first, last) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(client) = parse_client_first(first, plus, binding) else { return };
    let _ = client.user.len();
    let server = ServerFirst::start(client, secrets().clone());
    let _ = server.message();
    // The server nonce is random per run, so a fuzzed client-final cannot carry a valid proof.
    assert!(server.finish(last, binding).is_err());
});
