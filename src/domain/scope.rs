//! The scopes a client may ask for in the client-credentials grant (RFC 6749 section 3.3): a fixed
//! set, so a typo is refused rather than granted.

/// One scope of a client's own access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Configure Shared Signals streams (the SSF transmitter's management endpoints).
    SsfManage,
    /// Receive Shared Signals events (the SSF transmitter's poll and push delivery).
    SsfRead,
    /// Ask whether a token is active (`/oauth/introspect`).
    Introspect,
    /// Revoke tokens (`/oauth/revoke`).
    Revoke,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::SsfManage, Scope::SsfRead, Scope::Introspect, Scope::Revoke];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SsfManage => "ssf.manage",
            Self::SsfRead => "ssf.read",
            Self::Introspect => "introspect",
            Self::Revoke => "revoke",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == value)
    }
}

/// A set of known scopes, in a fixed order, without repeats.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes(Vec<Scope>);

/// A scope nobody defined; carries the offending text (never a secret) for the error message.
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownScope(pub String);

impl Scopes {
    pub fn all() -> Self {
        Self(Scope::ALL.to_vec())
    }

    /// A space-separated list (RFC 6749 section 3.3); commas are accepted too, for the command
    /// line. Empty is the empty set.
    pub fn parse(text: &str) -> Result<Self, UnknownScope> {
        let mut scopes = Vec::new();
        for word in text.split([' ', ',']).filter(|word| !word.is_empty()) {
            let scope = Scope::parse(word).ok_or_else(|| UnknownScope(word.chars().take(64).collect()))?;
            scopes.push(scope);
        }
        Ok(Self::of(scopes))
    }

    pub fn of(scopes: impl IntoIterator<Item = Scope>) -> Self {
        let mut scopes: Vec<Scope> = scopes.into_iter().collect();
        scopes.sort();
        scopes.dedup();
        Self(scopes)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    /// Every scope of `self` is in `allowed`.
    pub fn is_within(&self, allowed: &Scopes) -> bool {
        self.0.iter().all(|scope| allowed.contains(*scope))
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let words: Vec<&str> = self.0.iter().map(|scope| scope.as_str()).collect();
        formatter.write_str(&words.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_in_any_order_without_repeats_and_print_in_a_fixed_one() {
        let scopes = Scopes::parse("revoke  ssf.read revoke,introspect").unwrap();
        assert_eq!(scopes.to_string(), "ssf.read introspect revoke");
        assert!(scopes.contains(Scope::Revoke) && !scopes.contains(Scope::SsfManage));
        assert!(Scopes::parse("").unwrap().is_empty());
        assert_eq!(Scopes::all().to_string(), "ssf.manage ssf.read introspect revoke");
    }

    #[test]
    fn an_unknown_scope_is_refused_by_name() {
        assert_eq!(Scopes::parse("revoke admin"), Err(UnknownScope("admin".into())));
        assert_eq!(Scopes::parse("REVOKE"), Err(UnknownScope("REVOKE".into())));
    }

    #[test]
    fn a_set_is_within_another_when_each_of_its_scopes_is() {
        let allowed = Scopes::parse("introspect revoke").unwrap();
        assert!(Scopes::parse("revoke").unwrap().is_within(&allowed));
        assert!(!Scopes::parse("revoke ssf.read").unwrap().is_within(&allowed));
    }
}
