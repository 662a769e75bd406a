//! The stand-alone `/metrics` listener (plain HTTP/1.0, one response per connection) over
//! [`super::render`]. The admin HTTP API takes this over; until then `metrics.listen` uses it.

use std::time::Duration;

/// Serves `/metrics` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, logger: slog::Logger) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let logger = logger.clone();
        actix::spawn(async move {
            let mut buf = [0u8; 2048];
            let n = match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let req = String::from_utf8_lossy(&buf[..n]);
            let (status, body) = if req.starts_with("GET /metrics") {
                ("200 OK", super::render())
            } else {
                ("404 Not Found", "only /metrics is served\n".to_string())
            };
            let head = format!(
                "HTTP/1.0 {status}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
                super::CONTENT_TYPE,
                body.len()
            );
            if let Err(e) = stream.write_all(format!("{head}{body}").as_bytes()).await {
                slog::debug!(logger, "metrics write failed"; "error" => %e);
            }
        });
    }
}
