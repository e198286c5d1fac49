//! The registry store on a real PostgreSQL: a throwaway cluster started as the `postgres` user
//! on a unix socket in a temporary directory (no TCP port), stopped and removed afterwards,
//! also when the test fails. Skipped without root or without Debian's `postgresql` package
//! (`/usr/lib/postgresql/<version>/bin`).

use std::path::{Path, PathBuf};
use std::process::Command;

use v6h_tunnel::registry::{AdminState, NewTunnel, parse_registry};
use v6h_tunnel::store::{Backend, Store, StoreError};

/// A PostgreSQL cluster in a temporary directory; stopped and removed on drop.
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
}

impl Cluster {
    fn start() -> Option<Cluster> {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipping: PostgreSQL test needs root (it runs the cluster as postgres)");
            return None;
        }
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|b| b.join("initdb").exists())?;
        let dir = std::env::temp_dir().join(format!(
            "v6h-pg-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let c = Cluster { dir, bin };
        c.sh(&["chown", "postgres:postgres", c.path()]);
        c.sh(&["chmod", "700", c.path()]);
        let data = c.dir.join("data");
        c.pg(&[
            "initdb",
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "v6home",
        ]);
        let opts = format!("-k {} -c listen_addresses=''", c.path());
        let log = c.dir.join("log");
        c.pg(&[
            "pg_ctl",
            "-D",
            data.to_str().unwrap(),
            "-o",
            &opts,
            "-l",
            log.to_str().unwrap(),
            "-w",
            "start",
        ]);
        Some(c)
    }

    fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    fn url(&self) -> String {
        format!("postgres://v6home@/postgres?host={}", self.path())
    }

    fn sh(&self, args: &[&str]) {
        let st = Command::new(args[0]).args(&args[1..]).status().unwrap();
        assert!(st.success(), "{args:?}");
    }

    fn pg(&self, args: &[&str]) {
        let prog = self.bin.join(args[0]);
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&prog)
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn req(subnets: &[&str]) -> NewTunnel {
    NewTunnel {
        owner: "lab".into(),
        subnets: subnets.iter().map(|s| s.parse().unwrap()).collect(),
        from: "2001:db8:2ff::/48".parse().unwrap(),
        mtu: 1280,
        heartbeat: 60,
        password: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_on_postgresql() {
    let Some(pg) = Cluster::start() else {
        return;
    };
    let s = Store::open(&pg.url()).await.unwrap();
    assert_eq!(s.backend(), Backend::Postgres);
    // The lab registry, imported with its ids (twice: idempotent).
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/lab/registry.toml");
    let data = parse_registry(&std::fs::read_to_string(&p).unwrap(), &p).unwrap();
    s.import("pop01", &data).await.unwrap();
    let again = s.import("pop01", &data).await.unwrap();
    assert_eq!(again.unchanged, 2);
    assert_eq!(s.load_pop("pop01").await.unwrap().1.tunnels, data.tunnels);

    // The identity column moved past the imported T1; two writers never collide.
    let b = Store::open(&pg.url()).await.unwrap();
    let run = |s: Store| async move {
        let mut v = Vec::new();
        for _ in 0..8 {
            v.push(s.add_tunnel("pop01", &req(&[])).await.unwrap().id);
        }
        v
    };
    let (x, y) = tokio::join!(tokio::spawn(run(s.clone())), tokio::spawn(run(b.clone())));
    let mut ids: Vec<u32> = x.unwrap().into_iter().chain(y.unwrap()).collect();
    ids.sort();
    assert_eq!(ids, (2..=17).collect::<Vec<u32>>());

    // Changes bump the counter; a refused one changes nothing.
    let v = s.version().await.unwrap();
    s.set_admin(2, AdminState::Disabled).await.unwrap();
    assert!(s.version().await.unwrap() > v);
    let v = s.version().await.unwrap();
    let e = s
        .add_tunnel("pop01", &req(&["2001:db8:1234:1::/64"]))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("overlaps"), "{e}");
    assert_eq!(s.version().await.unwrap(), v);
    s.del_tunnel(3).await.unwrap();
    assert!(matches!(s.tunnel(3).await, Err(StoreError::NotFound(_))));
    let users = s.users().await.unwrap();
    assert_eq!((users[0].name.as_str(), users[0].tunnels), ("lab", 16));
    s.close().await;
    b.close().await;
}
