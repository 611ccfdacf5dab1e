//! Local HTTP servers standing in for a region's endpoints.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

pub const UP: u8 = 0;
pub const DOWN: u8 = 1;
/// Each path alternates failure and success: never two failures in a row.
pub const FLAPPING: u8 = 2;

/// An HTTP server whose every path answers per `mode`; its base URL.
pub async fn primary_endpoints(mode: Arc<AtomicU8>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let counts = Arc::new(std::sync::Mutex::new(BTreeMap::<String, u64>::new()));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (mode, counts) = (Arc::clone(&mode), Arc::clone(&counts));
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let healthy = match mode.load(Ordering::SeqCst) {
                    UP => true,
                    DOWN => false,
                    _ => {
                        let mut counts = counts.lock().expect("counts");
                        let n = counts.entry(path).or_default();
                        *n += 1;
                        *n % 2 == 0
                    }
                };
                let status = if healthy {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                let _ = stream
                    .write_all(
                        format!("HTTP/1.1 {status}\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
                            .as_bytes(),
                    )
                    .await;
            });
        }
    });
    format!("http://{addr}")
}
