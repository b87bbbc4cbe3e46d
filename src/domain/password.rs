//! A password as typed, following NIST SP 800-63B: 8 to 128 characters (Unicode scalar values),
//! any characters, no composition rules, and not one that a guesser tries early (common and
//! breached passwords, keyboard walks, dates, the email itself), judged by `zxcvbn` from the
//! dictionaries it ships with. Never logged, never displayed.

use subtle::ConstantTimeEq;

#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARACTERS: usize = 8;
    pub const MAX_CHARACTERS: usize = 128;

    /// Length limits only: what a password used to log in must satisfy.
    pub fn parse(raw: String) -> Result<Self, String> {
        let characters = raw.chars().count();
        if characters < Self::MIN_CHARACTERS {
            return Err(format!("password must be at least {} characters", Self::MIN_CHARACTERS));
        }
        if characters > Self::MAX_CHARACTERS {
            return Err(format!("password must be at most {} characters", Self::MAX_CHARACTERS));
        }
        Ok(Self(raw))
    }

    /// A password being chosen (sign-up, change): the length limits, and not easily guessed.
    /// `related` are words a guesser would try first for this account (its email).
    pub fn parse_new(raw: String, related: &[&str]) -> Result<Self, String> {
        let password = Self::parse(raw)?;
        let estimate = zxcvbn::zxcvbn(&password.0, related);
        if u8::from(estimate.score()) < 2 {
            let why = estimate
                .feedback()
                .and_then(|feedback| feedback.warning())
                .map(|warning| format!(" ({})", warning.to_string().trim_end_matches('.').to_lowercase()))
                .unwrap_or_default();
            return Err(format!(
                "password is too easy to guess{why}: it is common, appears in breached password lists or follows a simple pattern; choose a longer or less predictable one"
            ));
        }
        Ok(password)
    }

    /// Whether two passwords are the same, in constant time.
    pub fn same_as(&self, other: &str) -> bool {
        self.0.as_bytes().ct_eq(other.as_bytes()).into()
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Password(**redacted**)")
    }
}

#[cfg(test)]
mod tests {
    use super::Password;

    #[test]
    fn length_limits_count_characters_not_bytes() {
        assert!(Password::parse("1234567".into()).is_err());
        assert!(Password::parse("12345678".into()).is_ok());
        assert!(
            Password::parse("éééé".into()).is_err(),
            "four characters are too few, whatever their bytes"
        );
        assert!(Password::parse("x".repeat(128)).is_ok());
        assert!(Password::parse("é".repeat(128)).is_ok());
        assert!(Password::parse("x".repeat(129)).is_err());
    }

    #[test]
    fn common_and_patterned_passwords_are_refused_for_new_ones() {
        for weak in ["password", "12345678", "password1234", "qwertyuiop", "iloveyou1"] {
            assert!(Password::parse_new(weak.into(), &[]).is_err(), "{weak} was accepted");
        }
        assert!(Password::parse_new("ann.lee@example.com".into(), &["ann.lee@example.com"]).is_err());
    }

    #[test]
    fn passwords_the_project_uses_are_strong_enough() {
        for strong in [
            "correct horse",
            "benchmark password",
            "an entirely new one",
            "a new password entirely",
            "one new password",
            "a brand new password",
            "pw-Qm9yZW1pbmcgaXMgZnVu",
        ] {
            assert!(Password::parse_new(strong.into(), &[]).is_ok(), "{strong} was refused");
        }
    }

    #[test]
    fn debug_output_hides_the_password() {
        let password = Password::parse("correct horse".into()).unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }
}
