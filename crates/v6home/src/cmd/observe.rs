//! Observability shared by `gateway`, `ra` and `dhcp6`: Prometheus sources for the RA and
//! DHCPv6 daemons' counters (served by `v6h_gateway::metrics`), and status snapshot files
//! that a separate `… status [--json]` process reads.
//!
//! A daemon writes its snapshot as JSON once a second (to a temporary file, then renamed, so
//! a reader never sees half a file); the reader says "running" when the PID in it is alive
//! and the snapshot is younger than [`STALE_AFTER`] seconds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use v6h_gateway::metrics::{Family, HistogramFamily, HistogramSample, Kind, Source};

/// A snapshot older than this (seconds) means the daemon is gone or stuck.
pub const STALE_AFTER: u64 = 30;

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The RA daemon's counters as metrics.
pub struct RaMetrics(pub v6h_ra::daemon::Stats);

impl Source for RaMetrics {
    fn snapshot(&self) -> Vec<Family> {
        let mut ra_sent = Vec::new();
        let mut rs = Vec::new();
        let mut rs_limited = Vec::new();
        let mut ra_drops = Vec::new();
        let mut ra_received = Vec::new();
        let mut advertising = Vec::new();
        let mut send_failures = Vec::new();
        for (ifname, (state, c)) in self.0.get() {
            let i = ifname.as_str();
            ra_sent.push((
                labels(&[("interface", i), ("kind", "multicast")]),
                c.ra_sent_multicast as f64,
            ));
            ra_sent.push((
                labels(&[("interface", i), ("kind", "unicast")]),
                c.ra_sent_unicast as f64,
            ));
            ra_sent.push((
                labels(&[("interface", i), ("kind", "final")]),
                c.ra_sent_final as f64,
            ));
            rs.push((labels(&[("interface", i)]), c.rs_received as f64));
            rs_limited.push((labels(&[("interface", i)]), c.rs_rate_limited as f64));
            ra_received.push((labels(&[("interface", i)]), c.ra_received as f64));
            send_failures.push((labels(&[("interface", i)]), c.send_failures as f64));
            let running = state == v6h_ra::sched::State::Running;
            advertising.push((labels(&[("interface", i)]), f64::from(u8::from(running))));
            for (reason, n) in &c.drops {
                ra_drops.push((
                    labels(&[("interface", i), ("reason", reason.as_str())]),
                    *n as f64,
                ));
            }
        }
        vec![
            Family {
                name: "ra_sent",
                help: "Router advertisements sent.",
                kind: Kind::Counter,
                samples: ra_sent,
            },
            Family {
                name: "rs_received",
                help: "Valid router solicitations received.",
                kind: Kind::Counter,
                samples: rs,
            },
            Family {
                name: "rs_rate_limited",
                help: "RSs whose unicast reply the token bucket refused (one multicast RA answers).",
                kind: Kind::Counter,
                samples: rs_limited,
            },
            Family {
                name: "ra_drops",
                help: "ICMPv6 ND packets ignored by the RA daemon, by reason.",
                kind: Kind::Counter,
                samples: ra_drops,
            },
            Family {
                name: "ra_received",
                help: "Valid RAs received from other routers.",
                kind: Kind::Counter,
                samples: ra_received,
            },
            Family {
                name: "ra_send_failures",
                help: "RAs the kernel did not accept.",
                kind: Kind::Counter,
                samples: send_failures,
            },
            Family {
                name: "ra_advertising",
                help: "1 while the interface is advertising (link up, source address ready).",
                kind: Kind::Gauge,
                samples: advertising,
            },
        ]
    }
}

/// The DHCPv6 server's counters, leases, pools and journal as metrics.
pub struct Dhcp6Metrics(pub v6h_dhcp6::status::Stats);

impl Source for Dhcp6Metrics {
    fn snapshot(&self) -> Vec<Family> {
        let s = self.0.get();
        let mut received = Vec::new();
        let mut sent = Vec::new();
        let mut drops = Vec::new();
        for l in &s.links {
            let i = l.name.as_str();
            for (t, n) in &l.received {
                received.push((labels(&[("interface", i), ("type", t)]), *n as f64));
            }
            for (t, n) in &l.sent {
                sent.push((labels(&[("interface", i), ("type", t)]), *n as f64));
            }
            for (r, n) in &l.dropped {
                drops.push((labels(&[("interface", i), ("reason", r)]), *n as f64));
            }
            drops.push((
                labels(&[("interface", i), ("reason", "ia_limit")]),
                l.ia_limit as f64,
            ));
            drops.push((
                labels(&[("interface", i), ("reason", "relay_unknown_link")]),
                l.relay_unknown_link as f64,
            ));
        }
        let mut pool_size = Vec::new();
        let mut pool_used = Vec::new();
        for p in &s.pools {
            let l = labels(&[("link", &p.link), ("pool", &p.pool)]);
            pool_size.push((l.clone(), p.size as f64));
            pool_used.push((l, p.size.saturating_sub(p.free) as f64));
        }
        vec![
            Family {
                name: "dhcp6_received",
                help: "DHCPv6 messages received, by type.",
                kind: Kind::Counter,
                samples: received,
            },
            Family {
                name: "dhcp6_sent",
                help: "DHCPv6 messages sent, by type.",
                kind: Kind::Counter,
                samples: sent,
            },
            Family {
                name: "dhcp6_drops",
                help: "DHCPv6 datagrams dropped (and IAs refused by limits), by reason.",
                kind: Kind::Counter,
                samples: drops,
            },
            Family {
                name: "dhcp6_refused",
                help: "IAs refused: pool exhausted or client at its lease cap.",
                kind: Kind::Counter,
                samples: vec![
                    (
                        labels(&[("reason", "pool_exhausted")]),
                        s.pool_exhausted as f64,
                    ),
                    (labels(&[("reason", "client_limit")]), s.client_limit as f64),
                ],
            },
            Family {
                name: "dhcp6_leases",
                help: "Leases held now, by state.",
                kind: Kind::Gauge,
                samples: vec![
                    (labels(&[("state", "bound")]), s.leases_bound as f64),
                    (labels(&[("state", "declined")]), s.leases_declined as f64),
                ],
            },
            Family {
                name: "dhcp6_pool_size",
                help: "Addresses or prefixes in each pool.",
                kind: Kind::Gauge,
                samples: pool_size,
            },
            Family {
                name: "dhcp6_pool_used",
                help: "Addresses or prefixes of each pool leased or declined.",
                kind: Kind::Gauge,
                samples: pool_used,
            },
            Family {
                name: "dhcp6_reply_failures",
                help: "Replies not sent: the kernel refused them (send) or their leases could not be written (commit).",
                kind: Kind::Counter,
                samples: vec![
                    (labels(&[("cause", "send")]), s.send_failures as f64),
                    (labels(&[("cause", "commit")]), s.commit_failures as f64),
                ],
            },
        ]
    }

    fn histograms(&self) -> Vec<HistogramFamily> {
        let s = self.0.get();
        let samples = s
            .journal
            .iter()
            .map(|j| HistogramSample {
                labels: Vec::new(),
                buckets: j.cumulative_seconds(),
                sum: j.fsync_micros_total as f64 / 1e6,
                count: j.fsyncs,
            })
            .collect();
        vec![HistogramFamily {
            name: "dhcp6_journal_fsync_seconds",
            help: "Lease journal write + fdatasync time per group commit.",
            samples,
        }]
    }
}

/// One interface of `v6home ra status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RaInterfaceStatus {
    /// Interface name.
    pub name: String,
    /// Scheduler state (`Running`, `WaitingReady`, `Down`…).
    pub state: String,
    /// RAs sent to ff02::1.
    pub ra_sent_multicast: u64,
    /// RAs sent unicast.
    pub ra_sent_unicast: u64,
    /// Final RAs sent.
    pub ra_sent_final: u64,
    /// Valid RSs received.
    pub rs_received: u64,
    /// RSs whose unicast reply was rate-limited.
    pub rs_rate_limited: u64,
    /// Valid RAs from other routers.
    pub ra_received: u64,
    /// Ignored RS/RA by reason.
    pub drops: BTreeMap<String, u64>,
    /// Inconsistencies in other routers' RAs.
    pub inconsistencies: u64,
    /// Options left out for size.
    pub options_skipped: u64,
    /// Failed sends.
    pub send_failures: u64,
}

/// What `v6home ra` writes to its status file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RaStatus {
    /// Process ID.
    pub pid: u32,
    /// Configuration file.
    pub config: String,
    /// Unix time of the start.
    pub started_unix: u64,
    /// Unix time of the snapshot.
    pub updated_unix: u64,
    /// Per interface.
    pub interfaces: Vec<RaInterfaceStatus>,
}

/// The per-interface RA status from the daemon's shared counters.
pub fn ra_interfaces(stats: &v6h_ra::daemon::Stats) -> Vec<RaInterfaceStatus> {
    stats
        .get()
        .into_iter()
        .map(|(name, (state, c))| RaInterfaceStatus {
            name,
            state: format!("{state:?}"),
            ra_sent_multicast: c.ra_sent_multicast,
            ra_sent_unicast: c.ra_sent_unicast,
            ra_sent_final: c.ra_sent_final,
            rs_received: c.rs_received,
            rs_rate_limited: c.rs_rate_limited,
            ra_received: c.ra_received,
            drops: c
                .drops
                .iter()
                .map(|(r, n)| (r.as_str().to_string(), *n))
                .collect(),
            inconsistencies: c.inconsistencies,
            options_skipped: c.options_skipped,
            send_failures: c.send_failures,
        })
        .collect()
}

/// Writes a JSON snapshot atomically (temporary file, then rename).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// A status file rewritten every second by a background thread; removed when dropped.
pub struct StatusFile {
    path: PathBuf,
    stop: Arc<AtomicBool>,
}

impl StatusFile {
    /// Starts writing `snapshot()` to `path` once a second (`None`: nothing to write yet).
    /// The directory is created; a failure to write is logged once, and the daemon goes on
    /// without a status file.
    pub fn spawn<T, F>(path: PathBuf, snapshot: F) -> StatusFile
    where
        T: Serialize,
        F: Fn() -> Option<T> + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (path.clone(), Arc::clone(&stop));
        let spawned = std::thread::Builder::new()
            .name("status".into())
            .spawn(move || {
                if let Some(dir) = p.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let mut warned = false;
                while !s.load(Ordering::Relaxed) {
                    if let Some(Err(e)) = snapshot().map(|v| write_json(&p, &v))
                        && !warned
                    {
                        tracing::warn!(path = %p.display(), "cannot write the status file: {e}");
                        warned = true;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("status file thread: {e}");
        }
        StatusFile { path, stop }
    }
}

impl Drop for StatusFile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Only our own file: another instance's would carry its PID.
        let ours = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("pid").and_then(serde_json::Value::as_u64))
            == Some(u64::from(std::process::id()));
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A status file read back: the parsed snapshot, whether its daemon runs, and its age.
pub struct ReadStatus<T> {
    /// The snapshot.
    pub status: T,
    /// The PID lives and the snapshot is fresh.
    pub running: bool,
    /// Seconds since the snapshot was written.
    pub age: u64,
}

/// Reads a status file written by [`StatusFile`] (or the gateway); `what` names the daemon
/// in errors.
pub fn read_status<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
) -> anyhow::Result<ReadStatus<T>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {} (is {what} running?)", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let pid = value.get("pid").and_then(serde_json::Value::as_u64);
    let updated = value
        .get("updated_unix")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    let age = unix_now().saturating_sub(updated);
    let running =
        pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists()) && age < STALE_AFTER;
    let status =
        serde_json::from_value(value).with_context(|| format!("parsing {}", path.display()))?;
    Ok(ReadStatus {
        status,
        running,
        age,
    })
}

/// Prints a snapshot as JSON with `running` and `age_s` added.
pub fn print_json<T: Serialize>(r: &ReadStatus<T>) -> anyhow::Result<()> {
    let mut v = serde_json::to_value(&r.status)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("running".into(), r.running.into());
        o.insert("age_s".into(), r.age.into());
    }
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

#[cfg(test)]
/// The names of every metric family the gateway, `ra` and `dhcp6` can export (with the
/// `v6home_` prefix), read from a render of empty sources.
pub fn exported_metric_names(extra: Vec<Arc<dyn Source>>) -> Vec<String> {
    let mut m = v6h_gateway::metrics::Metrics::default();
    m.register(Arc::new(RaMetrics(v6h_ra::daemon::Stats::default())));
    m.register(Arc::new(Dhcp6Metrics(v6h_dhcp6::status::Stats::default())));
    for s in extra {
        m.register(s);
    }
    m.render()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_file_round_trips_and_a_dead_pid_is_not_running() {
        let dir = std::env::temp_dir().join(format!("v6h-observe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ra.status.json");
        let mut s = RaStatus {
            pid: std::process::id(),
            updated_unix: unix_now(),
            ..RaStatus::default()
        };
        write_json(&path, &s).unwrap();
        let r: ReadStatus<RaStatus> = read_status(&path, "v6home ra").unwrap();
        assert!(r.running);
        assert_eq!(r.status, s);
        // PID 0 has no /proc entry; an old snapshot is stale either way.
        s.pid = 0;
        s.updated_unix = 1;
        write_json(&path, &s).unwrap();
        let r: ReadStatus<RaStatus> = read_status(&path, "v6home ra").unwrap();
        assert!(!r.running);
        assert!(read_status::<RaStatus>(&dir.join("none"), "x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dhcp6_metrics_render_counters_pools_and_the_fsync_histogram() {
        let stats = v6h_dhcp6::status::Stats::default();
        let mut c = v6h_dhcp6::server::Counters::default();
        c.received[1] = 2;
        stats.set(v6h_dhcp6::status::Snapshot {
            links: vec![v6h_dhcp6::status::LinkStatus::new(2, "eth0", &c)],
            leases_bound: 5,
            pools: vec![v6h_dhcp6::status::PoolStatus {
                link: "eth0".into(),
                pool: "a-b".into(),
                size: 10,
                free: 4,
            }],
            journal: Some(v6h_dhcp6::status::JournalStatus {
                fsyncs: 3,
                fsync_micros_total: 3000,
                fsync_bucket_micros: vec![1000],
                fsync_bucket_counts: vec![3, 0],
                ..Default::default()
            }),
            ..Default::default()
        });
        let mut m = v6h_gateway::metrics::Metrics::default();
        m.register(Arc::new(Dhcp6Metrics(stats)));
        let text = m.render();
        for needle in [
            "v6home_dhcp6_received_total{interface=\"eth0\",type=\"solicit\"} 2",
            "v6home_dhcp6_leases{state=\"bound\"} 5",
            "v6home_dhcp6_pool_used{link=\"eth0\",pool=\"a-b\"} 6",
            "v6home_dhcp6_drops_total{interface=\"eth0\",reason=\"malformed\"} 0",
            "v6home_dhcp6_journal_fsync_seconds_bucket{le=\"0.001\"} 3",
            "v6home_dhcp6_journal_fsync_seconds_count 3",
        ] {
            assert!(text.contains(needle), "{needle} missing:\n{text}");
        }
    }

    /// Every metric the Grafana dashboard queries is one v6home exports.
    #[test]
    fn the_grafana_dashboard_uses_only_exported_metrics() {
        let dashboard = include_str!("../../../../dist/grafana-v6home.json");
        let json: serde_json::Value = serde_json::from_str(dashboard).unwrap();
        let mut exprs = Vec::new();
        collect_exprs(&json, &mut exprs);
        assert!(exprs.len() >= 8, "few queries: {exprs:?}");
        let mut names = exported_metric_names(vec![super::super::gateway::tunnel_metrics_source()]);
        names.sort();
        let mut used = 0;
        for e in &exprs {
            for word in e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                let Some(rest) = word.strip_prefix("v6home_") else {
                    continue;
                };
                let family = ["_total", "_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| rest.strip_suffix(s))
                    .unwrap_or(rest);
                let family = format!("v6home_{family}");
                assert!(
                    names.contains(&family),
                    "{word} in `{e}` is not exported; exported: {names:?}"
                );
                used += 1;
            }
        }
        assert!(
            used >= exprs.len(),
            "queries without a v6home metric: {exprs:?}"
        );
    }

    fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(o) => {
                for (k, v) in o {
                    if k == "expr"
                        && let Some(s) = v.as_str()
                    {
                        out.push(s.to_string());
                    } else {
                        collect_exprs(v, out);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
            _ => {}
        }
    }
}
