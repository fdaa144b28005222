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
    tune_malloc();
    actix_web::rt::System::new().block_on(run())
}

/// glibc's defaults suit the service badly in two ways, each measured with 10,000 VMs
/// (benches/libvirt.sh):
/// - each thread that allocates gets its own arena, up to 8 per core, keeping its freed memory;
///   the service's few threads hand large batches to each other, so two arenas suffice (≈ 5 MB);
/// - a cycle's big buffers (its lines, the domain list) are mmapped, but the first one freed
///   raises the mmap threshold to its size, so later ones come from the heap and stay resident
///   between cycles. A fixed threshold stops that adjustment: every cycle's big buffers go back to
///   the system when freed (≈ 11 MB).
///
/// Set before any other thread starts.
fn tune_malloc() {
    /// glibc's initial mmap and trim thresholds, fixed.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    const THRESHOLD: libc::c_int = 128 * 1024;
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets tunables of glibc's allocator; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, THRESHOLD);
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
