//! Approximate location of an address, from a MaxMind-format (`.mmdb`) city or country database
//! the operator supplies with `GEOIP_DB`. Without one, nothing is looked up.

use std::net::IpAddr;
use std::sync::Arc;

use maxminddb::{Reader, geoip2};

pub struct Geoip {
    reader: Reader<Vec<u8>>,
}

impl Geoip {
    /// Reads the whole database into memory once; a file that is not a MaxMind DB is refused.
    pub fn open(path: &std::path::Path) -> Result<Self, String> {
        let reader = Reader::open_readfile(path).map_err(|error| format!("{}: {error}", path.display()))?;
        Ok(Self { reader })
    }

    /// "Linköping, Sweden", "Sweden", "private network", "this machine", or "unknown location".
    pub fn describe(&self, ip: &str) -> String {
        let Ok(address) = ip.parse::<IpAddr>() else {
            return "unknown location".to_owned();
        };
        if let Some(local) = local_network(address) {
            return local.to_owned();
        }
        let city = self
            .reader
            .lookup(address)
            .ok()
            .and_then(|found| found.decode::<geoip2::City>().ok().flatten());
        let Some(city) = city else {
            return "unknown location".to_owned();
        };
        let country = city.country.names.english.or(city.country.iso_code);
        match (city.city.names.english, country) {
            (Some(city), Some(country)) => format!("{city}, {country}"),
            (None, Some(country)) => country.to_owned(),
            (Some(city), None) => city.to_owned(),
            (None, None) => "unknown location".to_owned(),
        }
    }
}

/// The database when `GEOIP_DB` is set, or none: what the new-sign-in email and the dashboard
/// look places up in, sharing one copy of it in memory.
#[derive(Clone)]
pub struct Places(Option<Arc<Geoip>>);

impl Places {
    pub fn new(geoip: Option<Geoip>) -> Self {
        Self(geoip.map(Arc::new))
    }

    pub fn geoip(&self) -> Option<&Geoip> {
        self.0.as_deref()
    }
}

/// Addresses no database locates: they say where they are themselves.
fn local_network(address: IpAddr) -> Option<&'static str> {
    let address = match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    if address.is_loopback() {
        return Some("this machine (loopback)");
    }
    let private = match address {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unique_local() || v6.is_unicast_link_local(),
    };
    private.then_some("private network")
}

#[cfg(test)]
mod tests {
    use super::Geoip;

    fn test_database() -> Geoip {
        Geoip::open(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/geoip-test.mmdb"
        )))
        .expect("the test database opens")
    }

    #[test]
    fn addresses_are_located_by_the_database_or_said_to_be_local() {
        let geoip = test_database();
        assert_eq!(geoip.describe("89.160.20.128"), "Linköping, Sweden");
        assert_eq!(geoip.describe("2001:db8:1::5"), "New Zealand");
        assert_eq!(geoip.describe("127.0.0.1"), "this machine (loopback)");
        assert_eq!(geoip.describe("::1"), "this machine (loopback)");
        assert_eq!(geoip.describe("192.168.1.20"), "private network");
        assert_eq!(geoip.describe("fd00::1"), "private network");
        assert_eq!(geoip.describe("8.8.8.8"), "unknown location");
        assert_eq!(geoip.describe("unknown"), "unknown location");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused() {
        assert!(Geoip::open(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))).is_err());
    }
}
