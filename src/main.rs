use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vmtelemetry::replay::{self, ReplayArgs};
use vmtelemetry::startup::Application;
use vmtelemetry::telemetry::{get_subscriber, init_subscriber};
use vmtelemetry::{allocator, configuration};

/// Watches libvirt's VMs and ships their telemetry to InfluxDB.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// A TOML file overriding the built-in defaults (config/default.toml).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Forecasts and right-sizing over history already in InfluxDB (InfluxQL: v1 or v2 API).
    Replay(ReplayCli),
}

#[derive(clap::Args)]
struct ReplayCli {
    /// The span's start: RFC 3339, or before now like `-30d`.
    #[arg(long, allow_hyphen_values = true)]
    start: String,
    /// Its end: RFC 3339, `now` (the default) or like `-1h`.
    #[arg(long, default_value = "now", allow_hyphen_values = true)]
    end: String,
    /// Only the VMs of this host (its `host` tag).
    #[arg(long)]
    host: Option<String>,
    /// Only the VMs whose name matches this pattern (`*`: any characters).
    #[arg(long)]
    name: Option<String>,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// The span read per query, like `1h`: its answer is held whole. By default each span is
    /// sized from the answer before, to ≈ 10 MiB (benches/README.md).
    #[arg(long, value_parser = humantime::parse_duration)]
    chunk: Option<std::time::Duration>,
    /// VMs shown, the most to reclaim first.
    #[arg(long, default_value_t = 10_000)]
    limit: usize,
}

fn main() -> ExitCode {
    glib_slices_from_malloc();
    tune_malloc();
    let open_files = raise_open_files_limit();
    actix_web::rt::System::new().block_on(run(open_files))
}

/// `vmtelemetry replay`: exit code 2 for arguments it cannot use, 1 when InfluxDB fails it.
async fn replay_history(config: &configuration::AppConfig, cli: ReplayCli) -> ExitCode {
    let now = chrono::Utc::now();
    let span = replay::instant(&cli.start, now).and_then(|start| {
        let end = replay::instant(&cli.end, now)?;
        Ok((start, end))
    });
    let (start, end) = match span {
        Ok(span) => span,
        Err(error) => {
            eprintln!("vmtelemetry replay: {error}");
            return ExitCode::from(2);
        }
    };
    let args = ReplayArgs {
        start,
        end,
        host: cli.host,
        name: cli.name,
        chunk: cli.chunk,
        limit: cli.limit,
    };
    match replay::run(config, &args).await {
        Ok(all) if cli.json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&all).expect("plain data")
            );
            ExitCode::SUCCESS
        }
        Ok(all) => {
            print!("{}", replay::table(&all));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("vmtelemetry replay: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// GLib 2.74 (Debian 12) takes libvirt's objects from its slice allocator, which keeps each
/// thread's freed ones in magazines of its own: ≈ 1 MB resident at 10,000 VMs (benches/README.md).
/// `G_SLICE=always-malloc` hands them to malloc, but GLib reads it before `main`: so the process
/// sets it and executes itself again, once (GLib 2.76 and later always use malloc). An operator's
/// own `G_SLICE` is left as it is.
fn glib_slices_from_malloc() {
    use std::os::unix::process::CommandExt;

    if std::env::var_os("G_SLICE").is_some() {
        return;
    }
    let mut args = std::env::args_os();
    // Its own path, not /proc/self/exe, which would name the process `exe`.
    let (Some(arg0), Ok(path)) = (args.next(), std::env::current_exe()) else {
        return;
    };
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var("G_SLICE", "always-malloc") };
    // Returns only if it failed: the process then goes on with GLib's slices.
    let error = std::process::Command::new(path)
        .arg0(arg0)
        .args(args)
        .exec();
    eprintln!("vmtelemetry: cannot execute itself with G_SLICE=always-malloc ({error}); going on");
}

/// glibc's defaults suit the service badly in two ways (figures in benches/README.md):
/// - each thread that allocates gets its own arena, up to 8 per core, keeping its freed memory;
///   the service's few threads hand large batches to each other, so two arenas suffice;
/// - a cycle's big buffers (its lines, the domain list) are mmapped, but the first one freed
///   raises the mmap threshold to its size, so later ones come from the heap and stay resident
///   between cycles. A fixed threshold stops that adjustment: every cycle's big buffers go back to
///   the system when freed.
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

/// The soft limit on open files is often 1,024 (systemd's default) while the hard one is far
/// higher: at 1,024, a burst of clients made accept fail ("Too many open files"). Raised to the
/// hard limit; connections stay bounded by `http_max_connections`.
/// Returns the soft limit before and after.
fn raise_open_files_limit() -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let before = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if before < limit.rlim_max && libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((before, limit.rlim_cur))
    }
}

/// Once start-up is over, the clean pages it touched go back to the system.
async fn reclaim_after_start_up() {
    actix_web::rt::time::sleep(allocator::START_UP).await;
    let started = std::time::Instant::now();
    match actix_web::web::block(allocator::reclaim_clean_pages).await {
        Ok(Ok(advised_bytes)) => {
            let took_ms = started.elapsed().as_millis();
            tracing::info!(advised_bytes, took_ms, "start-up's clean pages given back");
        }
        Ok(Err(error)) => tracing::warn!(%error, "cannot read this process's mappings"),
        // Stopping: the blocking threads are gone.
        Err(_) => {}
    }
}

async fn run(open_files: std::io::Result<(u64, u64)>) -> ExitCode {
    let cli = Cli::parse();
    let config = match configuration::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("vmtelemetry: {error}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Replay(args)) = cli.command {
        return replay_history(&config, args).await;
    }
    init_subscriber(get_subscriber("info", config.log_format, std::io::stdout));
    match open_files {
        Ok((before, after)) => tracing::info!(before, after, "soft limit of open files"),
        Err(error) => tracing::warn!(%error, "cannot raise the soft limit of open files"),
    }
    let application = match Application::build(config) {
        Ok(application) => application,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            return ExitCode::from(2);
        }
    };
    actix_web::rt::spawn(reclaim_after_start_up());
    match application.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}
