//! Signing up: a new account, with the same email and password rules for the API and the form.

use crate::account::Accounts;
use crate::auth::password;
use crate::domain::{Email, Password};
use crate::error::ApiError;
use crate::store::events::{self, EventKind, NewEvent, Origin};
use crate::store::users::{Inserted, User};
use crate::store::{self};

/// Creates an account: the email and password rules are the same for the API and the form.
pub async fn create(accounts: &Accounts, email: &str, password: String, origin: &Origin) -> Result<User, ApiError> {
    let email = Email::parse(email).map_err(|message| ApiError::invalid_field("email", message))?;
    let password = Password::parse_new(password, &related_words(email.as_str()))
        .map_err(|message| ApiError::invalid_field("password", message))?;
    let taken = || ApiError::Conflict("an account with this email already exists".into());
    if store::users::find_by_email(&accounts.db, &email).await?.is_some() {
        return Err(taken());
    }
    let hash = password::hash(password).await?;
    let Inserted::Created(user) = store::users::insert(&accounts.db, &email, &hash).await? else {
        return Err(taken());
    };
    events::record(
        &accounts.db,
        NewEvent {
            user_id: &user.id,
            kind: EventKind::Registered,
            session_id: None,
            other_session_id: None,
            origin,
            detail: String::new(),
        },
    )
    .await?;
    Ok(user)
}

/// Words a guesser tries first for an account: its email and the email's local part.
pub fn related_words(email: &str) -> Vec<&str> {
    let local = email.split('@').next().unwrap_or(email);
    vec![email, local]
}
