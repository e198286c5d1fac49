//! Prometheus metrics: every component reports a snapshot of its counters at scrape time,
//! and a small HTTP endpoint serves them as text.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// Whether a family only goes up, or goes up and down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic count.
    Counter,
    /// Current value.
    Gauge,
}

/// One metric family in a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Name without the `v6home_` prefix (e.g. `tunnel_packets`).
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: Kind,
    /// Samples: label pairs and a value.
    pub samples: Vec<(Vec<(String, String)>, f64)>,
}

/// A histogram's state: cumulative buckets, sum and count.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistogramSample {
    /// Label pairs.
    pub labels: Vec<(String, String)>,
    /// `(upper bound, observations ≤ bound)`, ascending; `+Inf` is implied by `count`.
    pub buckets: Vec<(f64, u64)>,
    /// Sum of all observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

/// One histogram family in a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramFamily {
    /// Name without the `v6home_` prefix (e.g. `dhcp6_journal_fsync_seconds`).
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// The histograms, one per label set.
    pub samples: Vec<HistogramSample>,
}

/// Something that can report its metrics.
pub trait Source: Send + Sync + 'static {
    /// The current values.
    fn snapshot(&self) -> Vec<Family>;
    /// The current histograms (none by default).
    fn histograms(&self) -> Vec<HistogramFamily> {
        Vec::new()
    }
}

struct SourceCollector(Arc<dyn Source>);

impl std::fmt::Debug for SourceCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SourceCollector")
    }
}

impl prometheus_client::collector::Collector for SourceCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in self.0.snapshot() {
            let kind = match family.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
            };
            let mut metric = encoder.encode_descriptor(family.name, family.help, None, kind)?;
            for (labels, value) in &family.samples {
                let sample = metric.encode_family(labels)?;
                match family.kind {
                    // Counters are integers on the wire; values are non-negative by contract.
                    Kind::Counter => ConstCounter::new(*value as u64).encode(sample)?,
                    Kind::Gauge => ConstGauge::new(*value).encode(sample)?,
                }
            }
        }
        for family in self.0.histograms() {
            let mut metric =
                encoder.encode_descriptor(family.name, family.help, None, MetricType::Histogram)?;
            for h in &family.samples {
                let mut sample = metric.encode_family(&h.labels)?;
                // The encoder takes per-bucket counts and accumulates them itself; the last
                // bucket given is written as `+Inf`.
                let mut buckets = Vec::with_capacity(h.buckets.len() + 1);
                let mut below = 0;
                for (le, cumulative) in &h.buckets {
                    buckets.push((*le, cumulative.saturating_sub(below)));
                    below = below.max(*cumulative);
                }
                buckets.push((f64::INFINITY, h.count.saturating_sub(below)));
                sample.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    h.sum, h.count, &buckets, None,
                )?;
            }
        }
        Ok(())
    }
}

/// The registry of all sources.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            registry: Registry::with_prefix("v6home"),
        }
    }
}

impl Metrics {
    /// Adds a source.
    pub fn register(&mut self, source: Arc<dyn Source>) {
        self.registry
            .register_collector(Box::new(SourceCollector(source)));
    }

    /// The exposition text of every source.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; a collector error leaves a partial scrape.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Longest request head (request line and headers) the endpoint reads; a longer one is
/// answered `400` without reading on.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// How long one client may take, in total, to send its request. The endpoint serves one
/// client at a time, so this also bounds how long a slow or silent client can hold it up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves `GET /metrics` on `listen` from a background thread.
pub fn serve(listen: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(listen)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = conn.set_write_timeout(Some(REQUEST_TIMEOUT));
                let (status, body) = match read_request_line(&conn) {
                    Ok(Some(line)) if is_metrics_request(&line) => {
                        ("200 OK", metrics.render())
                    }
                    Ok(Some(_)) => ("404 Not Found", "try /metrics\n".to_string()),
                    Ok(None) => ("400 Bad Request", "request line too long\n".to_string()),
                    Err(_) => continue,
                };
                let mut conn = &conn;
                let _ = write!(
                    conn,
                    "HTTP/1.0 {status}\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        })?;
    Ok(bound)
}

/// `GET /metrics` (optionally with a query), not some other path that starts the same.
fn is_metrics_request(line: &[u8]) -> bool {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(b"GET"), Some(target)) = (parts.next(), parts.next()) else {
        return false;
    };
    target == b"/metrics" || target.starts_with(b"/metrics?")
}

/// Reads the request head within [`REQUEST_TIMEOUT`] in total, keeping at most
/// [`MAX_REQUEST_HEAD`] bytes, and returns its first line (`None`: the head is too long). The
/// headers are read too, so closing the connection does not reset it under the reply; a client
/// that sends only a request line is answered when the time is up or it closes.
fn read_request_line(mut conn: &TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let line_end = head.iter().position(|&b| b == b'\n');
        let head_end =
            head.windows(2).any(|w| w == b"\n\n") || head.windows(3).any(|w| w == b"\n\r\n");
        if head_end {
            break;
        }
        if head.len() > MAX_REQUEST_HEAD {
            return Ok(None);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            if line_end.is_some() {
                break;
            }
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        conn.set_read_timeout(Some(left))?;
        // Never read more than one byte past the cap, so nothing is left unread when refusing.
        let room = (MAX_REQUEST_HEAD + 1 - head.len()).min(buf.len());
        let n = match conn.read(&mut buf[..room]) {
            Ok(n) => n,
            Err(e)
                if line_end.is_some()
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
            {
                break;
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    Ok(Some(line.strip_suffix(b"\r").unwrap_or(line).to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;
    impl Source for Fake {
        fn snapshot(&self) -> Vec<Family> {
            vec![
                Family {
                    name: "tunnel_packets",
                    help: "Packets through the tunnel.",
                    kind: Kind::Counter,
                    samples: vec![
                        (vec![("direction".into(), "in".into())], 5.0),
                        (vec![("direction".into(), "out".into())], 7.0),
                    ],
                },
                Family {
                    name: "tunnel_up",
                    help: "1 when the tunnel is up.",
                    kind: Kind::Gauge,
                    samples: vec![(vec![], 1.0)],
                },
            ]
        }
    }

    #[test]
    fn snapshots_render_as_openmetrics_and_are_served() {
        let mut m = Metrics::default();
        m.register(Arc::new(Fake));
        let text = m.render();
        assert!(
            text.contains("# TYPE v6home_tunnel_packets counter"),
            "{text}"
        );
        assert!(
            text.contains("v6home_tunnel_packets_total{direction=\"in\"} 5"),
            "{text}"
        );
        assert!(text.contains("v6home_tunnel_up 1"), "{text}");
        let addr = serve("127.0.0.1:0".parse().unwrap(), Arc::new(m)).unwrap();
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.0 200 OK"));
        assert!(
            reply.contains("v6home_tunnel_packets_total{direction=\"out\"} 7"),
            "{reply}"
        );
    }

    fn scrape(addr: SocketAddr, request: &[u8]) -> String {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(request).unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        reply
    }

    struct Hist;
    impl Source for Hist {
        fn snapshot(&self) -> Vec<Family> {
            Vec::new()
        }
        fn histograms(&self) -> Vec<HistogramFamily> {
            vec![HistogramFamily {
                name: "dhcp6_journal_fsync_seconds",
                help: "Lease journal write + fdatasync time.",
                samples: vec![HistogramSample {
                    labels: vec![],
                    buckets: vec![(0.001, 2), (0.01, 3)],
                    sum: 0.012,
                    count: 4,
                }],
            }]
        }
    }

    #[test]
    fn histograms_render_with_cumulative_buckets() {
        let mut m = Metrics::default();
        m.register(Arc::new(Hist));
        let text = m.render();
        assert!(
            text.contains("# TYPE v6home_dhcp6_journal_fsync_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("v6home_dhcp6_journal_fsync_seconds_bucket{le=\"0.001\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("v6home_dhcp6_journal_fsync_seconds_bucket{le=\"+Inf\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("v6home_dhcp6_journal_fsync_seconds_count 4"),
            "{text}"
        );
    }

    #[test]
    fn a_request_line_without_end_is_refused_not_buffered() {
        let addr = serve("127.0.0.1:0".parse().unwrap(), Arc::default()).unwrap();
        // Before the fix the whole stream was buffered until a newline: unbounded memory.
        let long = vec![b'A'; MAX_REQUEST_HEAD + 1];
        let reply = scrape(addr, &long);
        assert!(reply.starts_with("HTTP/1.0 400 Bad Request"), "{reply}");
        let mut at_cap = b"GET /metrics HTTP/1.0\r\nX-Pad: ".to_vec();
        at_cap.resize(MAX_REQUEST_HEAD - 4, b'x');
        at_cap.extend_from_slice(b"\r\n\r\n");
        assert!(scrape(addr, &at_cap).starts_with("HTTP/1.0 200 OK"));
        assert!(scrape(addr, b"GET / HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 404"));
        assert!(scrape(addr, b"GET /metricsx HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 404"));
        // Headers after the request line are read, not left to reset the connection.
        let mut with_headers = b"GET /metrics HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..40 {
            with_headers
                .extend_from_slice(format!("X-Header-{i}: {}\r\n", "v".repeat(40)).as_bytes());
        }
        with_headers.extend_from_slice(b"\r\n");
        assert!(scrape(addr, &with_headers).starts_with("HTTP/1.0 200 OK"));
    }

    #[test]
    fn a_trickling_client_holds_the_endpoint_for_at_most_the_timeout() {
        let addr = serve("127.0.0.1:0".parse().unwrap(), Arc::default()).unwrap();
        let started = Instant::now();
        let mut slow = std::net::TcpStream::connect(addr).unwrap();
        // One byte every 300 ms for 6 s: each read is within a per-read timeout, so before the
        // fix this client held the single-threaded endpoint for the whole 6 s.
        let trickle = std::thread::spawn(move || {
            for _ in 0..20 {
                if slow.write_all(b"G").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        std::thread::sleep(Duration::from_millis(100));
        let reply = scrape(addr, b"GET /metrics HTTP/1.0\r\n\r\n");
        assert!(reply.starts_with("HTTP/1.0 200 OK"), "{reply}");
        let took = started.elapsed();
        assert!(
            took < REQUEST_TIMEOUT + Duration::from_secs(2),
            "took {took:?}"
        );
        trickle.join().unwrap();
    }
}
