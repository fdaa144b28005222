//! Builds the application: the actor pipeline and the HTTP server bound to its listener.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_rt::signal::unix::{SignalKind, signal};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{self, Next, from_fn};
use actix_web::{
    App, FromRequest, Handler, HttpMessage, HttpRequest, HttpResponse, HttpServer, Resource,
    Responder, ResponseError, Route, guard, web,
};
use socket2::{Domain, Socket, Type};
use tracing_actix_web::{RequestId, TracingLogger};

use crate::actors::insights::SaveSnapshot;
use crate::actors::{Pipeline, TelemetrySupervisor};
use crate::configuration::{AllowedHosts, AppConfig, HttpConfig};
use crate::influx::TargetError;
use crate::influx::buffer::LineBuffer;
use crate::influx::query::QueryTarget;
use crate::influx::queue::WriteQueue;
use crate::influx::spool::{Limits, Spool, SpoolError, SpoolSettings};
use crate::influx::tls::{HttpClients, TlsError};
use crate::influx::write::WriteTarget;
use crate::metrics::{self, HttpMetrics};
use crate::routes;

pub struct Application {
    port: u16,
    server: Server,
    pipeline: Pipeline,
    shutdown_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// `influx_url` or `influx_token` cannot make a request.
    #[error("configuration key `{}`: {}", .0.key(), .0)]
    Target(#[from] TargetError),
    #[error("configuration key `spool_dir`: {0}")]
    Spool(#[from] SpoolError),
    #[error("configuration key `influx_ca_file`: {0}")]
    Tls(#[from] TlsError),
}

/// Everything the HTTP workers share; each worker adds its own `awc::Client`.
#[derive(Clone)]
struct Shared {
    pipeline: web::Data<Pipeline>,
    /// None without InfluxDB: history answers 503.
    query_target: web::Data<Option<QueryTarget>>,
    query_limit: web::Data<routes::QueryLimit>,
    admin_token: web::Data<routes::AdminToken>,
    allowed_hosts: web::Data<AllowedHosts>,
    clients: HttpClients,
    http_metrics: web::Data<HttpMetrics>,
    metrics_enabled: bool,
}

impl Application {
    /// Must run inside an actix `System`: it starts the actors. Port 0 picks a free port.
    pub fn build(config: AppConfig) -> Result<Self, StartupError> {
        // libvirt's default handler prints every error to stderr; errors are logged here instead.
        virt::error::clear_error_callback();
        let write_target = WriteTarget::new(&config.writer)?;
        let query_target = QueryTarget::new(&config.writer)?;
        let https = (config.writer.influx_url.as_ref()).is_some_and(|url| url.scheme() == "https");
        let clients = HttpClients::new(https, config.writer.ca_file.as_deref())?;
        let listen_error = |source| StartupError::Listen {
            address: config.listen,
            source,
        };
        let listener = bind(config.listen).map_err(listen_error)?;
        let port = listener.local_addr().map_err(listen_error)?.port();
        if config.hosts.is_empty() {
            tracing::warn!(
                shard = config.shard.index,
                shards = config.shard.count,
                "this shard has no host to collect"
            );
        }
        let buffer: Box<dyn LineBuffer + Send> = match &config.writer.spool {
            Some(spool) => Box::new(Spool::open(
                &spool.dir,
                SpoolSettings {
                    limits: Limits {
                        max_bytes: spool.max_bytes,
                        min_free: spool.min_free_bytes,
                    },
                    chunk_lines: config.writer.batch_max_lines,
                    max_queue: config.writer.max_queue,
                    batch_max_age: config.writer.batch_max_age,
                },
            )?),
            None => Box::new(WriteQueue::new(
                config.writer.max_queue,
                config.writer.batch_max_age,
            )),
        };
        let pipeline =
            TelemetrySupervisor::start_pipeline(&config, write_target, clients.clone(), buffer);
        let shared = Shared {
            pipeline: web::Data::new(pipeline.clone()),
            query_target: web::Data::new(query_target),
            query_limit: web::Data::new(routes::QueryLimit(config.query_limit_max)),
            admin_token: web::Data::new(routes::AdminToken(config.admin_token.clone())),
            allowed_hosts: web::Data::new(routes::served_names(&config.http.allowed_hosts)),
            clients,
            http_metrics: web::Data::new(HttpMetrics::default()),
            metrics_enabled: config.metrics_enabled,
        };
        let server = run(listener, shared, &config.http).map_err(listen_error)?;
        tracing::info!(address = %config.listen, port, hosts = config.hosts.len(), "vmtelemetry started");
        Ok(Application {
            port,
            server,
            pipeline,
            shutdown_timeout: config.shutdown_timeout,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or SIGINT, then stops collecting and flushes for at most
    /// `shutdown_timeout` (what is left stays in the spool) while the insights' models are saved.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        // Our own signal handling: actix-server's would stop the whole actix System, and with it
        // the writer's thread, before the flush.
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let handle = self.server.handle();
        let mut server = std::pin::pin!(self.server);
        let signalled = tokio::select! {
            served = &mut server => {
                served?;
                false
            }
            _ = terminate.recv() => true,
            _ = interrupt.recv() => true,
        };
        if signalled {
            tracing::info!("stopping: no more requests, no more collection");
            // The server future itself carries the stop out: keep polling it.
            let stopped = handle.stop(true);
            server.await?;
            stopped.await;
        }
        tracing::info!("stopping: flushing what the writer holds, saving the insights' models");
        // Queued at once, saved on a thread of its own while the writer flushes.
        let snapshot =
            (self.pipeline.insights.as_ref()).map(|insights| insights.send(SaveSnapshot));
        let left = self.pipeline.shut_down(self.shutdown_timeout).await;
        if let Some(snapshot) = snapshot
            && actix_rt::time::timeout(self.shutdown_timeout, snapshot)
                .await
                .is_err()
        {
            tracing::warn!("stopped before the insights' models were saved");
        }
        if left == 0 {
            tracing::info!("stopped: every line written");
        } else {
            tracing::warn!(lines = left, "stopped with lines not yet written");
        }
        Ok(())
    }
}

/// Connects queued while the workers are busy or at `http_max_connections`: std's `bind` listens
/// with 128, too few for a burst. The kernel caps it at net.core.somaxconn.
const LISTEN_BACKLOG: i32 = 4096;

/// As `TcpListener::bind` (with SO_REUSEADDR, so a restart rebinds while old connections linger in
/// TIME_WAIT), with a longer backlog.
fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

fn run(listener: TcpListener, shared: Shared, http: &HttpConfig) -> std::io::Result<Server> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let connections = routes::ConnectionCount::default();
    connections.clone().trim_after_bursts();
    let server = HttpServer::new(move || {
        let shared = shared.clone();
        App::new()
            // Innermost: a refused Host (421) is logged, counted and carries its request id.
            .wrap(from_fn(routes::host_check))
            // Registered first, so it runs inside the request span and sees its id.
            .wrap(from_fn(request_id_header))
            .wrap(from_fn(metrics::count_requests))
            .wrap(middleware::Compress::default())
            .wrap(TracingLogger::<routes::PathOnlySpan>::new())
            .app_data(shared.http_metrics)
            .app_data(shared.pipeline)
            .app_data(shared.query_target)
            .app_data(shared.query_limit)
            .app_data(shared.admin_token)
            .app_data(shared.allowed_hosts)
            // Outermost: every answer carries them, errors and the middleware's 421 included.
            .wrap(routes::security_headers())
            // `awc::Client` is not `Send`: one per worker.
            .app_data(web::Data::new(shared.clients.client()))
            .app_data(web::QueryConfig::default().error_handler(|e, _| routes::query_error(e)))
            .service(readable("/", routes::index))
            .service(readable("/static/{path:.*}", routes::asset))
            .service(readable("/health", routes::health))
            .service(readable("/ready", routes::ready))
            .service(readable("/api/openapi.json", routes::openapi_json))
            .service(readable("/api/telemetry/status", routes::telemetry_status))
            .service(readable("/api/telemetry/vms", routes::list_vms))
            .service(readable("/api/telemetry/summary", routes::summary))
            .service(readable("/api/telemetry/stats/{vm_id}", routes::vm_stats))
            .service(readable("/api/telemetry/history", routes::history))
            .service(readable("/api/telemetry/insights", routes::fleet_insights))
            .service(readable(
                "/api/telemetry/insights/{vm_id}",
                routes::vm_insights,
            ))
            .service(readable(
                "/api/telemetry/recommendations",
                routes::recommendations,
            ))
            .service(readable("/api/admin/actors", routes::list_actors))
            .configure(|app| {
                if shared.metrics_enabled {
                    app.service(readable("/metrics", routes::metrics));
                }
            })
            .service(postable(
                "/api/admin/actors/{name}/restart",
                routes::restart_actor,
            ))
            .service(postable("/api/admin/coordination/drain", routes::drain))
            .service(postable("/api/admin/coordination/resume", routes::resume))
            .service(postable(
                "/api/admin/coordination/hand-over",
                routes::hand_over,
            ))
            .default_service(web::to(not_found))
    })
    .on_connect(move |_, _| connections.accepted())
    .disable_signals()
    // Each connection holds ≈ 20 KB of buffers: a burst is served so many at a time, the rest
    // waits in the backlog, and memory stays bounded.
    .workers(workers)
    .max_connections(http.max_connections.div_ceil(workers))
    .listen(listener)?
    .run();
    Ok(server)
}

/// Every response names its request, so a client's report can be found in the logs.
async fn request_id_header(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = request.extensions().get::<RequestId>().copied();
    let mut response = next.call(request).await?;
    if let Some(id) = request_id
        && let Ok(value) = HeaderValue::from_str(&id.to_string())
    {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(response)
}

/// GET and HEAD on `path` (HEAD answers as GET does, without the body, as `curl -I` and load
/// balancers' health checks expect); any other method gets 405.
fn readable<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    let get = web::route().guard(guard::Any(guard::Get()).or(guard::Head()));
    only(path, get.to(handler), "GET, HEAD")
}

/// POST on `path`; any other method gets 405.
fn postable<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    only(path, web::post().to(handler), "POST")
}

/// `route` on `path`; any other method gets 405 naming the `allowed` ones.
fn only(path: &str, route: Route, allowed: &'static str) -> Resource {
    web::resource(path).route(route).default_service(web::to(
        move |request: HttpRequest| async move { not_allowed(&request, allowed) },
    ))
}

fn not_allowed(request: &HttpRequest, allowed: &'static str) -> HttpResponse {
    routes::ApiError::MethodNotAllowed {
        method: request.method().to_string(),
        path: request.path().to_owned(),
        allowed,
    }
    .error_response()
}

async fn not_found(request: HttpRequest) -> HttpResponse {
    routes::ApiError::NotFound(request.path().to_owned()).error_response()
}
