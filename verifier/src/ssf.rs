//! Learns revocations from an OpenID Shared Signals stream by poll (RFC 8936) instead of the SSE
//! feed: each answer's SETs are verified (RS256 with a key of revocable's `jwks_uri`, `typ:
//! secevent+jwt`, `iss` revocable's issuer, `aud` this client), applied, and acknowledged in the
//! next poll; one that fails verification is applied to nothing and reported in `setErrs`.
//!
//! The state counts as caught up once a poll answers with nothing more available, and stays
//! live while polls keep answering (a long poll answers within 20 s, under the silence limit);
//! until then, and after any failure, tokens are introspected, as with the feed.

use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value, json};

use crate::Verifier;
use crate::revocations::SetEvent;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);
const SET_TYPE: &str = "secevent+jwt";
/// Poll answers wait up to 20 s for an event; the request may take a little longer.
const LONG_POLL: Duration = Duration::from_secs(30);
const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
const CREDENTIAL_CHANGE: &str = "https://schemas.openid.net/secevent/caep/event-type/credential-change";
const ACCOUNT_PURGED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-purged";

/// A client token with `ssf.read` (client credentials, RFC 6749 section 4.4).
async fn client_token(verifier: &Verifier, http: &reqwest::Client) -> Result<String, String> {
    let config = &verifier.inner.config;
    let answer: Value = http
        .post(format!("{}/oauth/token", config.issuer_url))
        .basic_auth(&config.client_id, Some(&config.client_secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "ssf.read")])
        .timeout(config.request_timeout)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| format!("no client token: {error}"))?
        .json()
        .await
        .map_err(|error| format!("no client token: {error}"))?;
    answer["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "the token endpoint answered without an access_token".to_owned())
}

pub async fn follow_poll(verifier: Verifier, stream_id: String) {
    let url = format!("{}/ssf/poll/{stream_id}", verifier.inner.config.issuer_url);
    let http = reqwest::Client::builder()
        .connect_timeout(verifier.inner.config.request_timeout)
        .timeout(LONG_POLL)
        .build()
        .unwrap_or_default();
    let mut retry = FIRST_RETRY;
    // Acknowledgements and errors not yet delivered survive a failed poll.
    let mut ack: Vec<String> = Vec::new();
    let mut errors = Map::new();
    loop {
        let outcome = poll_until_failure(&verifier, &http, &url, &mut ack, &mut errors, &mut retry).await;
        verifier.inner.revocations.disconnected();
        tracing::warn!(
            problem = outcome,
            url,
            "shared signals poll failed; introspecting until it answers again"
        );
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(LAST_RETRY);
    }
}

async fn poll_until_failure(
    verifier: &Verifier,
    http: &reqwest::Client,
    url: &str,
    ack: &mut Vec<String>,
    errors: &mut Map<String, Value>,
    retry: &mut Duration,
) -> String {
    let token = match client_token(verifier, http).await {
        Ok(token) => token,
        Err(problem) => return problem,
    };
    let mut caught_up = false;
    loop {
        let body = json!({
            "maxEvents": 100,
            // Until caught up, answer at once: the state is not live before an empty answer.
            "returnImmediately": !caught_up,
            "ack": ack,
            "setErrs": errors,
        });
        let response = match http.post(url).bearer_auth(&token).json(&body).send().await {
            Ok(response) => response,
            Err(error) => return error.to_string(),
        };
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            // The client token expired: a new one, and poll on.
            return "the client token was refused".to_owned();
        }
        let answer: Value = match response.error_for_status() {
            Ok(response) => match response.json().await {
                Ok(answer) => answer,
                Err(error) => return error.to_string(),
            },
            Err(error) => return error.to_string(),
        };
        ack.clear();
        errors.clear();
        let sets = answer["sets"].as_object().cloned().unwrap_or_default();
        for (jti, set) in &sets {
            match set.as_str().map(|set| verify_set(verifier, set)) {
                Some(verification) => match verification.await {
                    Ok(claims) => {
                        if let Some(event) = event_of(&claims) {
                            verifier
                                .inner
                                .revocations
                                .apply_set(&event, verifier.inner.config.remember_for);
                        }
                        ack.push(jti.clone());
                    }
                    Err((code, description)) => {
                        tracing::warn!(
                            jti,
                            error = code,
                            description,
                            "a security event failed verification and was not applied"
                        );
                        errors.insert(jti.clone(), json!({ "err": code, "description": description }));
                    }
                },
                None => {
                    errors.insert(
                        jti.clone(),
                        json!({ "err": "invalid_request", "description": "not a JWT" }),
                    );
                }
            }
        }
        let more = answer["moreAvailable"].as_bool().unwrap_or(false);
        if !more {
            if !caught_up {
                verifier.inner.revocations.caught_up();
                *retry = FIRST_RETRY;
            }
            caught_up = true;
        }
        verifier.inner.revocations.heard();
        verifier
            .inner
            .revocations
            .forget_old(verifier.inner.config.remember_for);
    }
}

/// RFC 8417 and SSF 1.0 section 4: `typ`, RS256 with a published key, `iss`, `aud`.
async fn verify_set(verifier: &Verifier, set: &str) -> Result<Value, (&'static str, String)> {
    let header = jsonwebtoken::decode_header(set).map_err(|error| ("invalid_request", error.to_string()))?;
    if header.typ.as_deref().map(str::to_ascii_lowercase).as_deref() != Some(SET_TYPE) {
        return Err(("invalid_request", format!("typ must be {SET_TYPE}")));
    }
    if header.alg != Algorithm::RS256 {
        return Err(("invalid_key", "SETs are signed with RS256".to_owned()));
    }
    let kid = header.kid.ok_or(("invalid_key", "no kid".to_owned()))?;
    let inner = &verifier.inner;
    let key = inner
        .keys
        .key(&inner.http, &kid, |_| {})
        .await
        .map_err(|_| ("invalid_key", "the JWKS could not be fetched".to_owned()))?
        .ok_or(("invalid_key", format!("jwks_uri publishes no key {kid}")))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iss", "aud"]);
    validation.set_issuer(&[&inner.config.issuer]);
    validation.set_audience(&[&inner.config.client_id]);
    jsonwebtoken::decode::<Value>(set, &key, &validation)
        .map(|data| data.claims)
        .map_err(|error| match error.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidIssuer => ("invalid_issuer", error.to_string()),
            jsonwebtoken::errors::ErrorKind::InvalidAudience => ("invalid_audience", error.to_string()),
            _ => ("invalid_key", error.to_string()),
        })
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// What a verified SET means for tokens; `None` for events that revoke nothing (verification,
/// stream-updated, a second factor's change).
pub(crate) fn event_of(claims: &Value) -> Option<SetEvent> {
    let (event_type, payload) = claims["events"].as_object()?.iter().next()?;
    let subject = &claims["sub_id"];
    let timestamp = payload["event_timestamp"].as_i64().or_else(|| claims["iat"].as_i64())?;
    let user = match text(subject, "/format") {
        Some("complex") => text(subject, "/user/sub"),
        Some("iss_sub") => text(subject, "/sub"),
        _ => None,
    };
    match event_type.as_str() {
        SESSION_REVOKED => match (text(subject, "/format"), text(subject, "/session/format")) {
            (Some("complex"), Some("opaque")) => {
                text(subject, "/session/id").map(|id| SetEvent::Session(id.to_owned()))
            }
            (Some("complex"), Some("jwt_id")) => text(subject, "/session/jti").map(|jti| SetEvent::Jti(jti.to_owned())),
            (Some("iss_sub"), _) => user.map(|user| SetEvent::User(user.to_owned(), timestamp)),
            _ => None,
        },
        // A password changed or reset ends every token issued before it; a second factor's
        // change (credential_type `app`) ends none.
        CREDENTIAL_CHANGE if payload["credential_type"] == "password" => {
            user.map(|user| SetEvent::User(user.to_owned(), timestamp))
        }
        ACCOUNT_PURGED => user.map(|user| SetEvent::Deleted(user.to_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_revoking_set_names_what_it_ends_and_the_others_nothing() {
        let user = json!({ "format": "iss_sub", "iss": "https://id", "sub": "u1" });
        let set = |event: &str, sub_id: Value, payload: Value| json!({ "iat": 100, "sub_id": sub_id, "events": { event: payload } });
        let session = json!({ "format": "complex", "user": user, "session": { "format": "opaque", "id": "s1" } });
        assert_eq!(
            event_of(&set(SESSION_REVOKED, session, json!({ "event_timestamp": 90 }))),
            Some(SetEvent::Session("s1".into()))
        );
        let token = json!({ "format": "complex", "user": user, "session": { "format": "jwt_id", "iss": "https://id", "jti": "j1" } });
        assert_eq!(
            event_of(&set(SESSION_REVOKED, token, json!({}))),
            Some(SetEvent::Jti("j1".into()))
        );
        assert_eq!(
            event_of(&set(SESSION_REVOKED, user.clone(), json!({ "event_timestamp": 90 }))),
            Some(SetEvent::User("u1".into(), 90))
        );
        assert_eq!(
            event_of(&set(
                CREDENTIAL_CHANGE,
                user.clone(),
                json!({ "credential_type": "password" })
            )),
            Some(SetEvent::User("u1".into(), 100))
        );
        assert_eq!(
            event_of(&set(
                CREDENTIAL_CHANGE,
                user.clone(),
                json!({ "credential_type": "app" })
            )),
            None
        );
        assert_eq!(
            event_of(&set(ACCOUNT_PURGED, user, json!({}))),
            Some(SetEvent::Deleted("u1".into()))
        );
    }
}
