//! Builds the application: the actor pipeline and the HTTP server bound to its listener.

use std::net::TcpListener;

use actix::Addr;
use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use tracing_actix_web::TracingLogger;

use crate::actors::TelemetrySupervisor;
use crate::configuration::AppConfig;
use crate::influx::write::WriteTarget;
use crate::routes;

pub struct Application {
    port: u16,
    server: Server,
    supervisor: Addr<TelemetrySupervisor>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("configuration key `influx_token`: {0}")]
    Token(String),
}

impl Application {
    /// Must run inside an actix `System`: it starts the actors. Port 0 picks a free port.
    pub fn build(config: AppConfig) -> Result<Self, StartupError> {
        // libvirt's default handler prints every error to stderr; errors are logged here instead.
        virt::error::clear_error_callback();
        let target = WriteTarget::new(&config.writer).map_err(StartupError::Token)?;
        let listener = TcpListener::bind(config.listen).map_err(|source| StartupError::Listen {
            address: config.listen,
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Listen {
                address: config.listen,
                source,
            })?
            .port();
        let supervisor = TelemetrySupervisor::start_pipeline(&config, target);
        let server = run(listener, supervisor.clone()).map_err(|source| StartupError::Listen {
            address: config.listen,
            source,
        })?;
        tracing::info!(address = %config.listen, port, hosts = config.hosts.len(), "vmtelemetry started");
        Ok(Application {
            port,
            server,
            supervisor,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn supervisor(&self) -> Addr<TelemetrySupervisor> {
        self.supervisor.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn run(listener: TcpListener, supervisor: Addr<TelemetrySupervisor>) -> std::io::Result<Server> {
    let supervisor = web::Data::new(supervisor);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(TracingLogger::default())
            .app_data(supervisor.clone())
            .route("/health", web::get().to(routes::health))
            .route("/ready", web::get().to(routes::ready))
            .route(
                "/api/telemetry/status",
                web::get().to(routes::telemetry_status),
            )
            .default_service(web::to(not_found))
    })
    .listen(listener)?
    .run();
    Ok(server)
}

async fn not_found(request: actix_web::HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    routes::ApiError::NotFound(request.path().to_owned()).error_response()
}
