//! `GET /api/{strategy}/me`: the same answer behind each of the five checks.

use actix_web::HttpResponse;
use serde::Serialize;

use crate::auth::strategy::{Allowlist, Authenticated, Cookie, Denylist, Stateless, Strategy, Version};

#[derive(Serialize)]
struct Me<'a> {
    user_id: &'a str,
    session_id: &'a str,
    strategy: &'static str,
}

fn answer<S: Strategy>(user: &Authenticated<S>) -> HttpResponse {
    HttpResponse::Ok().json(Me {
        user_id: &user.user_id,
        session_id: &user.session_id,
        strategy: S::NAME,
    })
}

pub async fn stateless(user: Authenticated<Stateless>) -> HttpResponse {
    answer(&user)
}

pub async fn version(user: Authenticated<Version>) -> HttpResponse {
    answer(&user)
}

pub async fn denylist(user: Authenticated<Denylist>) -> HttpResponse {
    answer(&user)
}

pub async fn allowlist(user: Authenticated<Allowlist>) -> HttpResponse {
    answer(&user)
}

pub async fn cookie(user: Authenticated<Cookie>) -> HttpResponse {
    answer(&user)
}
