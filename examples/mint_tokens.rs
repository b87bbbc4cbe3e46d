//! Mints access tokens for login sessions seeded straight into the database, so the benchmark can
//! check many distinct sessions without a log-in (and an argon2id hash) for each. Signed with
//! `JWT_SECRET` the way the server signs them: HS256, `typ: at+jwt`, the same claims.
//!
//! `JWT_SECRET=… mint_tokens USER_ID SESSION_PREFIX COUNT ROWS` prints COUNT tokens, one a line,
//! for sessions `SESSION_PREFIX0` … spread evenly over ROWS seeded sessions, `ver` 0, valid 1 hour.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    sid: String,
    ver: i64,
    jti: String,
    iat: i64,
    nbf: i64,
    exp: i64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let [user_id, prefix, count, rows] = arguments.as_slice() else {
        return Err("usage: mint_tokens USER_ID SESSION_PREFIX COUNT ROWS".into());
    };
    let count: u64 = count.parse()?;
    let rows: u64 = rows.parse()?;
    let secret = std::env::var("JWT_SECRET").map_err(|_| "JWT_SECRET is required")?;
    let issuer = std::env::var("JWT_ISSUER").unwrap_or_else(|_| "revocable".to_owned());
    let audience = std::env::var("JWT_AUDIENCE").unwrap_or_else(|_| "revocable".to_owned());
    let key = EncodingKey::from_secret(secret.as_bytes());
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".to_owned());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for index in 0..count {
        let session = index * rows / count.max(1);
        let claims = Claims {
            iss: &issuer,
            aud: &audience,
            sub: user_id,
            sid: format!("{prefix}{session}"),
            ver: 0,
            jti: format!("bench-{index}-{}", revocable::domain::RandomId::generate()),
            iat: now,
            nbf: now,
            exp: now + 3600,
        };
        let token = jsonwebtoken::encode(&header, &claims, &key)?;
        std::io::Write::write_all(&mut out, token.as_bytes())?;
        std::io::Write::write_all(&mut out, b"\n")?;
    }
    Ok(())
}
