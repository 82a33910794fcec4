//! `signalpost`: parses the command line, loads configuration, and runs the chosen command.

use anyhow::Context;
use clap::Parser;
use signalpost::{
    Application, Config,
    cli::{self, Cli, Command},
};
use std::sync::Arc;

fn init_tracing() {
    use tracing_subscriber::{EnvFilter, fmt};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    // Logs go to stderr; stdout carries only what a command prints as its result.
    fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "could not listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "could not listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested");
}

async fn serve(config: Config, args: cli::ServeArgs) -> anyhow::Result<()> {
    for role in &args.roles {
        if !["feed", "monitor", "http", "all"].contains(&role.as_str()) {
            anyhow::bail!("unknown role {role:?}: this version runs feed, monitor and http together");
        }
    }
    let app = Application::build(config, Arc::new(domain::SystemClock)).await?;
    // Tests and scripts read this line to find the port when binding to port 0.
    println!("signalpost listening on http://{}", app.address);
    let token = app.shutdown_token();
    tokio::spawn(async move {
        shutdown_signal().await;
        token.cancel();
    });
    app.run_until_stopped().await
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_tracing();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) if is_broken_pipe(&error) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // The whole chain of causes on one line, and no backtrace: this is for the person at the terminal.
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Output piped into `head` that stops reading is the reader's choice, not a failure.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|e| e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load().context("could not load configuration")?;
    match cli.command.unwrap_or(Command::Serve(cli::ServeArgs::default())) {
        Command::Serve(args) => serve(config, args).await,
        Command::Migrate => cli::migrate(&config).await,
        Command::Scan(args) => signalpost::commands::scan::run(args),
        Command::Train(args) => signalpost::commands::train::run(args),
        Command::Backtest(args) => signalpost::commands::backtest::run(&config, args),
        Command::Parse(args) => signalpost::commands::parse::run(args),
        Command::Trades(command) => cli::trades(&config, command).await,
        Command::Users(command) => cli::users(&config, command).await,
        Command::Providers(command) => cli::providers(&config, command).await,
    }
}
