//! The command line: `serve` (the default) and `migrate`.

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
}

pub fn run(cli: Cli) -> ExitCode {
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
    let observed = match runtime.block_on(crate::scenario::run(url)) {
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
            crate::scenario::terminal_table(&observed.rows, std::io::stdout().is_terminal())
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
