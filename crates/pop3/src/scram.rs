//! AUTH SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (and SCRAM-SHA-1(-PLUS) where the setting asks)
//! for POP3 (RFC 5034 with RFC 5802, 7677, 9266):
//! the IMAP session's exchange (see mailkeep-session's `scram`) in POP3's framing.
//! `+ base64` challenges; a failure is `-ERR [AUTH] Authentication failed.` at once, the same
//! as a wrong password, through the same throttle.

use mailkeep_auth::scram::{self, Binding, Mechanism, ScramError, Secrets, ServerFirst};

use super::*;

/// The server secret the stand-in salts of unknown users come from (shared with IMAP).
const FAKE_SALT_SECRET: &str = "scram-fake-salt";

pub(crate) enum ScramStep {
    First,
    Final {
        server: Box<ServerFirst>,
        account: Option<User>,
    },
    /// `v=...` sent: an empty response completes the login.
    Done(User),
}

impl Session {
    fn binding(&self) -> Binding<'_> {
        Binding::of(self.channel_binding.as_deref())
    }

    /// The SCRAM mechanism `mechanism` names, if this connection offers it (-PLUS where it
    /// binds, SHA-1 where the setting allows).
    pub(crate) fn scram_mechanism(&self, mechanism: &str) -> Option<Mechanism> {
        scram::mechanism(mechanism, self.channel_binding.is_some(), self.scram_sha1)
    }

    /// The SCRAM mechanisms this connection offers, strongest first.
    pub(crate) fn scram_mechanisms(&self) -> Vec<&'static str> {
        scram::advertised(self.channel_binding.is_some(), self.scram_sha1)
    }

    pub(crate) async fn scram_step(
        &mut self,
        mech: Mechanism,
        step: ScramStep,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Flow {
        match step {
            ScramStep::First => {
                let client = match scram::parse_client_first(data, mech.plus, self.binding()) {
                    Ok(c) => c,
                    Err(e) => return self.scram_failed(e, Duration::ZERO, out).await,
                };
                let account = match self.find_user(&client.user).await {
                    Ok(a) => a,
                    Err(e) => return sys_temp(out, &e),
                };
                let mut secrets = None;
                if let Some(u) = &account {
                    let store = &*self.store;
                    secrets = match mailkeep_auth::scram_keys::load(store, u, mech.hash).await {
                        Ok(s) => s,
                        Err(e) => return sys_temp(out, &e),
                    };
                }
                let secrets = match secrets {
                    Some(s) => s,
                    None => match self.store.server_secret(FAKE_SALT_SECRET).await {
                        Ok(secret) => {
                            let iterations = self.scram_iterations;
                            Secrets::fake_with(mech.hash, &secret, &client.user, iterations)
                        }
                        Err(e) => return sys_temp(out, &e),
                    },
                };
                let server = ServerFirst::start(client, secrets);
                let challenge = server.message().as_bytes().to_vec();
                let step = ScramStep::Final {
                    server: Box::new(server),
                    account,
                };
                self.continuation(SaslStep::Scram { mech, step }, &challenge, out)
            }
            ScramStep::Final { server, account } => {
                let result = server.finish(data, self.binding());
                // The keys come from the main password: not with two-factor on.
                let allowed = match &account {
                    Some(u) if result.is_ok() => {
                        mailkeep_auth::app_passwords::main_password_allowed(&*self.store, &u.name)
                            .await
                            .unwrap_or(false)
                    }
                    _ => true,
                };
                let verdict = mailkeep_auth::attempt_checked(
                    self.throttle.as_deref(),
                    mailkeep_auth::Attempt {
                        proto: "pop3",
                        ip: self.config.peer.ip(),
                        user: server.user(),
                        account: account.as_ref().map(|u| u.name.as_str()),
                        phc: None,
                        password: b"",
                        mechanism: mech.name(),
                        tls: self.config.tls_active,
                    },
                    result.is_ok() && allowed,
                )
                .await;
                match (verdict, result, account) {
                    (mailkeep_auth::Verdict::Success, Ok(v), Some(user)) => {
                        let step = ScramStep::Done(user);
                        let challenge = v.server_final.into_bytes();
                        self.continuation(SaslStep::Scram { mech, step }, &challenge, out)
                    }
                    (verdict, result, _) => {
                        let delay = match verdict {
                            mailkeep_auth::Verdict::Failure { extra_delay } => extra_delay,
                            mailkeep_auth::Verdict::Success
                            | mailkeep_auth::Verdict::Unavailable => Duration::ZERO,
                        };
                        let e = result.err().unwrap_or(ScramError::InvalidProof);
                        self.scram_failed(e, delay, out).await
                    }
                }
            }
            ScramStep::Done(user) => {
                if !data.is_empty() {
                    return self.failed(Duration::ZERO, out).await;
                }
                // SCRAM's keys come from the main password.
                self.app_password = Some(mailkeep_auth::app_passwords::Watch::main_password(
                    &user.name,
                ));
                self.logged_in(user, mech.name(), out).await
            }
        }
    }

    /// A wrong proof gets exactly a wrong password's answer; other errors name their RFC 5802
    /// value (counted as failures all the same).
    async fn scram_failed(&mut self, e: ScramError, delay: Duration, out: &mut Vec<u8>) -> Flow {
        if e == ScramError::InvalidProof {
            return self.failed(delay, out).await;
        }
        let mut tmp = Vec::new();
        let flow = self.failed(delay, &mut tmp).await;
        let text = String::from_utf8_lossy(&tmp).replace(
            "Authentication failed.",
            &format!("Authentication failed ({}).", e.message()),
        );
        out.extend_from_slice(text.as_bytes());
        flow
    }
}
