//! The command line: `serve` (the default), `migrate`, `demo`, and the operator's `keys`,
//! `clients` and `users` commands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;

#[derive(Parser)]
#[command(
    name = "revocable",
    version,
    about = "Server-side sessions and revocable JWTs, side by side"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the application (the default): migrations run first.
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Observe the revocation matrix against a running server and compare it with the README's.
    Demo {
        /// The server to run against.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Print the observed matrix as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Ed25519 signing keys (JWT_ALG=EdDSA): rotate, list, or generate one for JWT_KEYS_FILE.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Clients: other services that introspect, revoke and read the revocation feed.
    Clients {
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// Accounts, for an operator helping a person: see, sign out, lock, unlock.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// The account, its live login sessions and its recent security activity.
    Show { email: String },
    /// End every login session of the account (its owner reads "signed out by an administrator").
    SignOut { email: String },
    /// Refuse the account's log-ins and end every login session, until `unlock`.
    Lock { email: String },
    /// Allow the account's log-ins again.
    Unlock { email: String },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a signing key: published in the JWKS now, signing after JWKS_MAX_AGE; the key it
    /// replaces verifies until the tokens it signed have expired.
    Rotate,
    /// List the keys with their state: next, signing, verifying (until when) or retired.
    List,
    /// Print a new private Ed25519 JWK to add to the set in JWT_KEYS or JWT_KEYS_FILE.
    Generate,
}

#[derive(Subcommand)]
enum ClientsCommand {
    /// Create a client; its id and secret are printed once (only a hash of the secret is kept).
    Add {
        /// A name to recognise the service by.
        name: String,
        /// A scope it may ask for in the client-credentials grant (repeat, or separate with
        /// commas): ssf.manage, ssf.read, introspect, revoke. Default: every one.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
    },
    /// List the clients (never their secrets).
    List,
    /// Remove a client by id or name; its credentials stop working at once.
    Remove {
        /// The client's id or name.
        client: String,
    },
}

/// glibc gives each thread that allocates an arena of its own, up to 8 per core; the server runs
/// a dozen threads (workers, runtime, one per SQLite connection), and memory freed in one arena
/// is not reused by another. Four arenas keep the resident set of an instance holding 100 000
/// login sessions about a tenth smaller at no cost in throughput (measured by `scripts/bench.sh`).
/// `MALLOC_ARENA_MAX`, when set, still decides.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: `mallopt` only sets a tunable of the allocator; it is called before the
        // process starts any other thread.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 4);
        }
    }
}

pub fn run(cli: Cli) -> ExitCode {
    limit_malloc_arenas();
    if let Some(Command::Demo { url, json }) = &cli.command {
        return demo(url, *json);
    }
    let log_format = match crate::telemetry::LogFormat::from_env() {
        Ok(format) => format,
        Err(error) => {
            eprintln!("revocable: {error}");
            return ExitCode::from(2);
        }
    };
    // Held until `run` returns, so the lines still queued are written before the process exits.
    let _log_writer = crate::telemetry::init(log_format);
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("revocable: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("revocable: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(settings).await,
            Command::Migrate => migrate(settings).await,
            Command::Keys { command } => keys(settings, command).await,
            Command::Clients { command } => clients(settings, command).await,
            Command::Users { command } => users(settings, command).await,
            Command::Demo { .. } => unreachable!("handled before the settings are read"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("revocable: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let application = crate::startup::Application::build(settings).await?;
    tracing::info!(address = %application.address(), "revocable is listening");
    application.run_until_stopped().await
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let db = crate::store::connect(&settings.database_url).await?;
    crate::store::migrate(&db).await?;
    println!(
        "migrations applied to {}",
        crate::store::Backend::of(&settings.database_url).name()
    );
    Ok(())
}

async fn open_database(settings: &Settings) -> anyhow::Result<crate::store::Db> {
    let db = crate::store::connect(&settings.database_url).await?;
    crate::store::migrate(&db).await?;
    Ok(db)
}

fn time_of(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|time| time.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

async fn keys(settings: Settings, command: KeysCommand) -> anyhow::Result<()> {
    use crate::auth::keys::{self, Ed25519Key, KeyState};
    match command {
        KeysCommand::Generate => {
            let key = Ed25519Key::generate(0, 0);
            println!("{}", key.private_jwk());
        }
        KeysCommand::Rotate => {
            // Through the revocation layer, which announces the key to every running instance.
            let state = crate::startup::build_state(settings.clone()).await?;
            let key = keys::rotate(&settings, &state.db, &state.revocation).await?;
            println!(
                "added key {}: in the JWKS of every running instance now, signing from {}",
                key.kid,
                time_of(key.signs_from)
            );
        }
        KeysCommand::List => {
            if settings.jwt_algorithm != crate::config::JwtAlgorithm::EdDsa {
                anyhow::bail!("HS256 signs with one secret (JWT_SECRET or the stored one); set JWT_ALG=EdDSA for keys");
            }
            let db = open_database(&settings).await?;
            let ring = keys::load(&settings, &db).await?;
            println!(
                "{:<18} {:<10} {:<21} {:<21} until",
                "kid", "state", "created", "signs from"
            );
            for (key, state) in ring.states(crate::domain::now_millis()) {
                let until = match state {
                    KeyState::Verifying { until } if until < i64::MAX => time_of(until),
                    _ => "-".to_owned(),
                };
                println!(
                    "{:<18} {:<10} {:<21} {:<21} {until}",
                    key.kid,
                    state.label(),
                    time_of(key.created_at),
                    time_of(key.signs_from)
                );
            }
        }
    }
    Ok(())
}

async fn clients(settings: Settings, command: ClientsCommand) -> anyhow::Result<()> {
    use crate::oauth::clients;
    let db = open_database(&settings).await?;
    match command {
        ClientsCommand::Add { name, scopes } => {
            let scopes = if scopes.is_empty() {
                crate::domain::Scopes::all()
            } else {
                crate::domain::Scopes::parse(&scopes.join(" ")).map_err(|unknown| {
                    anyhow::anyhow!(
                        "unknown scope {:?}; the scopes are: {}",
                        unknown.0,
                        crate::domain::Scopes::all()
                    )
                })?
            };
            let client = clients::add_with_scopes(&db, &name, &scopes).await?;
            println!("client_id:     {}", client.id);
            println!("scopes:        {scopes}");
            println!("client_secret: {}", client.secret);
            eprintln!("The secret is shown only this once; keep it in the service's secret store.");
        }
        ClientsCommand::List => {
            println!("{:<24} {:<21} {:<24} scopes", "client_id", "created", "name");
            for client in clients::list(&db).await? {
                println!(
                    "{:<24} {:<21} {:<24} {}",
                    client.id,
                    time_of(client.created_at),
                    client.name,
                    client.scopes
                );
            }
        }
        ClientsCommand::Remove { client } => {
            if !clients::remove(&db, &client).await? {
                anyhow::bail!("no client with id or name {client:?}");
            }
            println!("removed {client}");
        }
    }
    Ok(())
}

async fn users(settings: Settings, command: UsersCommand) -> anyhow::Result<()> {
    use crate::account::operator;
    let state = crate::startup::build_state(settings).await?;
    let result = match command {
        UsersCommand::Show { email } => operator::show(&state.accounts, &email).await.map(print_overview),
        UsersCommand::SignOut { email } => operator::sign_out(&state.accounts, &email).await.map(|count| {
            println!("signed out {email}: {}", crate::account::count_devices(count, false));
        }),
        UsersCommand::Lock { email } => operator::lock(&state.accounts, &email).await.map(|count| {
            println!(
                "locked {email}: log-ins refused until `revocable users unlock`; {} signed out",
                crate::account::count_devices(count, false)
            );
        }),
        UsersCommand::Unlock { email } => operator::unlock(&state.accounts, &email).await.map(|was_locked| {
            if was_locked {
                println!("unlocked {email}: log-ins allowed again");
            } else {
                println!("{email} was not locked");
            }
        }),
    };
    state.revocation.close().await;
    result.map_err(|error| anyhow::anyhow!("{error}"))
}

fn print_overview(overview: crate::account::operator::Overview) {
    let user = &overview.user;
    println!("account        {}", user.id);
    println!("email          {}", user.email);
    println!("created        {}", time_of(user.created_at));
    match overview.email_verified_at {
        Some(at) => println!("verified       {}", time_of(at)),
        None => println!("verified       no"),
    }
    println!("password set   {}", time_of(user.password_changed_at));
    if let Some(at) = overview.password_reset_required_at {
        println!(
            "reset needed   since {} (reported \"this wasn't me\"; password log-ins refused)",
            time_of(at)
        );
    }
    println!("two-step       {}", if overview.second_factor { "on" } else { "off" });
    match user.locked_at {
        Some(at) => println!("locked         since {} (log-ins refused)", time_of(at)),
        None => println!("locked         no"),
    }
    println!("token_version  {}", user.token_version);
    println!();
    println!("live login sessions: {}", overview.live.len());
    if !overview.live.is_empty() {
        println!(
            "  {:<22} {:<6} {:<28} {:<16} {:<21} last seen",
            "id", "kind", "device", "ip", "created"
        );
    }
    for session in &overview.live {
        println!(
            "  {:<22} {:<6} {:<28} {:<16} {:<21} {}",
            session.id,
            session.kind.as_str(),
            crate::auth::client::describe_device(&session.user_agent),
            session.ip,
            time_of(session.created_at),
            time_of(session.last_seen_at)
        );
    }
    println!();
    println!("recent security activity:");
    for event in &overview.recent {
        println!(
            "  {:<21} {:<26} {}",
            time_of(event.created_at),
            event.kind,
            event.detail
        );
    }
}

/// `revocable demo`: exit 0 when every observed cell matches the documented matrix, 1 when one
/// differs, 2 when the scenario could not run.
fn demo(url: &str, json: bool) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("revocable: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let observed = match runtime.block_on(crate::compare::scenario::run(url)) {
        Ok(observed) => observed,
        Err(error) => {
            eprintln!("revocable demo: {error}");
            return ExitCode::from(2);
        }
    };
    let differences = observed.differences();
    if json {
        let document = serde_json::json!({
            "url": url,
            "rows": observed.rows,
            "matches_documented_matrix": differences.is_empty(),
        });
        println!("{}", serde_json::to_string_pretty(&document).unwrap_or_default());
    } else {
        use std::io::IsTerminal;
        print!(
            "{}",
            crate::compare::matrix::terminal_table(&observed.rows, std::io::stdout().is_terminal())
        );
        println!("access tokens live {} s on {url}", observed.access_ttl_seconds);
    }
    if differences.is_empty() {
        if !json {
            println!("every observed cell matches the documented matrix");
        }
        ExitCode::SUCCESS
    } else {
        for (event, strategy, seen, wanted) in differences {
            eprintln!(
                "differs: after {} the {strategy} strategy {seen} the credential; documented: {wanted}",
                event.label()
            );
        }
        ExitCode::FAILURE
    }
}
