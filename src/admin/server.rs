//! The admin HTTP listener: an actix-web server on `admin.listen` with one worker thread of its
//! own, so no request (a slow fan-out, a large status) ever runs on a group's, the ticker's or
//! the Kafka listener's thread. [`AdminServer`] stops it when the node stops.

use actix_web::{web, App, HttpServer};

use super::routes;
use super::status::AdminState;

/// A running admin server.
pub struct AdminServer {
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AdminServer {
    /// Serves the admin API on `listener` (already bound) from a thread of its own.
    pub fn start(listener: std::net::TcpListener, state: AdminState) -> std::io::Result<AdminServer> {
        let data = web::Data::new(state);
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new().name("admin-http".into()).spawn(move || {
            let system = actix::System::new();
            let logger = data.logger.clone();
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(data.clone())
                    .configure(routes::configure)
                    .default_service(web::to(routes::not_found))
            })
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(listener);
            match server {
                Ok(s) => system.block_on(async move {
                    let server = s.run();
                    let _ = tx.send(Ok(server.handle()));
                    if let Err(e) = server.await {
                        slog::crit!(logger, "admin server failed"; "error" => %e);
                    }
                }),
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })?;
        let handle = rx.recv().map_err(|_| std::io::Error::other("admin server thread ended"))??;
        Ok(AdminServer { handle, thread: Some(thread) })
    }
}

impl Drop for AdminServer {
    /// Stops the listener and the worker, and waits for the thread.
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
