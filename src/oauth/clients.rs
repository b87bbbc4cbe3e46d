//! Clients: other services that authenticate with an id and a secret to introspect, revoke and
//! read the revocation feed.
//!
//! The secret is 256 bits from the CSPRNG, shown once, and stored as its SHA-256 hash: a secret
//! that cannot be guessed needs no slow hash (argon2 guards passwords people choose), and a hash
//! per request keeps introspection cheap. The comparison is constant-time.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::{RandomId, Scopes, now_millis};
use crate::error::ApiError;
use crate::store::Db;
use crate::store::oauth_clients::{self, Client};

/// A client as just created: the only moment its secret exists outside the caller's hands.
pub struct NewClient {
    pub id: String,
    pub name: String,
    pub secret: String,
}

fn hash(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()))
}

/// A client name: 1 to 64 printable characters, no spaces at the ends.
fn parse_name(name: &str) -> anyhow::Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        anyhow::bail!("a client name is 1 to 64 printable characters");
    }
    Ok(name.to_owned())
}

/// A client that may ask for every scope.
pub async fn add(db: &Db, name: &str) -> anyhow::Result<NewClient> {
    add_with_scopes(db, name, &Scopes::all()).await
}

/// A client limited to `scopes` in the client-credentials grant.
pub async fn add_with_scopes(db: &Db, name: &str, scopes: &Scopes) -> anyhow::Result<NewClient> {
    let name = parse_name(name)?;
    if oauth_clients::all(db).await?.iter().any(|client| client.name == name) {
        anyhow::bail!("a client named {name:?} already exists");
    }
    let client = NewClient {
        id: RandomId::generate(),
        name,
        secret: RandomId::secret(),
    };
    oauth_clients::insert(
        db,
        &Client {
            id: client.id.clone(),
            name: client.name.clone(),
            secret_hash: hash(&client.secret),
            created_at: now_millis(),
            scopes: scopes.to_string(),
        },
    )
    .await?;
    Ok(client)
}

pub async fn list(db: &Db) -> anyhow::Result<Vec<Client>> {
    Ok(oauth_clients::all(db).await?)
}

/// Removes a client by id or name; `false` when there was none.
pub async fn remove(db: &Db, id_or_name: &str) -> anyhow::Result<bool> {
    Ok(oauth_clients::remove(db, id_or_name).await? > 0)
}

/// Credentials as presented: HTTP Basic, or `client_id` and `client_secret` in the form body
/// (`client_secret_post`).
#[derive(Debug, Default)]
pub struct Presented {
    pub basic: Option<String>,
    pub form_id: Option<String>,
    pub form_secret: Option<String>,
}

fn invalid_client() -> ApiError {
    ApiError::InvalidClient("client authentication failed".into())
}

impl Presented {
    /// The SHA-256 of the client id presented, whatever the secret (of nothing when none can be
    /// read): what failures are counted by, short whatever was sent.
    pub fn client_id_hash(&self) -> String {
        hash(&self.id_and_secret().map(|(id, _)| id).unwrap_or_default())
    }

    /// Exactly one method must be used (RFC 6749 section 2.3).
    fn id_and_secret(&self) -> Result<(String, String), ApiError> {
        match (&self.basic, &self.form_id, &self.form_secret) {
            (Some(header), None, None) => {
                let (scheme, encoded) = header.split_once(' ').ok_or_else(invalid_client)?;
                if !scheme.eq_ignore_ascii_case("basic") {
                    return Err(invalid_client());
                }
                let decoded = STANDARD.decode(encoded.trim()).map_err(|_| invalid_client())?;
                let text = String::from_utf8(decoded).map_err(|_| invalid_client())?;
                let (id, secret) = text.split_once(':').ok_or_else(invalid_client)?;
                Ok((id.to_owned(), secret.to_owned()))
            }
            (None, Some(id), Some(secret)) => Ok((id.clone(), secret.clone())),
            (None, None, None) => Err(ApiError::InvalidClient("client authentication is required".into())),
            _ => Err(ApiError::BadRequest(
                "use exactly one client authentication method: HTTP Basic or client_secret_post".into(),
            )),
        }
    }
}

/// The client, if the presented id and secret match one. Unknown ids cost a hash too.
pub async fn authenticate(db: &Db, presented: &Presented) -> Result<Client, ApiError> {
    let (id, secret) = presented.id_and_secret()?;
    if id.len() > 128 || secret.len() > 256 {
        return Err(invalid_client());
    }
    let stored = oauth_clients::find(db, &id).await?;
    let presented_hash = hash(&secret);
    let expected = stored
        .as_ref()
        .map(|client| client.secret_hash.clone())
        .unwrap_or_else(|| hash("no such client"));
    let matches: bool = presented_hash.as_bytes().ct_eq(expected.as_bytes()).into();
    match stored {
        Some(client) if matches => Ok(client),
        _ => Err(invalid_client()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_read_and_mixed_methods_refused() {
        let basic = Presented {
            basic: Some(format!("Basic {}", STANDARD.encode("id:secret"))),
            ..Default::default()
        };
        assert_eq!(basic.id_and_secret().unwrap(), ("id".into(), "secret".into()));
        let both = Presented {
            basic: basic.basic.clone(),
            form_id: Some("id".into()),
            form_secret: Some("secret".into()),
        };
        assert!(matches!(both.id_and_secret(), Err(ApiError::BadRequest(_))));
        let none = Presented::default();
        assert!(matches!(none.id_and_secret(), Err(ApiError::InvalidClient(_))));
        let garbage = Presented {
            basic: Some("Basic %%%".into()),
            ..Default::default()
        };
        assert!(matches!(garbage.id_and_secret(), Err(ApiError::InvalidClient(_))));
    }

    #[test]
    fn names_are_bounded() {
        assert!(parse_name("  ").is_err());
        assert!(parse_name(&"x".repeat(65)).is_err());
        assert_eq!(parse_name(" billing ").unwrap(), "billing");
    }
}
