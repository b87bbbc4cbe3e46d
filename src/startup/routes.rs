//! The route table, the cookie session around the routes that read it, and the two middlewares
//! the table wraps routes in (the attempt limit, a session store that is down).

use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity, TtlExtensionPolicy};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{ErrorHandlers, Next, from_fn};
use actix_web::{ResponseError, web};

use crate::auth::rate_limit::{Decision, LoginLimit};
use crate::error::ApiError;
use crate::routes::{api, web as pages};
use crate::state::AppState;
use crate::web_session::CookieStateStore;

/// The route table: every URL of API.md in one place. Only the routes that read the cookie
/// session sit inside the session middleware: the others (health, Bearer-only API) never decrypt
/// a cookie or read the session store, and keep answering while that store is down.
pub(super) fn routes(config: &mut web::ServiceConfig, sessions: SessionMiddleware<CookieStateStore>) {
    // Routes are tried in order: the ones that carry the load come first. Each route tried
    // before the one that matches costs about 250 instructions (callgrind), so the checks that
    // do the most come before the ones that do less: stateless (the baseline), then allowlist,
    // denylist and version, then cookie.
    config
        .route("/healthz", web::get().to(api::health::healthz))
        .route("/api/stateless/me", web::get().to(api::me::stateless))
        .route("/api/allowlist/me", web::get().to(api::me::allowlist))
        .route("/api/denylist/me", web::get().to(api::me::denylist))
        .route("/api/version/me", web::get().to(api::me::version))
        // The cookie strategy's check carries load too: tried here, wrapped as the scope below is
        // (the same session middleware), rather than after every route above that scope.
        .service(
            web::resource("/api/cookie/me")
                .wrap(ErrorHandlers::new().default_handler(pages::error_pages::error_pages))
                .wrap(sessions.clone())
                .wrap(from_fn(session_store_unavailable))
                .route(web::get().to(api::me::cookie)),
        )
        .route("/readyz", web::get().to(api::health::readyz))
        .route("/metrics", web::get().to(crate::telemetry::render_metrics))
        .route("/.well-known/jwks.json", web::get().to(api::health::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            web::get().to(crate::routes::oauth::authorization_server_metadata),
        )
        .service(
            web::resource("/api/register")
                .wrap(from_fn(limit_attempts))
                .route(web::post().to(api::account::register)),
        )
        .service(
            web::resource("/api/token")
                .wrap(from_fn(limit_attempts))
                .route(web::post().to(api::token::issue)),
        )
        .service(
            web::resource("/api/token/mfa")
                .wrap(from_fn(limit_attempts))
                .route(web::post().to(api::second_factor::finish_log_in)),
        )
        .service(
            web::resource("/api/token/refresh")
                .wrap(from_fn(limit_attempts))
                .route(web::post().to(api::token::refresh)),
        )
        .route("/api/logout", web::post().to(api::token::logout))
        .service(
            web::resource("/api/password/forgot")
                .wrap(from_fn(limit_attempts))
                .route(web::post().to(api::recovery::forgot)),
        )
        .service(
            web::resource("/api/password/reset")
                .wrap(from_fn(limit_attempts))
                .route(web::post().to(api::recovery::reset)),
        )
        .route(
            "/.well-known/ssf-configuration",
            web::get().to(crate::routes::ssf::configuration),
        )
        .service(
            web::resource("/ssf/streams")
                .route(web::post().to(crate::routes::ssf::create_stream))
                .route(web::get().to(crate::routes::ssf::read_streams))
                .route(web::patch().to(crate::routes::ssf::update_stream))
                .route(web::put().to(crate::routes::ssf::replace_stream))
                .route(web::delete().to(crate::routes::ssf::delete_stream)),
        )
        .service(
            web::resource("/ssf/status")
                .route(web::get().to(crate::routes::ssf::read_status))
                .route(web::post().to(crate::routes::ssf::update_status)),
        )
        .route("/ssf/subjects/add", web::post().to(crate::routes::ssf::add_subject))
        .route(
            "/ssf/subjects/remove",
            web::post().to(crate::routes::ssf::remove_subject),
        )
        .route("/ssf/verify", web::post().to(crate::routes::ssf::verify))
        .route("/ssf/poll/{stream_id}", web::post().to(crate::routes::ssf::poll))
        .route("/oauth/token", web::post().to(crate::routes::oauth::client_token))
        .route("/oauth/introspect", web::post().to(crate::routes::oauth::introspect))
        .route("/oauth/revoke", web::post().to(crate::routes::oauth::revoke))
        .route("/oauth/revocations", web::get().to(crate::routes::oauth::revocations))
        .route("/api/policy", web::get().to(api::health::policy))
        .route("/static/app.css", web::get().to(pages::layout::stylesheet))
        .route("/static/local-time.js", web::get().to(pages::layout::local_time_script))
        .route("/openapi.json", web::get().to(api::openapi::serve))
        .route(
            "/api-docs",
            web::get().to(|| async { pages::layout::redirect("/api-docs/") }),
        )
        // Everything below reads the cookie session: the HTML pages, the cookie strategy, and the
        // API routes that accept a Bearer token or a cookie. The empty prefix keeps the paths as
        // written; a path that matches nothing falls through to the app's 404.
        .service(
            web::scope("")
                // Inside the session, so an error page's header can see who is logged in.
                .wrap(ErrorHandlers::new().default_handler(pages::error_pages::error_pages))
                .wrap(sessions)
                .wrap(from_fn(session_store_unavailable))
                .route("/api/logout-all", web::post().to(api::account::logout_all))
                .service(
                    web::resource("/api/password")
                        .wrap(from_fn(limit_attempts))
                        .route(web::post().to(api::account::change_password)),
                )
                .route("/api/account", web::delete().to(api::account::delete_account))
                .service(
                    web::resource("/api/mfa/totp")
                        .wrap(from_fn(limit_attempts))
                        .route(web::post().to(api::second_factor::start_enrolment))
                        .route(web::delete().to(api::second_factor::disable)),
                )
                .service(
                    web::resource("/api/mfa/totp/confirm")
                        .wrap(from_fn(limit_attempts))
                        .route(web::post().to(api::second_factor::confirm_enrolment)),
                )
                .service(
                    web::resource("/api/mfa/recovery-codes")
                        .wrap(from_fn(limit_attempts))
                        .route(web::post().to(api::second_factor::replace_recovery_codes)),
                )
                .route("/api/sessions", web::get().to(api::sessions::list))
                .route("/api/sessions/{id}", web::delete().to(api::sessions::revoke))
                .route("/", web::get().to(pages::home))
                .route("/api-docs/", web::get().to(pages::api_docs::show))
                .service(
                    web::resource("/register")
                        .route(web::get().to(pages::register::form))
                        .route(web::post().to(pages::register::submit).wrap(from_fn(limit_attempts))),
                )
                .service(
                    web::resource("/login")
                        .route(web::get().to(pages::login::form))
                        .route(web::post().to(pages::login::submit).wrap(from_fn(limit_attempts))),
                )
                .service(
                    web::resource("/login/mfa")
                        .route(web::get().to(pages::second_factor::code_step))
                        .route(
                            web::post()
                                .to(pages::second_factor::submit_code)
                                .wrap(from_fn(limit_attempts)),
                        ),
                )
                .route("/logout", web::post().to(pages::login::logout))
                .route("/dashboard", web::get().to(pages::dashboard::show))
                .route("/sessions/revoke-others", web::post().to(pages::devices::revoke_others))
                .route("/sessions/{id}/revoke", web::post().to(pages::devices::revoke_one))
                .route("/sessions/{id}/not-me", web::post().to(pages::devices::report_not_you))
                .route("/sessions/{id}/recognise", web::post().to(pages::devices::recognise))
                .service(
                    web::resource("/logout-all")
                        .route(web::get().to(pages::devices::confirm_logout_all))
                        .route(web::post().to(pages::devices::logout_all)),
                )
                .service(
                    web::resource("/password/forgot")
                        .route(web::get().to(pages::recovery::forgot_form))
                        .route(
                            web::post()
                                .to(pages::recovery::forgot_submit)
                                .wrap(from_fn(limit_attempts)),
                        ),
                )
                .service(
                    web::resource("/password/reset")
                        .route(web::get().to(pages::recovery::reset_form))
                        .route(
                            web::post()
                                .to(pages::recovery::reset_submit)
                                .wrap(from_fn(limit_attempts)),
                        ),
                )
                .route("/verify-email", web::get().to(pages::recovery::verify_email))
                .service(
                    web::resource("/email/verification").route(
                        web::post()
                            .to(pages::recovery::resend_verification)
                            .wrap(from_fn(limit_attempts)),
                    ),
                )
                .service(
                    web::resource("/not-me")
                        .route(web::get().to(pages::recovery::not_me_form))
                        .route(
                            web::post()
                                .to(pages::recovery::not_me_confirm)
                                .wrap(from_fn(limit_attempts)),
                        ),
                )
                .service(
                    web::resource("/password")
                        .route(web::get().to(pages::password::form))
                        .route(web::post().to(pages::password::submit).wrap(from_fn(limit_attempts))),
                )
                .service(
                    web::resource("/mfa/totp")
                        .route(web::get().to(pages::second_factor::enrol_page))
                        .route(
                            web::post()
                                .to(pages::second_factor::start)
                                .wrap(from_fn(limit_attempts)),
                        ),
                )
                .route(
                    "/mfa/totp/confirm",
                    web::post()
                        .to(pages::second_factor::confirm)
                        .wrap(from_fn(limit_attempts)),
                )
                .route(
                    "/mfa/totp/disable",
                    web::post()
                        .to(pages::second_factor::disable)
                        .wrap(from_fn(limit_attempts)),
                )
                .route(
                    "/mfa/recovery-codes",
                    web::post()
                        .to(pages::second_factor::replace_recovery_codes)
                        .wrap(from_fn(limit_attempts)),
                )
                .service(
                    web::resource("/compare")
                        .route(web::get().to(pages::compare::show))
                        .route(web::post().to(pages::compare::measure_again)),
                ),
        );
}

/// The cookie session: an opaque key in an encrypted cookie, the state in `WebSessionStore`.
pub(super) fn cookie_sessions(state: &AppState, key: &Key) -> SessionMiddleware<CookieStateStore> {
    let settings = &state.settings;
    let cookie_name = if settings.cookie_secure {
        "__Host-revocable"
    } else {
        "revocable_session"
    };
    SessionMiddleware::builder(state.web_sessions.clone(), key.clone())
        .cookie_name(cookie_name.to_owned())
        .cookie_secure(settings.cookie_secure)
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_path("/".to_owned())
        .cookie_content_security(CookieContentSecurity::Private)
        .session_lifecycle(
            BrowserSession::default()
                .state_ttl(actix_web::cookie::time::Duration::seconds(
                    settings.session_idle_ttl.as_secs().max(1) as i64,
                ))
                .state_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges),
        )
        .build()
}

/// actix-session turns a failing store into an opaque 500; a store that is down is a 503.
async fn session_store_unavailable(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    next.call(request).await.map_err(|error| {
        if error.as_response_error().status_code().is_server_error() {
            tracing::warn!(error = %error, "session store unavailable");
            ApiError::Unavailable("the session store").into()
        } else {
            error
        }
    })
}

/// The per-address limit on log-in, sign-up and password attempts, counted before the handler
/// runs.
async fn limit_attempts(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(limit) = request.app_data::<web::Data<LoginLimit>>().cloned() else {
        return Ok(next.call(request).await?.map_into_left_body());
    };
    let address = crate::auth::client::address(request.request());
    let key = crate::auth::client::limit_key(&address);
    if let Decision::Limited { retry_after_seconds } = limit.attempts.attempt(&key).await {
        // The same seconds in `Retry-After` and in the body; HTML routes turn it into a page.
        let response = ApiError::RateLimited { retry_after_seconds }.error_response();
        return Ok(request.into_response(response).map_into_right_body());
    }
    Ok(next.call(request).await?.map_into_left_body())
}
