//! Prometheus metrics: every component reports a snapshot of its counters at scrape time,
//! and a small HTTP endpoint serves them as text.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

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

/// Something that can report its metrics.
pub trait Source: Send + Sync + 'static {
    /// The current values.
    fn snapshot(&self) -> Vec<Family>;
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

/// Serves `GET /metrics` on `listen` from a background thread.
pub fn serve(listen: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(listen)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let mut reader = BufReader::new(&conn);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let (status, body) = if line.starts_with("GET /metrics") {
                    ("200 OK", metrics.render())
                } else {
                    ("404 Not Found", "try /metrics\n".to_string())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

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
}
