//! An email address, trimmed, with its case-folded form used for uniqueness.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    display: String,
    normalized: String,
}

impl Email {
    /// Accepts `local@domain.tld`-shaped addresses up to 254 bytes. The only real proof of an
    /// address is a message delivered to it; this refuses what cannot possibly be one.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("email is required".into());
        }
        if trimmed.len() > 254 {
            return Err("email must be at most 254 characters".into());
        }
        let Some((local, domain)) = trimmed.rsplit_once('@') else {
            return Err("email must contain an @".into());
        };
        let valid_local = !local.is_empty() && local.len() <= 64 && !local.contains('@');
        let valid_domain = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        if !valid_local || !valid_domain || trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("email is not a valid address".into());
        }
        Ok(Self {
            display: trimmed.to_owned(),
            normalized: trimmed.to_lowercase(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The form two addresses are compared in: `Ann@Example.com` and `ann@example.com` are one.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn letter_case_does_not_make_a_new_address() {
        let upper = Email::parse(" Ann@Example.COM ").unwrap();
        let lower = Email::parse("ann@example.com").unwrap();
        assert_eq!(upper.normalized(), lower.normalized());
        assert_eq!(upper.as_str(), "Ann@Example.COM");
    }

    #[test]
    fn things_that_are_not_addresses_are_refused() {
        for raw in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "ann@exa mple.com",
            "a@b@c.com",
            "ann@.com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} was accepted");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }
}
