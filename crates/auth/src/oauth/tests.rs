use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;

const JWKS: &str = include_str!("test-jwks.json");
const KEY: &[u8] = include_bytes!("test-key.der");
const OTHER_KEY: &[u8] = include_bytes!("other-key.der");
const ISS: &str = "https://id.example.org";
const AUD: &str = "mailkeep";

fn validator() -> Validator {
    Validator::from_jwks(JWKS, ISS, AUD, "email").unwrap()
}

fn now() -> i64 {
    crate::totp::now() as i64
}

fn token_with(key: &[u8], alg: Algorithm, kid: Option<&str>, claims: serde_json::Value) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&h, &claims, &EncodingKey::from_rsa_der(key)).unwrap()
}

fn good_claims() -> serde_json::Value {
    json!({"iss": ISS, "aud": AUD, "exp": now() + 600, "email": "alice@example.org"})
}

#[test]
fn accepts_a_good_token() {
    let t = token_with(KEY, Algorithm::RS256, Some("test-1"), good_claims());
    assert_eq!(validator().validate(&t).unwrap(), "alice@example.org");
    // Another claim for the name.
    let v = Validator::from_jwks(JWKS, ISS, AUD, "preferred_username").unwrap();
    let mut c = good_claims();
    c["preferred_username"] = json!("alice");
    let t = token_with(KEY, Algorithm::RS256, Some("test-1"), c);
    assert_eq!(v.validate(&t).unwrap(), "alice");
}

#[test]
fn rejects_wrong_issuer_audience_and_expired() {
    let v = validator();
    for (field, value) in [
        ("iss", json!("https://evil.example")),
        ("aud", json!("someone-else")),
        ("exp", json!(now() - 3600)),
    ] {
        let mut c = good_claims();
        c[field] = value;
        let t = token_with(KEY, Algorithm::RS256, Some("test-1"), c);
        assert!(
            matches!(v.validate(&t), Err(TokenError::Invalid(_))),
            "{field}"
        );
    }
    // Missing exp.
    let mut c = good_claims();
    c.as_object_mut().unwrap().remove("exp");
    let t = token_with(KEY, Algorithm::RS256, Some("test-1"), c);
    assert!(v.validate(&t).is_err());
    // Not yet valid.
    let mut c = good_claims();
    c["nbf"] = json!(now() + 3600);
    let t = token_with(KEY, Algorithm::RS256, Some("test-1"), c);
    assert!(v.validate(&t).is_err());
    // No username claim.
    let mut c = good_claims();
    c.as_object_mut().unwrap().remove("email");
    let t = token_with(KEY, Algorithm::RS256, Some("test-1"), c);
    assert_eq!(v.validate(&t), Err(TokenError::NoUsername("email".into())));
}

#[test]
fn rejects_bad_signature_unknown_key_and_alg_none() {
    let v = validator();
    let t = token_with(OTHER_KEY, Algorithm::RS256, Some("test-1"), good_claims());
    assert!(matches!(v.validate(&t), Err(TokenError::Invalid(_))));
    let t = token_with(KEY, Algorithm::RS256, Some("nope"), good_claims());
    assert!(matches!(v.validate(&t), Err(TokenError::UnknownKey(_))));
    // A token changed after signing.
    let t = token_with(KEY, Algorithm::RS256, Some("test-1"), good_claims());
    let mut parts: Vec<&str> = t.split('.').collect();
    let forged = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        json!({"iss": ISS, "aud": AUD, "exp": now() + 600, "email": "admin"}).to_string(),
    );
    parts[1] = &forged;
    assert!(matches!(
        v.validate(&parts.join(".")),
        Err(TokenError::Invalid(_))
    ));
    // alg none, unsigned.
    let b64 =
        |s: String| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s);
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT", "kid": "test-1"}).to_string()),
        b64(good_claims().to_string())
    );
    assert!(matches!(v.validate(&none), Err(TokenError::Algorithm(_))));
    // HS256 with the public key's bytes as the secret.
    let hs = jsonwebtoken::encode(
        &Header {
            kid: Some("test-1".into()),
            ..Header::new(Algorithm::HS256)
        },
        &good_claims(),
        &EncodingKey::from_secret(b"whatever"),
    )
    .unwrap();
    assert!(matches!(v.validate(&hs), Err(TokenError::Algorithm(_))));
    // RS384 where the key says RS256.
    let t = token_with(KEY, Algorithm::RS384, Some("test-1"), good_claims());
    assert!(matches!(v.validate(&t), Err(TokenError::Algorithm(_))));
    assert!(v.validate("garbage").is_err());
}

#[test]
fn bad_configuration() {
    assert!(Validator::from_jwks("{}", ISS, AUD, "email").is_err());
    assert!(Validator::from_jwks(r#"{"keys": []}"#, ISS, AUD, "email").is_err());
    assert!(Validator::from_jwks(JWKS, "", AUD, "email").is_err());
}

#[test]
fn sasl_messages() {
    assert_eq!(
        parse_oauthbearer(
            b"n,a=alice@example.org,\x01host=x\x01port=143\x01auth=Bearer abc.def.ghi\x01\x01"
        ),
        Some(Bearer {
            user: "alice@example.org".into(),
            token: "abc.def.ghi".into()
        })
    );
    assert_eq!(
        parse_oauthbearer(b"n,,\x01auth=Bearer tok\x01\x01")
            .unwrap()
            .user,
        ""
    );
    assert_eq!(
        parse_oauthbearer(b"p=tls-unique,,\x01auth=Bearer t\x01\x01"),
        None
    );
    assert_eq!(parse_oauthbearer(b"n,,\x01auth=Basic t\x01\x01"), None);
    assert_eq!(parse_oauthbearer(b"n,,\x01\x01"), None);
    assert_eq!(
        parse_xoauth2(b"user=bob\x01auth=Bearer tok\x01\x01"),
        Some(Bearer {
            user: "bob".into(),
            token: "tok".into()
        })
    );
    assert_eq!(parse_xoauth2(b"auth=Bearer tok\x01\x01"), None);
    let j: serde_json::Value = serde_json::from_str(&error_json(ISS)).unwrap();
    assert_eq!(j["status"], "invalid_token");
}
