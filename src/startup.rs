//! Builds the application: pools, stores, keys, background tasks, and the whole route table in
//! one function (`routes`), so every URL is visible in one place.

use std::net::TcpListener;
use std::time::Duration;

use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity, TtlExtensionPolicy};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{DefaultHeaders, ErrorHandlers, Next, from_fn};
use actix_web::{App, HttpServer, ResponseError, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::LocalBoxFuture;
use rand::Rng;

use crate::auth::RequestSettings;
use crate::auth::jwt::JwtKeys;
use crate::auth::rate_limit::{Decision, RateLimit};
use crate::compare::cache::CompareCache;
use crate::compare::instance::Launched;
use crate::config::Settings;
use crate::domain::Clock;
use crate::error::ApiError;
use crate::revocation::cookie_state::WebSessionStore;
use crate::revocation::{DenylistCopy, RedisFeed, Revocation, RevocationSettings, SyncSettings};
use crate::routes::{api, web as pages};
use crate::state::AppState;
use crate::store::{self, Backend};
use crate::web_session::CookieStateStore;

pub struct Application {
    address: std::net::SocketAddr,
    server: Server,
    state: web::Data<AppState>,
    compare: web::Data<CompareCache>,
}

/// Reset and verification links asked for per recipient address: three at once, then one more
/// every 20 seconds.
const MESSAGES_PER_RECIPIENT_PER_MINUTE: u32 = 3;

/// Largest request body accepted anywhere: 16 KiB.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The `/compare` measuring instance: this build on the harness's settings, serving in the
/// background until the harness stops it.
pub fn launch_measuring_instance(settings: Settings) -> LocalBoxFuture<'static, anyhow::Result<Launched>> {
    Box::pin(async move {
        let application = Application::build(settings).await?;
        let state = application.state();
        let address = application.address();
        Ok(Launched {
            state,
            address,
            server: application.serve_detached(),
        })
    })
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Clock::System).await
    }

    /// As `build`, measuring time on `clock` (a test's, which the test moves forward).
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        // The recorder first, so what the revocation layer reports while starting is kept.
        let metrics = web::Data::new(crate::telemetry::metrics_handle()?);
        // Bound first, so that the default issuer (`http://` + BIND) names the real port even
        // when BIND asks for any free one.
        let mut settings = settings;
        let listener = TcpListener::bind(settings.bind)?;
        let address = listener.local_addr()?;
        settings.bind.set_port(address.port());
        warn_of_short_jwks_max_age(&settings);
        let state = web::Data::new(build_state_with_clock(settings, clock).await?);
        crate::auth::password::prepare();
        state.revocation.start().await;
        spawn_purge(state.clone());
        spawn_key_reload(state.clone());

        let reachable = if address.ip().is_unspecified() {
            std::net::SocketAddr::from(([127, 0, 0, 1], address.port()))
        } else {
            address
        };
        state.mailer.default_public_url(format!("http://{reachable}"));
        tracing::info!(transport = %state.mailer.describe(), links = %state.mailer.link("/"), "mail delivery");
        state.mailer.spawn();
        spawn_ssf_delivery(&state)?;
        let session_key = cookie_key(&state).await?;
        let app_state = state.clone();
        // What the layers below `state` read on a request, each registered on its own: the
        // extractors take one of these, not the whole `AppState`.
        let keys = web::Data::from(state.keys.clone());
        let revocation = web::Data::new(state.revocation.clone());
        let request_settings = web::Data::new(RequestSettings::of(&state.settings));
        let compare = web::Data::new(CompareCache::new(launch_measuring_instance));
        if state.settings.compare_at_start {
            compare.clone().into_inner().start(&state.settings);
        }
        let redis_probe = web::Data::new(api::health::RedisProbe::new(state.redis.clone()));
        let compare_cache = compare.clone();
        let server = HttpServer::new(move || {
            let sessions = cookie_sessions(&app_state, &session_key);
            App::new()
                .app_data(app_state.clone())
                .app_data(keys.clone())
                .app_data(revocation.clone())
                .app_data(request_settings.clone())
                .app_data(compare.clone())
                .app_data(redis_probe.clone())
                .app_data(metrics.clone())
                .app_data(web::JsonConfig::default().limit(MAX_BODY_BYTES).error_handler(api::json_error))
                .app_data(web::FormConfig::default().limit(MAX_BODY_BYTES).error_handler(pages::error_pages::form_error))
                .app_data(web::PayloadConfig::default().limit(MAX_BODY_BYTES))
                .app_data(web::QueryConfig::default().error_handler(|error, request| {
                    pages::error_pages::extractor_error(format!("the query string could not be read: {error}"), request)
                }))
                .app_data(web::PathConfig::default().error_handler(|error, request| {
                    pages::error_pages::extractor_error(format!("the path could not be read: {error}"), request)
                }))
                .configure(|config| routes(config, sessions))
                // The 404 page reads the cookie session too, so its header knows who is logged in.
                .default_service(
                    web::to(pages::error_pages::not_found)
                        .wrap(ErrorHandlers::new().default_handler(pages::error_pages::error_pages))
                        .wrap(cookie_sessions(&app_state, &session_key)),
                )
                .wrap(ErrorHandlers::new().default_handler(pages::error_pages::error_pages))
                .wrap(
                    DefaultHeaders::new()
                        // Anything that answers from a credential must not be kept by a cache;
                        // the stylesheet sets its own.
                        .add(("Cache-Control", "no-store"))
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("X-Frame-Options", "DENY"))
                        .add(("Referrer-Policy", "same-origin"))
                        .add(("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")),
                )
                .wrap(from_fn(crate::telemetry::observe_request))
        })
        .listen(listener)?
        .shutdown_timeout(10)
        // `run_until_stopped` listens for the signals itself, to end the revocation feeds first.
        .disable_signals()
        .run();
        Ok(Self {
            address,
            server,
            state,
            compare: compare_cache,
        })
    }

    pub fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves in the background until the returned handle stops it, without listening for
    /// signals: the `/compare` measuring instance, whose owner ends it.
    pub fn serve_detached(self) -> actix_web::dev::ServerHandle {
        let handle = self.server.handle();
        actix_web::rt::spawn(self.server);
        handle
    }

    /// The `/compare` report, as the route serves it.
    pub fn compare_cache(&self) -> web::Data<CompareCache> {
        self.compare.clone()
    }

    /// Serves until SIGINT or SIGTERM, then finishes the requests in flight (graceful shutdown).
    /// The revocation feeds are told to end first: a feed never finishes by itself, and the
    /// graceful stop would otherwise wait its whole timeout for each connected receiver.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let state = self.state.clone();
        let signals = tokio::spawn(async move {
            let graceful = stop_signal().await;
            tracing::info!(
                graceful,
                "stop signal received; ending the revocation feeds, then the server"
            );
            state.stopping.send_replace(true);
            handle.stop(graceful).await;
        });
        let result = self.server.await;
        signals.abort();
        result?;
        Ok(())
    }
}

/// Waits for SIGTERM (a graceful stop: `true`) or SIGINT / Ctrl-C (`false`, as actix does).
async fn stop_signal() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut terminate), Ok(mut interrupt)) => tokio::select! {
                _ = terminate.recv() => true,
                _ = interrupt.recv() => false,
            },
            _ => {
                tracing::warn!("cannot listen for SIGTERM; stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
                false
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        false
    }
}

/// The route table: every URL of API.md in one place. Only the routes that read the cookie
/// session sit inside the session middleware: the others (health, Bearer-only API) never decrypt
/// a cookie or read the session store, and keep answering while that store is down.
fn routes(config: &mut web::ServiceConfig, sessions: SessionMiddleware<CookieStateStore>) {
    // Routes are tried in order: the ones that carry the load come first.
    config
        .route("/healthz", web::get().to(api::health::healthz))
        .route("/api/stateless/me", web::get().to(api::me::stateless))
        .route("/api/version/me", web::get().to(api::me::version))
        .route("/api/denylist/me", web::get().to(api::me::denylist))
        .route("/api/allowlist/me", web::get().to(api::me::allowlist))
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
        // Its pattern is a regular expression, tried against every path routed past it: after
        // the routes that carry the load.
        .service(api::openapi::browser())
        // Everything below reads the cookie session: the HTML pages, the cookie strategy, and the
        // API routes that accept a Bearer token or a cookie. The empty prefix keeps the paths as
        // written; a path that matches nothing falls through to the app's 404.
        .service(
            web::scope("")
                // Inside the session, so an error page's header can see who is logged in.
                .wrap(ErrorHandlers::new().default_handler(pages::error_pages::error_pages))
                .wrap(sessions)
                .wrap(from_fn(session_store_unavailable))
                .route("/api/cookie/me", web::get().to(api::me::cookie))
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
fn cookie_sessions(state: &AppState, key: &Key) -> SessionMiddleware<CookieStateStore> {
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

/// The pools, stores and keys, with migrations applied; nothing started yet. The operator's
/// commands work through this too, so what they change goes through the same layers.
pub async fn build_state(settings: Settings) -> anyhow::Result<AppState> {
    build_state_with_clock(settings, Clock::System).await
}

/// As `build_state`, with the clock the app measures time on.
pub async fn build_state_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<AppState> {
    let backend = Backend::of(&settings.database_url);
    store::create_database_if_missing(&settings.database_url)
        .await
        .map_err(|error| anyhow::anyhow!("cannot create the {} database: {error}", backend.name()))?;
    let db = store::connect_with_limit(&settings.database_url, settings.database_max_connections)
        .await
        .map_err(|error| anyhow::anyhow!("cannot open the {} database: {error}", backend.name()))?;
    store::migrate(&db).await?;
    let redis = match &settings.redis_url {
        None => None,
        Some(url) => Some(
            deadpool_redis::Config::from_url(url)
                .builder()
                .map_err(|error| anyhow::anyhow!("REDIS_URL: {error}"))?
                .max_size(32)
                .wait_timeout(Some(Duration::from_secs(2)))
                .create_timeout(Some(Duration::from_secs(2)))
                .recycle_timeout(Some(Duration::from_secs(2)))
                .runtime(deadpool_redis::Runtime::Tokio1)
                .build()
                .map_err(|error| anyhow::anyhow!("REDIS_URL: {error}"))?,
        ),
    };
    let (backing_sessions, denylist) = match &redis {
        None => (WebSessionStore::Sql(db.clone()), DenylistCopy::Database),
        Some(pool) => (
            WebSessionStore::Redis {
                pool: pool.clone(),
                prefix: settings.redis_prefix.clone(),
            },
            DenylistCopy::redis(pool.clone(), &settings.redis_prefix),
        ),
    };
    let keys = JwtKeys::load(&settings, &db, clock.clone()).await?;
    let csrf_key = store::secrets::get_or_create(&db, "csrf_key", crate::domain::RandomId::secret).await?;
    let anonymous_csrf = crate::auth::csrf::AnonymousCsrf::new(csrf_key.into_bytes(), settings.cookie_secure);
    let known_browser_key =
        store::secrets::get_or_create(&db, "known_browser_key", crate::domain::RandomId::secret).await?;
    let known_browsers = crate::auth::known_browser::KnownBrowsers::new(
        known_browser_key.into_bytes(),
        settings.known_browser_ttl,
        settings.cookie_secure,
    );
    let revocation = Revocation::new(
        db.clone(),
        denylist,
        backing_sessions,
        revocation_settings(&settings, &redis, clock.clone()),
    );
    let web_sessions = CookieStateStore::new(revocation.clone(), settings.session_ttl);
    let geoip = match &settings.geoip_db {
        None => None,
        Some(path) => Some(crate::geoip::Geoip::open(path).map_err(|error| anyhow::anyhow!("GEOIP_DB: {error}"))?),
    };
    let totp_sealing = crate::auth::totp::SealingKey::load(&settings, &db).await?;
    let shared_limits = redis.clone().map(|pool| (pool, settings.redis_prefix.clone()));
    let mailer = crate::mail::Mailer::new(db.clone(), &settings)?;
    let ssf = crate::ssf::Ssf::new(
        db.clone(),
        revocation.clone(),
        settings.issuer(),
        settings.public_origin(),
        settings.ssf_min_verification_interval,
    );
    Ok(AppState {
        ssf,
        db,
        backend,
        redis,
        keys: std::sync::Arc::new(keys),
        revocation,
        web_sessions,
        login_limit: RateLimit::new(
            "login",
            settings.login_rate_per_minute,
            shared_limits.clone(),
            clock.clone(),
        ),
        client_auth_limit: RateLimit::new(
            "client-auth",
            settings.client_auth_failures_per_minute,
            shared_limits.clone(),
            clock.clone(),
        ),
        mail_limit: RateLimit::new("mail", MESSAGES_PER_RECIPIENT_PER_MINUTE, shared_limits, clock),
        mailer,
        anonymous_csrf,
        known_browsers,
        geoip,
        stopping: tokio::sync::watch::Sender::new(false),
        totp_sealing,
        settings,
    })
}

fn revocation_settings(settings: &Settings, redis: &Option<deadpool_redis::Pool>, clock: Clock) -> RevocationSettings {
    RevocationSettings {
        clock,
        cache: settings.revocation_cache,
        capacity: settings.revocation_cache_capacity,
        time_to_live: settings.access_ttl,
        log_retention: settings.revocation_log_retention,
        activity_interval: settings.last_seen_interval(),
        expiry_tolerance: settings.jwt_leeway + Duration::from_secs(1),
        sync: SyncSettings {
            backend: Backend::of(&settings.database_url),
            database_url: settings.database_url.clone(),
            redis: match (redis, &settings.redis_url) {
                (Some(pool), Some(url)) => Some(RedisFeed {
                    url: url.clone(),
                    pool: pool.clone(),
                    channel: format!("{}revocations", settings.redis_prefix),
                }),
                _ => None,
            },
            push: settings.revocation_push,
            poll_interval: settings.revocation_poll_interval,
            max_staleness: settings.revocation_max_staleness,
        },
    }
}

/// The key that encrypts the session cookie, generated once and kept with the other secrets.
async fn cookie_key(state: &AppState) -> anyhow::Result<Key> {
    let encoded = store::secrets::get_or_create(&state.db, "cookie_key", || {
        let mut bytes = [0u8; 64];
        rand::rng().fill_bytes(&mut bytes);
        URL_SAFE_NO_PAD.encode(bytes)
    })
    .await?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded)?;
    Ok(Key::try_from(bytes.as_slice())?)
}

/// The Shared Signals delivery task: fills streams from the log and pushes their events. An
/// https receiver is trusted when its certificate chains to the system's trust store, or to a CA
/// of `SSF_PUSH_CA_FILE`.
fn spawn_ssf_delivery(state: &AppState) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("revocable/", env!("CARGO_PKG_VERSION")))
        .tls_certs_merge(state.settings.ssf_push_ca.iter().cloned())
        .build()?;
    tokio::spawn(crate::ssf::delivery::run(state.ssf.clone(), http, state.stopping()));
    Ok(())
}

/// Purges expired state on a timer; a failure is logged and retried on the next tick.
fn spawn_purge(state: web::Data<AppState>) {
    let interval = state.settings.purge_interval;
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            purge_expired(&state).await;
        }
    });
}

/// Deletes what has expired by the app's clock: verified tokens held in memory, revocation state,
/// past log-in attempt windows, ended second-factor challenges. Run every `PURGE_INTERVAL`, and
/// directly by tests that move the clock. A failure is logged and left to the next run.
pub async fn purge_expired(state: &AppState) {
    state.keys.purge_verified_tokens();
    if let Err(error) = state.revocation.purge_expired().await {
        tracing::warn!(error = %error, "purge of expired state failed");
    }
    if let Err(error) = crate::auth::throttle::purge(&state.db, state.account_lock()).await {
        tracing::warn!(error = %error, "purge of past log-in attempt windows failed");
    }
    let now = state.revocation.clock().now_millis();
    if let Err(error) = store::mfa_challenges::purge_ended(&state.db, now).await {
        tracing::warn!(error = %error, "purge of ended second-factor challenges failed");
    }
}

/// `jose` and PyJWT refetch a JWKS at most once per 30 s whatever its `max-age` says; a key that
/// signs sooner after its publication than a minute reaches them before they may look for it.
fn warn_of_short_jwks_max_age(settings: &Settings) {
    if settings.jwt_algorithm == crate::config::JwtAlgorithm::EdDsa && settings.jwks_max_age < Duration::from_secs(60) {
        tracing::warn!(
            jwks_max_age = ?settings.jwks_max_age,
            "JWKS_MAX_AGE is under a minute: a rotated-in key starts signing before clients with a 30 s JWKS refetch cooldown (jose, PyJWT) can fetch it, and they refuse its first tokens"
        );
    }
}

/// Re-reads the signing keys as soon as the revocation log announces a new one (a rotation by
/// any process, this one or the command line, reaches every instance as a revocation does),
/// every `auth::keys::reload_interval` as a backstop (an edited `JWT_KEYS_FILE`), and within a
/// second of a token naming a key this instance does not know.
fn spawn_key_reload(state: web::Data<AppState>) {
    if state.settings.jwt_algorithm != crate::config::JwtAlgorithm::EdDsa {
        return;
    }
    let every = crate::auth::keys::reload_interval(&state.settings);
    let mut log = state.revocation.subscribe();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        let mut last = tokio::time::Instant::now();
        loop {
            let announced = tokio::select! {
                received = log.recv() => match received {
                    Ok(entry) => entry.change.kind == crate::store::revocation_log::EntryKind::SigningKeyAdded,
                    // Entries were missed: one of them may have been a key.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                    // Never while the process runs; the timed reload still does.
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        ticker.tick().await;
                        false
                    }
                },
                _ = ticker.tick() => false,
            };
            let now = tokio::time::Instant::now();
            if announced || state.keys.wants_reload() || now.duration_since(last) >= every {
                if let Err(error) = state.keys.reload(&state.db).await {
                    tracing::warn!(error = %error, "signing keys could not be reloaded; keeping the ones in use");
                }
                last = now;
            }
        }
    });
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
    let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(request).await?.map_into_left_body());
    };
    let address = crate::auth::client::client_ip(request.request(), &state.settings.trusted_proxies);
    let key = crate::auth::client::limit_key(&address);
    if let Decision::Limited { retry_after_seconds } = state.login_limit.attempt(&key).await {
        // The same seconds in `Retry-After` and in the body; HTML routes turn it into a page.
        let response = ApiError::RateLimited { retry_after_seconds }.error_response();
        return Ok(request.into_response(response).map_into_right_body());
    }
    Ok(next.call(request).await?.map_into_left_body())
}
