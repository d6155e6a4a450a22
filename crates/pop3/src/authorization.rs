//! The AUTHORIZATION state: USER/PASS, AUTH PLAIN/LOGIN (RFC 5034) with the shared throttle,
//! and the maildrop snapshot taken at login.

use super::*;
use mailkeep_auth::app_passwords::{LoginCheck, Watch};

impl Session {
    pub(crate) async fn authorization(&mut self, command: Command, out: &mut Vec<u8>) -> Flow {
        match command {
            Command::Stls => {
                if self.config.tls_active {
                    err(out, "TLS is already active.")
                } else if !self.config.stls_available {
                    err(out, "STLS is not available.")
                } else {
                    self.set_user(None);
                    out.extend_from_slice(b"+OK Begin TLS negotiation now.\r\n");
                    Flow::StartTls
                }
            }
            Command::User(name) => {
                if !self.plaintext_allowed() {
                    out.extend_from_slice(PLAINTEXT_REFUSED.as_bytes());
                    return Flow::Continue;
                }
                self.set_user(Some(name));
                ok(out, "Send your password.")
            }
            Command::Pass(password) => {
                let user = match &mut self.state {
                    State::Authorization { user, .. } => user.take(),
                    _ => None,
                };
                let Some(user) = user else {
                    return err(out, "USER first.");
                };
                if !self.plaintext_allowed() {
                    out.extend_from_slice(PLAINTEXT_REFUSED.as_bytes());
                    return Flow::Continue;
                }
                self.login(&user, &password, "USER", out).await
            }
            Command::Apop => err(out, "APOP is not supported."),
            Command::Auth {
                mechanism: None, ..
            } => {
                // The pre-RFC 5034 listing that many clients still ask for.
                out.extend_from_slice(b"+OK Mechanisms follow\r\n");
                for m in self.scram_mechanisms() {
                    out.extend_from_slice(m.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                if self.plaintext_allowed() {
                    out.extend_from_slice(b"PLAIN\r\nLOGIN\r\n");
                    if self.oauth.is_some() {
                        out.extend_from_slice(b"OAUTHBEARER\r\nXOAUTH2\r\n");
                    }
                }
                out.extend_from_slice(b".\r\n");
                Flow::Continue
            }
            Command::Auth {
                mechanism: Some(mechanism),
                initial_response,
            } => {
                let step = if mechanism.eq_ignore_ascii_case("PLAIN") {
                    SaslStep::Plain
                } else if mechanism.eq_ignore_ascii_case("LOGIN") {
                    SaslStep::LoginUser
                } else if self.oauth.is_some() && mechanism.eq_ignore_ascii_case("OAUTHBEARER") {
                    SaslStep::OAuth { xoauth2: false }
                } else if self.oauth.is_some() && mechanism.eq_ignore_ascii_case("XOAUTH2") {
                    SaslStep::OAuth { xoauth2: true }
                } else if let Some(mech) = self.scram_mechanism(&mechanism) {
                    let step = scram::ScramStep::First;
                    SaslStep::Scram { mech, step }
                } else {
                    return err(out, "Unsupported authentication mechanism.");
                };
                if !matches!(step, SaslStep::Scram { .. }) && !self.plaintext_allowed() {
                    out.extend_from_slice(PLAINTEXT_REFUSED.as_bytes());
                    return Flow::Continue;
                }
                match initial_response {
                    Some(ir) => self.sasl_response(step, &ir, out).await,
                    None => {
                        let prompt: &[u8] = match step {
                            SaslStep::LoginUser => b"Username:",
                            _ => b"",
                        };
                        self.continuation(step, prompt, out)
                    }
                }
            }
            _ => err(out, "Not logged in yet."),
        }
    }

    pub(crate) fn set_user(&mut self, name: Option<Vec<u8>>) {
        if let State::Authorization { user, .. } = &mut self.state {
            *user = name;
        }
    }

    pub(crate) fn continuation(
        &mut self,
        step: SaslStep,
        challenge: &[u8],
        out: &mut Vec<u8>,
    ) -> Flow {
        out.extend_from_slice(b"+ ");
        out.extend_from_slice(sasl::encode_base64(challenge).as_bytes());
        out.extend_from_slice(b"\r\n");
        if let State::Authorization { sasl, .. } = &mut self.state {
            *sasl = Some(step);
        }
        Flow::Continue
    }

    /// One client response in an AUTH exchange (RFC 5034 §4).
    pub(crate) async fn sasl_response(
        &mut self,
        step: SaslStep,
        line: &[u8],
        out: &mut Vec<u8>,
    ) -> Flow {
        if line == b"*" {
            return err(out, "Authentication cancelled.");
        }
        let Some(data) = sasl::decode_base64(line) else {
            return err(out, "Invalid base64 data.");
        };
        match step {
            SaslStep::Plain => {
                let Some(creds) = sasl::decode_plain(&data) else {
                    return self.failed(Duration::ZERO, out).await;
                };
                if !creds.authzid.is_empty() && creds.authzid != creds.authcid {
                    // No master users: one may only act as oneself.
                    out.extend_from_slice(b"-ERR [AUTH] Authorization failed.\r\n");
                    return Flow::Continue;
                }
                self.login(&creds.authcid, &creds.password, "PLAIN", out)
                    .await
            }
            SaslStep::LoginUser => {
                self.continuation(SaslStep::LoginPassword(data), b"Password:", out)
            }
            SaslStep::LoginPassword(user) => self.login(&user, &data, "LOGIN", out).await,
            SaslStep::Scram { mech, step } => self.scram_step(mech, step, &data, out).await,
            SaslStep::OAuth { xoauth2 } => self.oauth_login(xoauth2, &data, out).await,
            SaslStep::OAuthFailed { extra_delay } => self.failed(extra_delay, out).await,
        }
    }

    /// OAUTHBEARER (RFC 7628) or XOAUTH2: a refused token gets the RFC 7628 error JSON as a
    /// challenge, and the client's answer (`AQ==`) the `-ERR`.
    async fn oauth_login(&mut self, xoauth2: bool, data: &[u8], out: &mut Vec<u8>) -> Flow {
        use mailkeep_auth::oauth;
        let mechanism = if xoauth2 {
            oauth::XOAUTH2
        } else {
            oauth::OAUTHBEARER
        };
        let Some(validator) = self.oauth.clone() else {
            return self.failed(Duration::ZERO, out).await;
        };
        let bearer = if xoauth2 {
            oauth::parse_xoauth2(data)
        } else {
            oauth::parse_oauthbearer(data)
        };
        let Some(bearer) = bearer else {
            return self.failed(Duration::ZERO, out).await;
        };
        let resolved = oauth::resolve(&*self.store, &validator, &bearer).await;
        let verdict = mailkeep_auth::attempt_checked(
            self.throttle.as_deref(),
            mailkeep_auth::Attempt {
                proto: "pop3",
                ip: self.config.peer.ip(),
                user: &resolved.shown,
                account: resolved.account.as_ref().map(|u| u.name.as_str()),
                phc: None,
                password: b"",
                mechanism,
                tls: self.config.tls_active,
            },
            resolved.account.is_some(),
        )
        .await;
        match (verdict, resolved.account) {
            (mailkeep_auth::Verdict::Success, Some(user)) => {
                self.logged_in(user, mechanism, out).await
            }
            (verdict, _) => {
                let extra_delay = match verdict {
                    mailkeep_auth::Verdict::Failure { extra_delay } => extra_delay,
                    mailkeep_auth::Verdict::Success | mailkeep_auth::Verdict::Unavailable => {
                        Duration::ZERO
                    }
                };
                let challenge = oauth::error_json(validator.issuer());
                self.continuation(
                    SaslStep::OAuthFailed { extra_delay },
                    challenge.as_bytes(),
                    out,
                )
            }
        }
    }

    pub(crate) async fn login(
        &mut self,
        username: &[u8],
        password: &[u8],
        mechanism: &'static str,
        out: &mut Vec<u8>,
    ) -> Flow {
        let name = String::from_utf8_lossy(username).into_owned();
        let user = match self.find_user(&name).await {
            Ok(u) => u,
            Err(e) => return sys_temp(out, &e),
        };
        // App passwords (and, with two-factor on, recovery codes) first, without argon2; with
        // two-factor on nothing else logs in.
        let check = match &user {
            Some(u) => {
                match mailkeep_auth::app_passwords::check_login(&*self.store, u, password).await {
                    Ok(c) => c,
                    Err(e) => return sys_temp(out, &e),
                }
            }
            None => LoginCheck::TryPassword,
        };
        let attempt = mailkeep_auth::Attempt {
            proto: "pop3",
            ip: self.config.peer.ip(),
            user: &name,
            account: user.as_ref().map(|u| u.name.as_str()),
            phc: user.as_ref().map(|u| u.password_hash.as_str()),
            password,
            mechanism,
            tls: self.config.tls_active,
        };
        let verdict =
            mailkeep_auth::attempt_after_check(self.throttle.as_deref(), attempt, check).await;
        let user = match (verdict, user) {
            (mailkeep_auth::Verdict::Success, Some(user)) => user,
            (mailkeep_auth::Verdict::Failure { extra_delay }, _) => {
                return self.failed(extra_delay, out).await;
            }
            // Nothing was checked (every password-hashing slot taken): try again later.
            (mailkeep_auth::Verdict::Unavailable, _) => {
                out.extend_from_slice(
                    b"-ERR [SYS/TEMP] Too many logins at once, try again in a moment.\r\n",
                );
                return Flow::Continue;
            }
            (_, None) => return self.failed(Duration::ZERO, out).await,
        };
        match check {
            LoginCheck::TryPassword => {
                self.upgrade_secrets(&user, password).await;
                self.app_password = Some(Watch::main_password(&user.name));
            }
            LoginCheck::AppPassword(id) => self.app_password = Some(Watch::new(id)),
            _ => {}
        }
        self.logged_in(user, mechanism, out).await
    }

    /// The account is authenticated: lock its maildrop and take the snapshot.
    pub(crate) async fn logged_in(
        &mut self,
        user: User,
        mechanism: &'static str,
        out: &mut Vec<u8>,
    ) -> Flow {
        let Some(lock) = self.maildrops.try_lock(user.id) else {
            tracing::info!(user = %user.name, peer = %self.config.peer, "pop3 maildrop in use");
            out.extend_from_slice(
                b"-ERR [IN-USE] Another POP3 session of this account is active.\r\n",
            );
            return Flow::Continue;
        };
        let drop = match self.snapshot(user, lock).await {
            Ok(d) => d,
            Err(e) => return sys_temp(out, &e),
        };
        // The login itself was logged (`event=auth_success`) by `mailkeep_auth::attempt`.
        tracing::debug!(
            user = %drop.user.name,
            peer = %self.config.peer,
            mechanism,
            tls = self.config.tls_active,
            messages = drop.messages.len(),
            "pop3 login"
        );
        self.user_name = Some(drop.user.name.clone());
        out.extend_from_slice(
            format!(
                "+OK Logged in, {} messages ({} octets).\r\n",
                drop.messages.len(),
                drop.messages.iter().map(|m| m.size).sum::<u64>()
            )
            .as_bytes(),
        );
        self.state = State::Transaction(drop);
        Flow::Continue
    }

    pub(crate) async fn snapshot(
        &self,
        user: User,
        lock: MaildropLock,
    ) -> Result<Maildrop, StoreError> {
        let inbox = self
            .store
            .get_mailbox(user.id, "INBOX")
            .await?
            .ok_or_else(|| StoreError::Internal("the account has no INBOX".into()))?;
        let messages = self
            .store
            .messages(inbox.id)
            .await?
            .into_iter()
            .map(|m| Entry {
                uid: m.uid,
                size: m.size,
                deleted: false,
                retrieved: false,
            })
            .collect();
        Ok(Maildrop {
            user,
            mailbox: inbox.id,
            uidvalidity: inbox.uidvalidity,
            messages,
            _lock: lock,
        })
    }

    /// `name` exactly, else the part before `@` (as IMAP LOGIN does).
    pub(crate) async fn find_user(&self, name: &str) -> Result<Option<User>, StoreError> {
        if !mailkeep_auth::valid_user_name(name) {
            return Ok(None);
        }
        if let Some(u) = self.store.get_user(name).await? {
            return Ok(Some(u));
        }
        match name.split_once('@') {
            Some((local, _)) if !local.is_empty() => self.store.get_user(local).await,
            _ => Ok(None),
        }
    }

    /// A failed login (logged by `mailkeep_auth::attempt`); `extra_delay` from the throttle.
    pub(crate) async fn failed(&mut self, extra_delay: Duration, out: &mut Vec<u8>) -> Flow {
        let delay = self.auth_failure_delay + extra_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.auth_failures += 1;
        if self.auth_failures >= self.config.max_auth_failures.max(1) {
            out.extend_from_slice(
                b"-ERR [AUTH] Authentication failed; too many attempts, closing.\r\n",
            );
            self.state = State::Done;
            return Flow::Close;
        }
        out.extend_from_slice(b"-ERR [AUTH] Authentication failed.\r\n");
        Flow::Continue
    }

    /// After a successful login: rehash and SCRAM keys as the IMAP session does (see
    /// [`mailkeep_auth::scram_keys::after_password_login`]).
    async fn upgrade_secrets(&self, user: &User, password: &[u8]) {
        let (iterations, sha1) = (self.scram_iterations, self.scram_sha1);
        mailkeep_auth::scram_keys::after_password_login(
            &*self.store,
            user,
            password,
            iterations,
            sha1,
        )
        .await
    }
}
