use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use vmtelemetry::configuration;
use vmtelemetry::startup::Application;
use vmtelemetry::telemetry::{get_subscriber, init_subscriber};

/// Watches libvirt's VMs and ships their telemetry to InfluxDB.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// A TOML file overriding the built-in defaults (config/default.toml).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match configuration::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("vmtelemetry: {error}");
            return ExitCode::from(2);
        }
    };
    init_subscriber(get_subscriber("info", config.log_format, std::io::stdout));
    let application = match Application::build(config) {
        Ok(application) => application,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            return ExitCode::from(2);
        }
    };
    match application.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}
