//! Registry-in-a-database tests on SQLite in a temporary directory.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use super::*;
use crate::registry::parse_registry;

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let d = std::env::temp_dir().join(format!(
            "v6h-store-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn url(&self) -> String {
        sqlite_url(&self.0.join("state").join("registry.db"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn lab_data() -> RegistryData {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/lab/registry.toml");
    parse_registry(&std::fs::read_to_string(&p).unwrap(), &p).unwrap()
}

fn req(owner: &str, subnets: &[&str]) -> NewTunnel {
    NewTunnel {
        owner: owner.into(),
        subnets: subnets.iter().map(|s| s.parse().unwrap()).collect(),
        from: "2001:db8:2ff::/48".parse().unwrap(),
        mtu: 1280,
        heartbeat: 60,
        password: None,
    }
}

#[tokio::test]
async fn sqlite_file_is_created_private() {
    let d = TempDir::new();
    let s = Store::open(&d.url()).await.unwrap();
    let db = d.0.join("state/registry.db");
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "database file mode {mode:o}");
    let dmode = std::fs::metadata(d.0.join("state"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dmode, 0o700, "state dir mode {dmode:o}");
    s.add_user("alice", &md5_hex("pw")).await.unwrap();
    s.close().await;
    // A file others could read is narrowed on the next open.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let s = Store::open(&d.url()).await.unwrap();
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(s.users().await.unwrap().len(), 1, "data kept across opens");
}

#[tokio::test]
async fn root_created_file_goes_to_the_state_dir_owner() {
    use std::os::unix::fs::MetadataExt as _;
    if !nix::unistd::Uid::effective().is_root() {
        return;
    }
    let d = TempDir::new();
    let state = d.0.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    Store::open(&d.url()).await.unwrap();
    let m = std::fs::metadata(state.join("registry.db")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (65534, 65534, 0o600));
}

#[tokio::test]
async fn users_and_tunnels_add_list_show_disable_enable_del() {
    let d = TempDir::new();
    let s = Store::open(&d.url()).await.unwrap();
    let v0 = s.version().await.unwrap();
    s.add_user("alice", &md5_hex("secret")).await.unwrap();
    assert!(s.version().await.unwrap() > v0);
    let t1 = s
        .add_tunnel("pop01", &req("alice", &["2001:db8:1234::/48"]))
        .await
        .unwrap();
    let t2 = s.add_tunnel("pop01", &req("alice", &[])).await.unwrap();
    assert_eq!(
        (t1.id, t1.prefix.to_string().as_str()),
        (1, "2001:db8:2ff:1::/64")
    );
    assert_eq!(
        (t2.id, t2.prefix.to_string().as_str()),
        (2, "2001:db8:2ff:2::/64")
    );
    assert_eq!(t1.password.len(), 32);
    let users = s.users().await.unwrap();
    assert_eq!(
        users,
        vec![UserInfo {
            name: "alice".into(),
            tunnels: 2
        }]
    );
    let shown = s.tunnel(1).await.unwrap();
    assert_eq!((shown.pop.as_str(), &shown.tunnel), ("pop01", &t1));

    let v = s.version().await.unwrap();
    let off = s.set_admin(1, AdminState::Disabled).await.unwrap();
    assert_eq!(off.admin, AdminState::Disabled);
    assert!(s.version().await.unwrap() > v);
    let (_, data) = s.load_pop("pop01").await.unwrap();
    assert_eq!(data.tunnels[0].admin, AdminState::Disabled);
    s.set_admin(1, AdminState::Enabled).await.unwrap();
    assert_eq!(s.tunnel(1).await.unwrap().tunnel.admin, AdminState::Enabled);

    // Tunnels of another PoP are not served by this one.
    s.add_tunnel("pop02", &req("alice", &[])).await.unwrap();
    assert_eq!(s.load_pop("pop01").await.unwrap().1.tunnels.len(), 2);
    assert_eq!(s.load_pop("pop02").await.unwrap().1.tunnels.len(), 1);

    s.set_password("alice", &md5_hex("new")).await.unwrap();
    let (all, _) = s.load_all().await.unwrap();
    assert_eq!(all.user("alice").unwrap().password_md5, md5_hex("new"));

    let gone = s.del_tunnel(2).await.unwrap();
    assert_eq!(gone.id, 2);
    assert!(matches!(s.tunnel(2).await, Err(StoreError::NotFound(_))));
    assert!(matches!(
        s.del_tunnel(2).await,
        Err(StoreError::NotFound(_))
    ));
    // Ids are never reused; the freed /64 is.
    let t4 = s.add_tunnel("pop01", &req("alice", &[])).await.unwrap();
    assert_eq!(
        (t4.id, t4.prefix.to_string().as_str()),
        (4, "2001:db8:2ff:2::/64")
    );
}

#[tokio::test]
async fn invalid_changes_are_refused_and_change_nothing() {
    let d = TempDir::new();
    let s = Store::open(&d.url()).await.unwrap();
    s.add_user("alice", &md5_hex("pw")).await.unwrap();
    s.add_tunnel("pop01", &req("alice", &["2001:db8:1234::/48"]))
        .await
        .unwrap();
    let v = s.version().await.unwrap();
    let before = s.load_all().await.unwrap();

    let e = s
        .add_tunnel("pop01", &req("alice", &["2001:db8:1234:5::/64"]))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("overlaps"), "{e}");
    let e = s.add_tunnel("pop01", &req("bob", &[])).await.unwrap_err();
    assert!(e.to_string().contains("unknown user \"bob\""), "{e}");
    let e = s.del_user("alice").await.unwrap_err();
    assert!(e.to_string().contains("owns T1"), "{e}");
    let e = s.add_user("alice", &md5_hex("x")).await.unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    let e = s.add_user("has space", &md5_hex("x")).await.unwrap_err();
    assert!(e.to_string().contains("whitespace"), "{e}");
    let e = s.set_password("nobody", &md5_hex("x")).await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e}");
    let e = s.add_user("carol", "not-a-hash").await.unwrap_err();
    assert!(e.to_string().contains("32 hex"), "{e}");

    assert_eq!(s.version().await.unwrap(), v, "refused changes roll back");
    assert_eq!(s.load_all().await.unwrap(), before);
}

#[tokio::test]
async fn two_concurrent_writers_get_distinct_ids_and_prefixes() {
    let d = TempDir::new();
    let a = Store::open(&d.url()).await.unwrap();
    let b = Store::open(&d.url()).await.unwrap();
    a.add_user("alice", &md5_hex("pw")).await.unwrap();
    let n = 12;
    let run = |s: Store, pop: &'static str| async move {
        let mut ids = Vec::new();
        for _ in 0..n {
            ids.push(s.add_tunnel(pop, &req("alice", &[])).await.unwrap());
        }
        ids
    };
    let (x, y) = tokio::join!(
        tokio::spawn(run(a.clone(), "pop01")),
        tokio::spawn(run(b.clone(), "pop02"))
    );
    let mut all: Vec<Tunnel> = x.unwrap().into_iter().chain(y.unwrap()).collect();
    all.sort_by_key(|t| t.id);
    let ids: Vec<u32> = all.iter().map(|t| t.id).collect();
    assert_eq!(ids, (1..=2 * n).collect::<Vec<u32>>());
    let prefixes: std::collections::HashSet<_> = all.iter().map(|t| t.prefix).collect();
    assert_eq!(prefixes.len(), all.len());
    let (data, _) = a.load_all().await.unwrap();
    assert_eq!(data.tunnels.len(), all.len());
}

#[tokio::test]
async fn import_round_trips_and_is_idempotent() {
    let d = TempDir::new();
    let s = Store::open(&d.url()).await.unwrap();
    let data = lab_data();
    let r = s.import("pop01", &data).await.unwrap();
    assert_eq!(
        (r.users_added, r.tunnels_added),
        (data.users.len(), data.tunnels.len())
    );
    let r2 = s.import("pop01", &data).await.unwrap();
    assert_eq!(
        r2,
        ImportReport {
            unchanged: data.users.len() + data.tunnels.len(),
            ..ImportReport::default()
        }
    );
    let (_, back) = s.load_pop("pop01").await.unwrap();
    assert_eq!(back.tunnels, data.tunnels);
    assert_eq!(back.users[0].password_md5, data.users[0].password_md5);
    assert_eq!(
        back.users[0].password_plain, None,
        "no plain text is stored"
    );
    // The id sequence moved past the imported ids.
    let next = s.add_tunnel("pop01", &req("lab", &[])).await.unwrap();
    assert!(next.id > data.tunnels.iter().map(|t| t.id).max().unwrap());
    // An import that would break the rules writes nothing.
    let mut bad = data.clone();
    bad.tunnels[0].id = 99;
    let e = s.import("pop01", &bad).await.unwrap_err();
    assert!(e.to_string().contains("overlaps"), "{e}");
    assert!(matches!(s.tunnel(99).await, Err(StoreError::NotFound(_))));
}

#[test]
fn urls() {
    assert_eq!(
        Backend::of_url("sqlite:///var/lib/v6home/registry.db").unwrap(),
        Backend::Sqlite
    );
    assert_eq!(
        Backend::of_url("postgres://v6home@/postgres?host=/tmp").unwrap(),
        Backend::Postgres
    );
    assert!(Backend::of_url("mysql://x").is_err());
    assert_eq!(
        sqlite_path("sqlite:///var/lib/v6home/registry.db?mode=rwc"),
        Some(PathBuf::from("/var/lib/v6home/registry.db"))
    );
    assert_eq!(sqlite_path("sqlite::memory:"), None);
    assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
    assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(
        with_pg_host("postgres://v6home@/postgres?host=/tmp/x"),
        "postgres://v6home@localhost/postgres?host=/tmp/x"
    );
    assert_eq!(
        with_pg_host("postgresql:///db?host=/run/postgresql"),
        "postgresql://localhost/db?host=/run/postgresql"
    );
    assert_eq!(
        with_pg_host("postgres://u@db.example/x"),
        "postgres://u@db.example/x"
    );
    assert_eq!(with_pg_host("sqlite:///a/b.db"), "sqlite:///a/b.db");
}
