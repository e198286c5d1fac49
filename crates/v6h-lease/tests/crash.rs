//! Crash test: a child process runs the engine and the journal like a server (batches of
//! Requests, one group commit, then "replies" on stdout) and is killed with SIGKILL mid-run.
//! Every lease the child acknowledged must be in the journal afterwards, no resource may be
//! assigned twice, and every acknowledged client must be able to Renew it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use v6h_lease::*;

const CHILD_ENV: &str = "V6H_LEASE_CRASH_CHILD";

fn config() -> EngineConfig {
    let mut l = LinkConfig::new("lan0");
    l.na_pools.push(NaPoolConfig::from_prefix(
        "2001:db8:1234::/64".parse().unwrap(),
        vec![],
    ));
    l.pd_pools.push(PdPoolConfig {
        prefix: "2001:db8:1234::/48".parse().unwrap(),
        delegated_len: 60,
        exclude: vec!["2001:db8:1234::/64".parse().unwrap()],
    });
    EngineConfig::new(vec![l])
}

/// Client number `duid` (big-endian) asks for an address when even, a prefix when odd.
fn client_ia(duid: &[u8; 4]) -> IaRequest<'_> {
    let kind = if u32::from_be_bytes(*duid).is_multiple_of(2) {
        IaKind::Na
    } else {
        IaKind::Pd
    };
    IaRequest {
        link: LinkId(0),
        duid,
        kind,
        iaid: 1,
        leases: &[],
    }
}

/// The "server" half; not a test on its own: the parent test re-executes this binary to run it.
#[test]
#[ignore = "helper process of kill_9_never_loses_an_acknowledged_lease"]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = JournalStore::open(&path).unwrap();
    let mut e = Engine::new(config()).unwrap();
    e.restore(1_000, store.load());
    let out = std::io::stdout();
    let mut client = 0u32;
    loop {
        let mut replies = Vec::new();
        for _ in 0..32 {
            let d = client.to_be_bytes();
            let r = e.request(1_000, &client_ia(&d));
            replies.push(format!("{client} {}\n", r.leases[0].resource));
            client += 1;
        }
        store.submit(e.take_changes()).wait().unwrap();
        // Only now may the Replies go out.
        let mut o = out.lock();
        for r in replies {
            o.write_all(r.as_bytes()).unwrap();
        }
        o.flush().unwrap();
    }
}

#[test]
fn kill_9_never_loses_an_acknowledged_lease() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leases.journal");
    let mut acked: HashMap<u32, String> = HashMap::new();
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut v = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some((c, r)) = line.split_once(' ')
                    && let Ok(c) = c.parse::<u32>()
                {
                    v.push((c, r.to_string()));
                }
            }
            v
        });
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(700 + 300 * round) {
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for (c, r) in reader.join().unwrap() {
            // A client number is re-used after restart only if it was never acknowledged
            // (the child restarts numbering at 0 and re-requests the same IAs).
            if let Some(old) = acked.get(&c) {
                assert_eq!(old, &r, "client {c} got a different lease after restart");
            }
            acked.insert(c, r);
        }
    }
    assert!(
        acked.len() > 100,
        "child acknowledged only {} leases",
        acked.len()
    );
    let store = JournalStore::open(&path).unwrap();
    let recs = store.load();
    let mut owner: HashMap<String, Vec<u8>> = HashMap::new();
    for r in &recs {
        assert!(
            owner
                .insert(r.resource.to_string(), r.duid.clone())
                .is_none()
        );
    }
    for (c, res) in &acked {
        assert_eq!(
            owner.get(res).map(Vec::as_slice),
            Some(&c.to_be_bytes()[..]),
            "acknowledged lease {res} of client {c} missing"
        );
    }
    let mut e = Engine::new(config()).unwrap();
    e.restore(1_000, recs);
    for (c, res) in &acked {
        let d = c.to_be_bytes();
        let r = e.renew(1_500, &client_ia(&d));
        assert_eq!(r.status, Status::Success);
        assert_eq!(r.leases[0].resource.to_string(), *res);
    }
    e.check_invariants().unwrap();
    eprintln!("{} acknowledged leases survived 3 kill -9s", acked.len());
}
