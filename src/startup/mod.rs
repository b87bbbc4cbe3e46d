//! Builds the application: pools, stores, keys, background tasks, and the whole route table in
//! one function (`routes::routes`), so every URL is visible in one place.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::{DefaultHeaders, ErrorHandlers, from_fn};
use actix_web::{App, HttpServer, web};
use futures_util::future::LocalBoxFuture;

use crate::auth::RequestSettings;
use crate::compare::cache::{CompareCache, Served};
use crate::compare::instance::Launched;
use crate::config::Settings;
use crate::domain::Clock;
use crate::routes::{api, web as pages};
use crate::state::AppState;

mod background;
mod routes;
mod stores;

pub use background::purge_expired;
pub use stores::{build_state, build_state_with_clock};

use background::{spawn_key_reload, spawn_purge, spawn_ssf_delivery, warn_of_short_jwks_max_age};
use routes::{cookie_sessions, routes};
use stores::cookie_key;

pub struct Application {
    address: std::net::SocketAddr,
    server: Server,
    state: web::Data<AppState>,
    compare: web::Data<CompareCache>,
}

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
        // What the handlers and extractors read on a request, each registered on its own; the
        // whole `AppState` is not app data, so no handler can reach for more than it names.
        let keys = web::Data::from(state.keys.clone());
        let revocation = web::Data::new(state.revocation.clone());
        let accounts = web::Data::from(state.accounts.clone());
        let issuer = web::Data::from(state.issuer.clone());
        let places = web::Data::new(state.places.clone());
        let login_limit = web::Data::from(state.login_limit.clone());
        let ssf = web::Data::new(state.ssf.clone());
        let client_endpoints = web::Data::from(state.client_endpoints.clone());
        let anonymous_csrf = web::Data::new(state.anonymous_csrf.clone());
        let request_settings = web::Data::new(RequestSettings::of(&state.settings));
        let served = Served {
            settings: state.settings.clone(),
            backend: state.backend,
            redis: state.redis.is_some(),
        };
        let compare = web::Data::new(CompareCache::new(launch_measuring_instance, served));
        if state.settings.compare_at_start {
            compare.clone().into_inner().start();
        }
        let redis_probe = web::Data::new(api::health::RedisProbe::new(state.redis.clone()));
        // The public documents that cannot change while the server runs, made once.
        let policy = web::Data::new(api::health::Policy::of(&state.settings, &state.keys));
        let oauth_metadata = web::Data::new(crate::oauth::metadata::document(
            &state.settings.issuer(),
            &state.settings.public_origin(),
            state.keys.algorithm_name(),
        ));
        let compare_cache = compare.clone();
        let server = HttpServer::new(move || {
            let sessions = cookie_sessions(&app_state, &session_key);
            App::new()
                .app_data(keys.clone())
                .app_data(revocation.clone())
                .app_data(accounts.clone())
                .app_data(issuer.clone())
                .app_data(places.clone())
                .app_data(login_limit.clone())
                .app_data(ssf.clone())
                .app_data(client_endpoints.clone())
                .app_data(anonymous_csrf.clone())
                .app_data(request_settings.clone())
                .app_data(compare.clone())
                .app_data(redis_probe.clone())
                .app_data(policy.clone())
                .app_data(oauth_metadata.clone())
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
