//! SASL message decoding: PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login).

/// The credentials carried by a SASL PLAIN message: `[authzid] NUL authcid NUL passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainCredentials {
    pub authzid: Vec<u8>,
    pub authcid: Vec<u8>,
    pub password: Vec<u8>,
}

/// Decode a PLAIN message (already base64-decoded). `None` if it does not have exactly three
/// NUL-separated fields or the authentication identity is empty.
pub fn decode_plain(message: &[u8]) -> Option<PlainCredentials> {
    let mut fields = message.split(|b| *b == 0);
    let authzid = fields.next()?.to_vec();
    let authcid = fields.next()?.to_vec();
    let password = fields.next()?.to_vec();
    if fields.next().is_some() || authcid.is_empty() {
        return None;
    }
    Some(PlainCredentials {
        authzid,
        authcid,
        password,
    })
}

/// Decode a base64 SASL response line. `=` alone is the empty response (RFC 4959 §3).
pub fn decode_base64(line: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    if line == b"=" {
        return Some(Vec::new());
    }
    base64::engine::general_purpose::STANDARD.decode(line).ok()
}

/// Encode a server challenge for a `+ ` continuation.
pub fn encode_base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// authzid, authcid, password
    type Fields<'a> = (&'a [u8], &'a [u8], &'a [u8]);

    #[test]
    fn plain_table() {
        let cases: &[(&[u8], Option<Fields>)] = &[
            (
                b"\0tim\0tanstaaftanstaaf",
                Some((b"", b"tim", b"tanstaaftanstaaf")),
            ),
            (
                b"Ursel\0Kurt\0xipj3plmq",
                Some((b"Ursel", b"Kurt", b"xipj3plmq")),
            ),
            (b"\0\0pw", None),
            (b"only-one-field", None),
            (b"\0a\0b\0c", None),
        ];
        for (input, want) in cases {
            let got = decode_plain(input);
            match want {
                None => assert!(got.is_none(), "{input:?}"),
                Some((z, c, p)) => {
                    let g = got.expect("decodes");
                    assert_eq!(
                        (
                            g.authzid.as_slice(),
                            g.authcid.as_slice(),
                            g.password.as_slice()
                        ),
                        (*z, *c, *p)
                    );
                }
            }
        }
    }

    #[test]
    fn base64_empty_and_bad() {
        assert_eq!(decode_base64(b"="), Some(vec![]));
        assert_eq!(decode_base64(b"dGVzdA=="), Some(b"test".to_vec()));
        assert_eq!(decode_base64(b"!!!"), None);
    }
}
