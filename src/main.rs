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

fn main() -> ExitCode {
    limit_malloc_arenas();
    actix_web::rt::System::new().block_on(run())
}

/// glibc gives each thread that allocates its own arena, up to 8 per core, and keeps their freed
/// memory. The service's few threads hand large batches to each other, so two arenas suffice:
/// with 10,000 VMs this saves ≈ 5 MB of resident memory (benches/libvirt.sh). Set before any
/// other thread starts.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of glibc's allocator; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

async fn run() -> ExitCode {
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
