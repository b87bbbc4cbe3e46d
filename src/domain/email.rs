//! An email address, trimmed and in Unicode NFC, with its case-folded form used for uniqueness.

use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    display: String,
    normalized: String,
    /// The form addresses were compared in before they were put in NFC: rows written then are
    /// still found by it.
    legacy: String,
}

/// Characters that show nothing or steer the text around them (Unicode's default-ignorable
/// code points and the other format characters): two addresses that differ only in them look
/// identical, so an address holding one is refused.
fn is_invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x061C
            | 0x0600..=0x0605
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

impl Email {
    /// Accepts `local@domain.tld`-shaped addresses up to 254 bytes. The only real proof of an
    /// address is a message delivered to it; this refuses what cannot possibly be one.
    /// Composed (NFC), so that `é` typed as one character or as `e` and a combining accent is one
    /// address; refused when it holds an invisible character.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let legacy = raw.trim().to_lowercase();
        if raw.chars().any(is_invisible) {
            return Err("email must not contain invisible characters (zero-width spaces, direction marks)".into());
        }
        let composed: String = raw.trim().nfc().collect();
        let trimmed = composed.as_str();
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
            normalized: trimmed.to_lowercase().nfc().collect(),
            legacy,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The form two addresses are compared in: `Ann@Example.com` and `ann@example.com` are one.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// The case-folded form without NFC, as rows written before NFC were keyed: equal to
    /// `normalized` for every address typed in NFC (ASCII ones included).
    pub fn legacy_normalized(&self) -> &str {
        &self.legacy
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

    #[test]
    fn composed_and_decomposed_spellings_are_one_address() {
        let composed = Email::parse("Ren\u{e9}@example.com").unwrap();
        let decomposed = Email::parse("Rene\u{301}@example.com").unwrap();
        assert_eq!(composed.normalized(), decomposed.normalized());
        assert_eq!(decomposed.as_str(), "Ren\u{e9}@example.com");
        assert_eq!(decomposed.normalized(), "ren\u{e9}@example.com");
        assert_eq!(decomposed.legacy_normalized(), "rene\u{301}@example.com");
        assert_eq!(composed.legacy_normalized(), composed.normalized());
    }

    #[test]
    fn invisible_characters_are_refused() {
        for raw in [
            "ann\u{200b}@example.com",
            "\u{feff}ann@example.com",
            "ann@exam\u{200d}ple.com",
            "ann\u{ad}@example.com",
            "ann\u{202e}@example.com",
            "ann@example.com\u{2060}",
        ] {
            let refused = Email::parse(raw).unwrap_err();
            assert!(refused.contains("invisible"), "{raw:?}: {refused}");
        }
    }
}
