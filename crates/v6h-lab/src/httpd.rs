//! A tiny HTTP/1.0 server for the lab's web node, with an access log.
//!
//! It answers every `GET` with a small page that names the client's address, and appends one
//! line per request to the access log: `<peer-ip> <peer-port> "<request line>" <status>`. Tests
//! read the log to see which source address a client used (NAT, privacy addresses).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// At most this many connections are served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 64;
/// At most this much of a request (request line and headers) is read; the rest is ignored.
const MAX_HEAD: u64 = 128 * 1024;

/// Serves HTTP on `listen` forever, logging each request to `log` (appended).
pub fn serve(listen: SocketAddr, log: &Path) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    let log = Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?,
    ));
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let log = Arc::clone(&log);
        let active = Arc::clone(&active);
        std::thread::spawn(move || {
            let _ = handle(stream, &log);
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}

fn handle(stream: TcpStream, log: &Mutex<std::fs::File>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let peer = stream.peer_addr()?;
    let mut reader = BufReader::new(stream.try_clone()?).take(MAX_HEAD);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let request_line = request_line.trim_end().to_string();
    // Drain headers up to the blank line.
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim_end().is_empty() {
            break;
        }
    }
    let (status, body) = response(&request_line, peer);
    let mut out = stream;
    write!(
        out,
        "HTTP/1.0 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()?;
    if let Ok(mut f) = log.lock() {
        let code = status.split(' ').next().unwrap_or("500");
        let _ = writeln!(
            f,
            "{} {} \"{}\" {code}",
            peer.ip(),
            peer.port(),
            request_line.escape_default()
        );
    }
    Ok(())
}

/// The status line and body for a request line.
fn response(request_line: &str, peer: SocketAddr) -> (&'static str, String) {
    let mut parts = request_line.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET" | "HEAD"), Some(_path)) => (
            "200 OK",
            format!(
                "v6home lab: IPv6 works!\nYou are {}\n",
                peer.ip().to_canonical()
            ),
        ),
        _ => ("400 Bad Request", "bad request\n".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_names_the_client_and_is_logged() {
        let dir = std::env::temp_dir().join(format!("v6h-httpd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("access.log");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let log2 = log.clone();
        std::thread::spawn(move || serve(addr, &log2));
        let mut tries = 0;
        let mut conn = loop {
            match TcpStream::connect(addr) {
                Ok(c) => break c,
                Err(_) if tries < 50 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("connect: {e}"),
            }
        };
        conn.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut reply = String::new();
        conn.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.0 200 OK"), "{reply}");
        assert!(reply.contains("You are 127.0.0.1"), "{reply}");
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(logged.starts_with("127.0.0.1 "), "{logged}");
        assert!(logged.contains("\"GET / HTTP/1.0\" 200"), "{logged}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn junk_gets_400() {
        let peer: SocketAddr = "[2001:db8::1]:1".parse().unwrap();
        assert_eq!(response("BREW /pot", peer).0, "400 Bad Request");
        assert_eq!(response("", peer).0, "400 Bad Request");
        assert_eq!(response("GET / HTTP/1.1", peer).0, "200 OK");
    }
}
