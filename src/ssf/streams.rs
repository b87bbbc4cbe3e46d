//! Stream configuration (SSF 1.0 section 8.1.1): what a receiver may set, how it is checked, and
//! the configuration document the transmitter answers with.
//!
//! Receiver-supplied: `events_requested`, `delivery` (`method`, and for push `endpoint_url` and
//! `authorization_header`) and `description`. Transmitter-supplied: `stream_id`, `iss`, `aud` (the
//! client's id), `events_supported`, `events_delivered` (requested ∩ supported),
//! `min_verification_interval` (seconds) and, for poll, the `endpoint_url` to poll. A
//! transmitter-supplied field sent back must hold the value it has.
//! The `authorization_header` is a credential of the receiver's: stored, never shown again.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;
use crate::ssf::set::SUPPORTED;

pub const PUSH: &str = "urn:ietf:rfc:8935";
pub const POLL: &str = "urn:ietf:rfc:8936";

const MAX_DESCRIPTION: usize = 1000;
const MAX_AUTHORIZATION: usize = 4096;
const MAX_URL: usize = 2048;
const MAX_EVENTS_REQUESTED: usize = 32;

/// How a stream's events reach the receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method")]
pub enum Delivery {
    #[serde(rename = "urn:ietf:rfc:8935")]
    Push {
        endpoint_url: String,
        authorization_header: Option<String>,
    },
    #[serde(rename = "urn:ietf:rfc:8936")]
    Poll,
}

/// What the receiver configured, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverConfiguration {
    pub events_requested: Vec<String>,
    pub delivery: Delivery,
    pub description: Option<String>,
}

/// Enabled, paused (events held) or disabled (events dropped), SSF 1.0 section 8.1.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Enabled,
    Paused,
    Disabled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Paused => "paused",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Enabled, Self::Paused, Self::Disabled]
            .into_iter()
            .find(|status| status.as_str() == value)
    }
}

/// Where the transmitter is, and what it allows, for the fields it supplies.
pub struct Transmitter<'a> {
    pub issuer: &'a str,
    pub origin: &'a str,
    pub min_verification_interval: std::time::Duration,
}

impl Transmitter<'_> {
    pub fn poll_url(&self, stream_id: &str) -> String {
        format!("{}/ssf/poll/{stream_id}", self.origin)
    }
}

impl ReceiverConfiguration {
    /// The requested event types this transmitter sends, in the order asked.
    pub fn events_delivered(&self) -> Vec<&str> {
        self.events_requested
            .iter()
            .map(String::as_str)
            .filter(|requested| SUPPORTED.contains(requested))
            .collect()
    }

    /// The configuration a create (`POST`) or replace (`PUT`) body describes: what it leaves out
    /// takes its default (no events, poll delivery, no description).
    pub fn from_body(body: &Value, transmitter: &Transmitter<'_>, client_id: &str) -> Result<Self, ApiError> {
        Self::default_for_poll().merged(body, transmitter, client_id)
    }

    fn default_for_poll() -> Self {
        Self {
            events_requested: Vec::new(),
            delivery: Delivery::Poll,
            description: None,
        }
    }

    /// This configuration with the fields `body` names replaced (`PATCH`).
    pub fn merged(&self, body: &Value, transmitter: &Transmitter<'_>, client_id: &str) -> Result<Self, ApiError> {
        let object = body
            .as_object()
            .ok_or_else(|| ApiError::BadRequest("the body must be a JSON object".into()))?;
        must_match(object.get("iss"), transmitter.issuer, "iss")?;
        must_match(object.get("aud"), client_id, "aud")?;
        let interval = transmitter.min_verification_interval.as_secs();
        match object.get("min_verification_interval") {
            None => {}
            Some(value) if value.as_u64() == Some(interval) => {}
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "min_verification_interval",
                    "min_verification_interval is supplied by the transmitter and cannot be changed",
                ));
            }
        }
        let mut next = self.clone();
        if let Some(requested) = object.get("events_requested") {
            next.events_requested = events_requested(requested)?;
        }
        if let Some(delivery) = object.get("delivery") {
            next.delivery = parse_delivery(delivery)?;
        }
        if let Some(description) = object.get("description") {
            next.description = match description {
                Value::Null => None,
                Value::String(text) if text.chars().count() <= MAX_DESCRIPTION => Some(text.clone()),
                _ => {
                    return Err(ApiError::invalid_field(
                        "description",
                        format!("description must be a string of at most {MAX_DESCRIPTION} characters"),
                    ));
                }
            };
        }
        Ok(next)
    }

    /// The configuration document of stream `stream_id`.
    pub fn document(&self, stream_id: &str, transmitter: &Transmitter<'_>, client_id: &str) -> Value {
        let delivery = match &self.delivery {
            Delivery::Push { endpoint_url, .. } => serde_json::json!({ "method": PUSH, "endpoint_url": endpoint_url }),
            Delivery::Poll => serde_json::json!({ "method": POLL, "endpoint_url": transmitter.poll_url(stream_id) }),
        };
        let mut document = serde_json::json!({
            "stream_id": stream_id,
            "iss": transmitter.issuer,
            "aud": client_id,
            "events_supported": SUPPORTED,
            "events_requested": self.events_requested,
            "events_delivered": self.events_delivered(),
            "delivery": delivery,
            "min_verification_interval": transmitter.min_verification_interval.as_secs(),
        });
        if let Some(description) = &self.description {
            document["description"] = description.clone().into();
        }
        document
    }
}

fn must_match(value: Option<&Value>, expected: &str, field: &'static str) -> Result<(), ApiError> {
    match value {
        None => Ok(()),
        Some(Value::String(text)) if text == expected => Ok(()),
        Some(Value::Array(items)) if items.len() == 1 && items[0] == expected => Ok(()),
        Some(_) => Err(ApiError::invalid_field(
            field,
            format!("{field} is supplied by the transmitter and cannot be changed"),
        )),
    }
}

fn events_requested(value: &Value) -> Result<Vec<String>, ApiError> {
    let refuse = || {
        ApiError::invalid_field(
            "events_requested",
            format!("events_requested must be an array of at most {MAX_EVENTS_REQUESTED} event-type URIs"),
        )
    };
    let items = value
        .as_array()
        .filter(|items| items.len() <= MAX_EVENTS_REQUESTED)
        .ok_or_else(refuse)?;
    let mut requested = Vec::with_capacity(items.len());
    for item in items {
        let uri = item
            .as_str()
            .filter(|uri| !uri.is_empty() && uri.len() <= MAX_URL)
            .ok_or_else(refuse)?;
        if !requested.iter().any(|known: &String| known == uri) {
            requested.push(uri.to_owned());
        }
    }
    Ok(requested)
}

fn parse_delivery(value: &Value) -> Result<Delivery, ApiError> {
    let refuse = |message: &str| ApiError::invalid_field("delivery", message.to_owned());
    let object = value.as_object().ok_or_else(|| refuse("delivery must be an object"))?;
    match object.get("method").and_then(Value::as_str) {
        Some(POLL) => Ok(Delivery::Poll),
        Some(PUSH) => {
            let endpoint_url = object
                .get("endpoint_url")
                .and_then(Value::as_str)
                .ok_or_else(|| refuse("push delivery needs an endpoint_url"))?;
            let endpoint_url = endpoint(endpoint_url).map_err(|message| refuse(&message))?;
            let authorization_header = match object.get("authorization_header") {
                None | Some(Value::Null) => None,
                Some(Value::String(text))
                    if !text.is_empty()
                        && text.len() <= MAX_AUTHORIZATION
                        && actix_web::http::header::HeaderValue::from_str(text).is_ok() =>
                {
                    Some(text.clone())
                }
                Some(_) => return Err(refuse("authorization_header must be a valid HTTP header value")),
            };
            Ok(Delivery::Push {
                endpoint_url,
                authorization_header,
            })
        }
        _ => Err(refuse(
            "delivery.method must be urn:ietf:rfc:8935 (push) or urn:ietf:rfc:8936 (poll)",
        )),
    }
}

/// An absolute http or https URL with a host, without credentials or a fragment. An https
/// receiver's certificate must chain to the system's trust store or to `SSF_PUSH_CA_FILE`;
/// plain http stays accepted for receivers on a private network or behind a TLS-terminating
/// proxy of their own.
fn endpoint(text: &str) -> Result<String, String> {
    if text.len() > MAX_URL {
        return Err(format!("endpoint_url must be at most {MAX_URL} characters"));
    }
    let url = reqwest::Url::parse(text).map_err(|error| format!("endpoint_url is not an absolute URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err("endpoint_url must be an https or http URL with a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err("endpoint_url must not carry credentials or a fragment".into());
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: Transmitter<'static> = Transmitter {
        issuer: "https://id.example",
        origin: "https://id.example",
        min_verification_interval: std::time::Duration::from_secs(30),
    };

    #[test]
    fn a_push_stream_needs_an_absolute_https_or_http_url() {
        let body = |url: &str| serde_json::json!({ "delivery": { "method": PUSH, "endpoint_url": url } });
        assert!(ReceiverConfiguration::from_body(&body("http://rp.example/events"), &HERE, "c").is_ok());
        assert!(ReceiverConfiguration::from_body(&body("https://rp.example/events"), &HERE, "c").is_ok());
        for bad in [
            "/events",
            "ftp://rp.example/",
            "http://user:pw@rp.example/",
            "https://rp.example/events#part",
            "http://",
        ] {
            assert!(
                ReceiverConfiguration::from_body(&body(bad), &HERE, "c").is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn events_delivered_are_the_requested_ones_this_transmitter_supports() {
        let body = serde_json::json!({ "events_requested": [SUPPORTED[0], "urn:other", SUPPORTED[0]] });
        let config = ReceiverConfiguration::from_body(&body, &HERE, "c").unwrap();
        assert_eq!(config.events_requested.len(), 2);
        assert_eq!(config.events_delivered(), vec![SUPPORTED[0]]);
        let document = config.document("s1", &HERE, "c");
        assert_eq!(document["delivery"]["endpoint_url"], "https://id.example/ssf/poll/s1");
        assert_eq!(document["aud"], "c");
        assert_eq!(document["min_verification_interval"], 30);
    }

    #[test]
    fn a_transmitter_supplied_field_cannot_be_changed() {
        let body = serde_json::json!({ "aud": "someone-else" });
        assert!(ReceiverConfiguration::from_body(&body, &HERE, "c").is_err());
        let same = serde_json::json!({ "aud": "c", "iss": "https://id.example", "min_verification_interval": 30 });
        assert!(ReceiverConfiguration::from_body(&same, &HERE, "c").is_ok());
        let shorter = serde_json::json!({ "min_verification_interval": 1 });
        assert!(ReceiverConfiguration::from_body(&shorter, &HERE, "c").is_err());
    }
}
