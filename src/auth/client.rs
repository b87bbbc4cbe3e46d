//! The client's address and user agent, as recorded with login sessions and events.
//!
//! The address is the TCP peer, unless the peer is one of `TRUSTED_PROXIES`: then it is the
//! right-most address in `X-Forwarded-For` that is not itself a trusted proxy.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::store::events::Origin;

const MAX_USER_AGENT_BYTES: usize = 512;

pub fn client_ip(request: &HttpRequest, trusted_proxies: &[ipnet::IpNet]) -> String {
    let Some(peer) = request.peer_addr().map(|address| address.ip()) else {
        return "unknown".to_owned();
    };
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return peer.to_string();
    }
    let forwarded = request
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|part| part.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted(ip))
        .unwrap_or(peer)
        .to_string()
}

/// What the per-address limits count under: an IPv4 address by itself, an IPv6 address by its
/// /64. One subscriber, one data centre host, is handed a whole /64, so counting its addresses
/// one by one would give it 2^64 allowances; an IPv4-mapped IPv6 address counts as its IPv4.
pub fn limit_key(address: &str) -> String {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => ipnet::Ipv6Net::new(v6, 64).map_or_else(|_| v6.to_string(), |network| network.trunc().to_string()),
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => address.to_owned(),
    }
}

pub fn user_agent(request: &HttpRequest) -> String {
    let raw = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let mut end = raw.len().min(MAX_USER_AGENT_BYTES);
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    raw[..end].to_owned()
}

/// The caller's address, believed through `TRUSTED_PROXIES` as the `RequestSettings` registered
/// as app data name them (no proxy is trusted where none is registered).
pub fn address(request: &HttpRequest) -> String {
    let trusted_proxies = request
        .app_data::<actix_web::web::Data<crate::auth::RequestSettings>>()
        .map_or(&[][..], |settings| &settings.trusted_proxies[..]);
    client_ip(request, trusted_proxies)
}

/// The caller's address (`address`) and user agent, as a handler argument:
/// `ClientAddress(origin): ClientAddress`.
pub struct ClientAddress(pub Origin);

impl actix_web::FromRequest for ClientAddress {
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Ok(Self(Origin {
            ip: address(request),
            user_agent: user_agent(request),
        })))
    }
}

/// Names a client by its address and user agent without storing either: the SHA-256 (base64url)
/// of both. Kept with a spent refresh token, so a reuse can tell a racing tab from another client.
pub fn fingerprint(origin: &Origin) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(origin.ip.as_bytes());
    // A NUL cannot occur in either part, so no two pairs hash the same input.
    hasher.update([0]);
    hasher.update(origin.user_agent.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hasher.finalize())
}

/// "Firefox 128 on Windows", "curl 8.5", or "Unknown client", from a maintained parser.
pub fn describe_device(user_agent: &str) -> String {
    let Some(parsed) = woothee::parser::Parser::new().parse(user_agent) else {
        return if user_agent.is_empty() {
            "Unknown client".to_owned()
        } else {
            fallback_name(user_agent)
        };
    };
    let major_minor = |version: &str| {
        let parts: Vec<&str> = version.split('.').take(2).collect();
        match parts.as_slice() {
            [major, ..] => (*major).to_owned(),
            [] => String::new(),
        }
    };
    let name = match parsed.name {
        // Libraries and tools (curl, wget, HTTPie …) are named by their own product token.
        "UNKNOWN" | "HTTP Library" => return fallback_name(user_agent),
        name => name.to_owned(),
    };
    let version = major_minor(parsed.version);
    let browser = if version.is_empty() || version == "UNKNOWN" {
        name
    } else {
        format!("{name} {version}")
    };
    match parsed.os {
        "UNKNOWN" | "" => browser,
        os => format!("{browser} on {os}"),
    }
}

/// For clients the parser does not know: the product token of the string (`HTTPie/3.2` → "HTTPie 3.2").
fn fallback_name(user_agent: &str) -> String {
    let product = user_agent.split_whitespace().next().unwrap_or("");
    match product.split_once('/') {
        Some((name, version))
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            let short: Vec<&str> = version.split('.').take(2).collect();
            format!("{name} {}", short.join("."))
        }
        _ => "Unknown client".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{describe_device, limit_key};

    #[test]
    fn ipv6_addresses_count_by_their_64_and_ipv4_ones_alone() {
        assert_eq!(limit_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(limit_key("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(limit_key("2001:db8:1:3::1"), limit_key("2001:db8:1:2::1"));
        assert_eq!(limit_key("203.0.113.7"), "203.0.113.7");
        assert_ne!(limit_key("203.0.113.7"), limit_key("203.0.113.8"));
        assert_eq!(limit_key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(limit_key("unknown"), "unknown");
    }

    #[test]
    fn common_clients_are_named() {
        assert_eq!(describe_device("curl/8.5.0"), "curl 8.5");
        assert_eq!(
            describe_device("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"),
            "Firefox 128 on Windows 10"
        );
        assert_eq!(describe_device(""), "Unknown client");
        assert_eq!(describe_device("\u{1}"), "Unknown client");
    }
}
