use super::*;

/// RFC 7677 §3: user "user", password "pencil".
const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const SNONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn rfc_secrets() -> Secrets {
    let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    Secrets::derive(b"pencil", &salt, 4096).unwrap()
}

#[test]
fn rfc7677_vector() {
    let cf = parse_client_first(CLIENT_FIRST.as_bytes(), false, Binding::Unavailable).unwrap();
    assert_eq!(cf.user, "user");
    let sf = ServerFirst::with_nonce(cf, rfc_secrets(), SNONCE);
    assert_eq!(sf.message(), SERVER_FIRST);
    let v = sf
        .finish(CLIENT_FINAL.as_bytes(), Binding::Unavailable)
        .unwrap();
    assert_eq!(v.server_final, SERVER_FINAL);
    // The stored form round-trips through Dovecot's syntax.
    let s = rfc_secrets();
    assert_eq!(Secrets::from_dovecot(&s.to_dovecot()), Some(s.clone()));
    assert!(s.matches_password(b"pencil"));
    assert!(!s.matches_password(b"pencil "));
}

#[test]
fn wrong_proof_and_nonce_fail() {
    let cf = parse_client_first(CLIENT_FIRST.as_bytes(), false, Binding::Unavailable).unwrap();
    let wrong = Secrets::derive(b"pencils", &rfc_secrets().salt, 4096).unwrap();
    let sf = ServerFirst::with_nonce(cf.clone(), wrong, SNONCE);
    assert_eq!(
        sf.finish(CLIENT_FINAL.as_bytes(), Binding::Unavailable),
        Err(ScramError::InvalidProof)
    );
    assert_eq!(ScramError::InvalidProof.message(), "e=invalid-proof");
    let sf = ServerFirst::with_nonce(cf.clone(), rfc_secrets(), "other");
    assert_eq!(
        sf.finish(CLIENT_FINAL.as_bytes(), Binding::Unavailable),
        Err(ScramError::NonceMismatch)
    );
    // A client-final claiming a binding it did not announce (c= not "n,,").
    let sf = ServerFirst::with_nonce(cf, rfc_secrets(), SNONCE);
    let bad = CLIENT_FINAL.replace("c=biws", "c=eSws");
    assert_eq!(
        sf.finish(bad.as_bytes(), Binding::Unavailable),
        Err(ScramError::ChannelBindingsDontMatch)
    );
    for garbage in ["", "c=biws", "p=xx", "c=biws,r=x,p=!!", "c=biws,r=x,p=AAAA"] {
        let sf = ServerFirst::with_nonce(
            parse_client_first(CLIENT_FIRST.as_bytes(), false, Binding::Unavailable).unwrap(),
            rfc_secrets(),
            SNONCE,
        );
        assert!(
            sf.finish(garbage.as_bytes(), Binding::Unavailable).is_err(),
            "{garbage}"
        );
    }
}

/// A client side written from RFC 5802 §3, to drive -PLUS with a binding.
fn client_final(password: &str, cfb: &str, sfm: &str, gs2: &str, cb: &[u8]) -> String {
    let mut parts = sfm.split(',');
    let nonce = parts.next().unwrap().strip_prefix("r=").unwrap();
    let salt = B64
        .decode(parts.next().unwrap().strip_prefix("s=").unwrap())
        .unwrap();
    let iters: u32 = parts
        .next()
        .unwrap()
        .strip_prefix("i=")
        .unwrap()
        .parse()
        .unwrap();
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iters, &mut salted);
    let ck = Hash::Sha256.hmac(&salted, b"Client Key");
    let sk: [u8; 32] = Sha256::digest(&ck).into();
    let mut c = gs2.as_bytes().to_vec();
    c.extend_from_slice(cb);
    let without = format!("c={},r={nonce}", B64.encode(c));
    let am = format!("{cfb},{sfm},{without}");
    let sig = Hash::Sha256.hmac(&sk, am.as_bytes());
    let proof: Vec<u8> = ck.iter().zip(sig).map(|(a, b)| a ^ b).collect();
    format!("{without},p={}", B64.encode(proof))
}

#[test]
fn plus_with_tls_exporter() {
    let cb = [7u8; 32];
    let binding = Binding::TlsExporter(&cb);
    let secrets = Secrets::generate(b"pencil", 4096).unwrap();
    let first = "p=tls-exporter,,n=user,r=abcdef";
    let cf = parse_client_first(first.as_bytes(), true, binding).unwrap();
    let sf = ServerFirst::start(cf, secrets.clone());
    let fin = client_final(
        "pencil",
        "n=user,r=abcdef",
        sf.message(),
        "p=tls-exporter,,",
        &cb,
    );
    assert!(sf.finish(fin.as_bytes(), binding).is_ok());
    // Another connection's binding (a man in the middle) does not match.
    let other = [8u8; 32];
    assert_eq!(
        sf.finish(fin.as_bytes(), Binding::TlsExporter(&other)),
        Err(ScramError::ChannelBindingsDontMatch)
    );
    let fin = client_final(
        "pencil",
        "n=user,r=abcdef",
        sf.message(),
        "p=tls-exporter,,",
        &other,
    );
    assert_eq!(
        sf.finish(fin.as_bytes(), binding),
        Err(ScramError::ChannelBindingsDontMatch)
    );
}

#[test]
fn gs2_flags() {
    let cb = [1u8; 32];
    let tls = Binding::TlsExporter(&cb);
    let no = Binding::Unavailable;
    let cases: &[(&str, bool, Binding, Result<(), ScramError>)] = &[
        ("n,,n=u,r=x", false, no, Ok(())),
        ("n,,n=u,r=x", false, tls, Ok(())),
        // y: fine where -PLUS is not offered, a downgrade where it is.
        ("y,,n=u,r=x", false, no, Ok(())),
        (
            "y,,n=u,r=x",
            false,
            tls,
            Err(ScramError::ServerDoesSupportChannelBinding),
        ),
        ("p=tls-exporter,,n=u,r=x", true, tls, Ok(())),
        (
            "p=tls-exporter,,n=u,r=x",
            false,
            tls,
            Err(ScramError::ChannelBindingNotSupported),
        ),
        (
            "p=tls-exporter,,n=u,r=x",
            true,
            no,
            Err(ScramError::ChannelBindingNotSupported),
        ),
        (
            "p=tls-unique,,n=u,r=x",
            true,
            tls,
            Err(ScramError::UnsupportedChannelBindingType),
        ),
        (
            "n,,n=u,r=x",
            true,
            tls,
            Err(ScramError::ChannelBindingRequired),
        ),
        (
            "y,,n=u,r=x",
            true,
            tls,
            Err(ScramError::ChannelBindingRequired),
        ),
        ("n,a=u,n=u,r=x", false, no, Ok(())),
        ("n,a=v,n=u,r=x", false, no, Err(ScramError::AuthzidMismatch)),
        (
            "n,,m=x,n=u,r=x",
            false,
            no,
            Err(ScramError::ExtensionsNotSupported),
        ),
        ("n,,n=,r=x", false, no, Err(ScramError::InvalidEncoding)),
        ("n,,n=u,r=", false, no, Err(ScramError::InvalidEncoding)),
        (
            "n,,n=u=2x,r=x",
            false,
            no,
            Err(ScramError::InvalidUsernameEncoding),
        ),
        ("x,,n=u,r=x", false, no, Err(ScramError::InvalidEncoding)),
        ("n,n=u,r=x", false, no, Err(ScramError::InvalidEncoding)),
        ("", false, no, Err(ScramError::InvalidEncoding)),
    ];
    for (msg, plus, b, want) in cases {
        let got = parse_client_first(msg.as_bytes(), *plus, *b).map(|_| ());
        assert_eq!(got, *want, "{msg} plus={plus} {b:?}");
    }
    let cf = parse_client_first(b"n,,n=a=2Cb=3Dc,r=x", false, no).unwrap();
    assert_eq!(cf.user, "a,b=c");
}

#[test]
fn saslprep_cases() {
    // RFC 4013 §3 examples.
    assert_eq!(saslprep("I\u{00AD}X".as_bytes()).as_deref(), Some("IX"));
    assert_eq!(saslprep(b"user").as_deref(), Some("user"));
    assert_eq!(saslprep(b"USER").as_deref(), Some("USER"));
    assert_eq!(saslprep("\u{00AA}".as_bytes()).as_deref(), Some("a"));
    assert_eq!(saslprep("\u{2168}".as_bytes()).as_deref(), Some("IX"));
    assert_eq!(saslprep(b"\x07"), None);
    assert_eq!(saslprep("\u{0627}\u{0031}".as_bytes()), None);
    // Non-ASCII space becomes a space; not UTF-8 is refused.
    assert_eq!(saslprep("a\u{00A0}b".as_bytes()).as_deref(), Some("a b"));
    assert_eq!(saslprep(b"\xff"), None);
    // The keys of an equivalent spelling are the same.
    let salt = b"0123456789abcdef";
    assert_eq!(
        Secrets::derive("I\u{00AD}X".as_bytes(), salt, 4096),
        Secrets::derive(b"IX", salt, 4096)
    );
}

#[test]
fn fake_secrets_are_stable_per_name() {
    let a = Secrets::fake(b"secret", "nobody", 4096);
    assert_eq!(a, Secrets::fake(b"secret", "nobody", 4096));
    assert_ne!(a.salt, Secrets::fake(b"secret", "nobody2", 4096).salt);
    assert_ne!(a.salt, Secrets::fake(b"other", "nobody", 4096).salt);
    assert_eq!(a.salt.len(), 16);
}

/// RFC 5802 §5's own example: SCRAM-SHA-1, user "user", password "pencil".
#[test]
fn rfc5802_sha1_vector() {
    let salt = B64.decode("QSXCR+Q6sek8bf92").unwrap();
    let secrets = Secrets::derive_with(Hash::Sha1, b"pencil", &salt, 4096).unwrap();
    assert_eq!(secrets.stored_key.len(), 20);
    let cf = parse_client_first(
        b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
        false,
        Binding::Unavailable,
    )
    .unwrap();
    let sf = ServerFirst::with_nonce(cf, secrets.clone(), "3rfcNHYJY1ZVvWVs7j");
    assert_eq!(
        sf.message(),
        "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
    );
    let fin = "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
    let v = sf.finish(fin.as_bytes(), Binding::Unavailable).unwrap();
    assert_eq!(v.server_final, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    assert!(secrets.matches_password(b"pencil"));
    // A SHA-256-sized proof against SHA-1 keys is malformed, not a match.
    let sf = ServerFirst::with_nonce(
        parse_client_first(b"n,,n=user,r=fyko", false, Binding::Unavailable).unwrap(),
        secrets,
        "x",
    );
    let long = format!("c=biws,r=fykox,p={}", B64.encode([0u8; 32]));
    assert_eq!(
        sf.finish(long.as_bytes(), Binding::Unavailable),
        Err(ScramError::InvalidEncoding)
    );
}

#[test]
fn mechanisms_offered() {
    assert_eq!(advertised(false, false), ["SCRAM-SHA-256"]);
    assert_eq!(
        advertised(true, true),
        [
            "SCRAM-SHA-256-PLUS",
            "SCRAM-SHA-256",
            "SCRAM-SHA-1-PLUS",
            "SCRAM-SHA-1"
        ]
    );
    let sha1 = Mechanism {
        hash: Hash::Sha1,
        plus: false,
    };
    assert_eq!(mechanism("scram-sha-1", false, true), Some(sha1));
    assert_eq!(mechanism("SCRAM-SHA-1", false, false), None, "setting off");
    assert_eq!(
        mechanism("SCRAM-SHA-1-PLUS", false, true),
        None,
        "cannot bind"
    );
    assert_eq!(
        mechanism("SCRAM-SHA-256-PLUS", true, false).map(|m| m.plus),
        Some(true)
    );
    assert_eq!(mechanism("SCRAM-SHA-512", true, true), None);
    // Stand-in keys have the hash's length.
    assert_eq!(
        Secrets::fake_with(Hash::Sha1, b"k", "u", 4096)
            .stored_key
            .len(),
        20
    );
}
