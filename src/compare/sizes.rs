//! Bytes each strategy keeps, read from the measuring instance's stores: payload bytes of the SQL
//! rows (column values; the engine's own overhead comes on top) and of the in-process denylist
//! entry.

use super::probe::Probe;
use crate::error::ApiError;
use crate::state::AppState;

pub struct Sizes {
    pub login_session_row: i64,
    pub access_token_row: i64,
    pub denylist_row: i64,
    pub denylist_copy: i64,
    pub session_state: i64,
}

const BIGINT: i64 = 8;

pub async fn measure(state: &AppState, probe: &Probe) -> Result<Sizes, ApiError> {
    let login_session_row: i64 = sqlx::query_scalar(
        "SELECT LENGTH(id) + LENGTH(user_id) + LENGTH(kind) + LENGTH(user_agent) + LENGTH(ip)
                + COALESCE(LENGTH(revoke_reason), 0) + COALESCE(LENGTH(revoked_by_session_id), 0)
         FROM login_sessions WHERE id = $1",
    )
    .bind(&probe.token_session)
    .fetch_one(&state.db)
    .await?;
    let access_token_row: i64 =
        sqlx::query_scalar("SELECT LENGTH(jti) + LENGTH(session_id) FROM access_tokens WHERE jti = $1")
            .bind(&probe.revoked_jti)
            .fetch_one(&state.db)
            .await?;
    let denylist_row: i64 = sqlx::query_scalar("SELECT LENGTH(jti) FROM denylist WHERE jti = $1")
        .bind(&probe.revoked_jti)
        .fetch_one(&state.db)
        .await?;
    let session_state: i64 = sqlx::query_scalar(
        "SELECT LENGTH(session_key) + LENGTH(state) + COALESCE(LENGTH(login_session_id), 0)
         FROM web_sessions WHERE session_key = $1",
    )
    .bind(&probe.session_key)
    .fetch_one(&state.db)
    .await?;
    // The in-process copy holds the jti (a String: 24 B header + its bytes) and the expiry (8 B).
    let denylist_copy = 24 + probe.revoked_jti.len() as i64 + BIGINT;
    Ok(Sizes {
        login_session_row: login_session_row + 7 * BIGINT,
        access_token_row: access_token_row + BIGINT,
        denylist_row: denylist_row + 2 * BIGINT,
        denylist_copy,
        session_state: session_state + BIGINT,
    })
}
