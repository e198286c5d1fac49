//! The broker's registry in a database: SQLite (embedded default) or PostgreSQL, through sqlx.
//!
//! One schema (embedded migrations, one set per engine in `migrations/`) holds users, tunnels
//! and PoPs, plus a `registry_version` row that every change increments. Writers serialise on
//! that row: each change starts by bumping it (SQLite's write lock, PostgreSQL's row lock), then
//! reads the registry, applies the change in memory, runs [`crate::registry::validate`] on the
//! result (the one place where the rules live) and writes only when it passes. A refused change
//! leaves the database as it was. Tunnel ids come from the database (SQLite `AUTOINCREMENT`,
//! PostgreSQL identity column), so two admins or two PoPs never race on `max + 1`.
//!
//! Secrets: `users.password_md5` is password-equivalent for TIC (its MD5 challenge is answered
//! with it), and `tunnels.password` is the AYIYA signing key. The SQLite file is created with
//! mode 0600 (its directory 0700) before sqlx opens it.

use std::borrow::Cow;
use std::io::Write as _;
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sqlx::AnyPool;
use sqlx::Row as _;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::prefix::Prefix6;
use crate::registry::{
    AdminState, NewTunnel, RegistryData, RegistryError, Tunnel, UserEntry, allocate, md5_hex,
    validate,
};

/// Errors of the database registry.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The change or the stored data breaks a registry rule; nothing was written.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The database failed (connection, SQL, constraint).
    #[error("database {url}: {source}")]
    Db {
        /// The database URL without its password.
        url: String,
        /// The sqlx error.
        #[source]
        source: sqlx::Error,
    },
    /// Applying the embedded schema failed.
    #[error("database {url}: schema migration: {source}")]
    Migrate {
        /// The database URL without its password.
        url: String,
        /// The migration error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// Creating the SQLite file or its directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The URL names an engine other than SQLite or PostgreSQL.
    #[error("database_url {0:?}: only sqlite: and postgres:// URLs are supported")]
    Url(String),
    /// No such user or tunnel.
    #[error("{0}")]
    NotFound(String),
}

/// The database engine behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The engine a URL names.
    pub fn of_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Url(redact(url)))
        }
    }
}

/// The URL with any `user:password@` password replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((cred, host)) if cred.contains(':') => {
            let user = cred.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

/// A PostgreSQL URL with an empty host (`postgres://user@/db?host=/run/postgresql`, the usual
/// spelling for a unix socket) gets `localhost`, which the `host` parameter then overrides:
/// sqlx's URL parser refuses an empty host.
pub fn with_pg_host(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    if !scheme.starts_with("postgres") {
        return url.to_string();
    }
    let (cred, hostpath) = match rest.split_once('@') {
        Some((c, h)) => (format!("{c}@"), h),
        None => (String::new(), rest),
    };
    if hostpath.starts_with('/') || hostpath.starts_with('?') || hostpath.is_empty() {
        format!("{scheme}://{cred}localhost{hostpath}")
    } else {
        url.to_string()
    }
}

/// The SQLite URL for a database file.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// The file path inside an SQLite URL (`sqlite://PATH`, `sqlite:PATH`, query stripped).
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let rest = rest.split('?').next().unwrap_or(rest);
    if rest.is_empty() || rest == ":memory:" {
        return None;
    }
    Some(PathBuf::from(rest))
}

/// Creates the SQLite file (and its directory, 0700) with mode 0600 when missing, and narrows
/// an existing file that others can read to 0600. A file that root creates in a directory
/// owned by another user (the broker's service user) is given to that user.
pub fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| StoreError::Io { path: p, source }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut f) => {
            f.flush().map_err(io(path))?;
            // Created by root (e.g. `broker user add`) in a directory that belongs to the
            // broker's own user: give the file to that user, so the daemon can open it.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                let d = std::fs::metadata(dir).map_err(io(dir))?;
                let m = f.metadata().map_err(io(path))?;
                if (d.uid(), d.gid()) != (m.uid(), m.gid()) && m.uid() == 0 {
                    std::os::unix::fs::chown(path, Some(d.uid()), Some(d.gid()))
                        .map_err(io(path))?;
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = std::fs::metadata(path).map_err(io(path))?;
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(io(path))?;
            }
        }
        Err(e) => return Err(io(path)(e)),
    }
    Ok(())
}

fn migrator(backend: Backend) -> Migrator {
    let sql: &'static str = match backend {
        Backend::Sqlite => include_str!("../migrations/sqlite/0001_registry.sql"),
        Backend::Postgres => include_str!("../migrations/postgres/0001_registry.sql"),
    };
    Migrator {
        migrations: Cow::Owned(vec![Migration::new(
            1,
            Cow::Borrowed("registry"),
            MigrationType::Simple,
            Cow::Borrowed(sql),
            false,
        )]),
        ..Migrator::DEFAULT
    }
}

/// A user as listed by [`Store::users`] (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// TIC user name.
    pub name: String,
    /// Number of tunnels the user owns.
    pub tunnels: usize,
}

/// A stored tunnel and the PoP that serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTunnel {
    /// The PoP (`server_name`) that serves the tunnel.
    pub pop: String,
    /// The tunnel.
    pub tunnel: Tunnel,
}

/// What [`Store::import`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Users inserted.
    pub users_added: usize,
    /// Users whose password changed.
    pub users_updated: usize,
    /// Tunnels inserted.
    pub tunnels_added: usize,
    /// Tunnels whose settings changed.
    pub tunnels_updated: usize,
    /// Users and tunnels already identical in the database.
    pub unchanged: usize,
}

/// Everything in the database, as read inside a change.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    users: Vec<UserEntry>,
    tunnels: Vec<StoredTunnel>,
}

impl Snapshot {
    fn validate(&self) -> Result<RegistryData, RegistryError> {
        let t: Vec<Tunnel> = self.tunnels.iter().map(|s| s.tunnel.clone()).collect();
        validate(&self.users, &t)
    }
}

/// The registry database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: String,
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

fn parse_subnets(s: &str) -> Result<Vec<Prefix6>, RegistryError> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.trim()
                .parse::<Prefix6>()
                .map_err(|e| RegistryError::Invalid(format!("stored subnet {p:?}: {e}")))
        })
        .collect()
}

fn join_subnets(s: &[Prefix6]) -> String {
    s.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn tunnel_of_row(r: &AnyRow) -> Result<StoredTunnel, sqlx::Error> {
    let id: i64 = r.try_get("id")?;
    let prefix: String = r.try_get("prefix")?;
    let subnets: String = r.try_get("subnets")?;
    let mtu: i64 = r.try_get("mtu")?;
    let heartbeat: i64 = r.try_get("heartbeat")?;
    let admin: String = r.try_get("admin")?;
    let bad = |what: &str| sqlx::Error::Decode(format!("tunnel {id}: bad {what}").into());
    let tunnel = Tunnel {
        id: u32::try_from(id).map_err(|_| bad("id"))?,
        owner: r.try_get("owner")?,
        prefix: prefix.parse().map_err(|_| bad("prefix"))?,
        subnets: parse_subnets(&subnets).map_err(|_| bad("subnets"))?,
        mtu: u16::try_from(mtu).map_err(|_| bad("mtu"))?,
        heartbeat: u32::try_from(heartbeat).map_err(|_| bad("heartbeat"))?,
        password: r.try_get("password")?,
        admin: match admin.as_str() {
            "enabled" => AdminState::Enabled,
            "disabled" => AdminState::Disabled,
            _ => return Err(bad("admin state")),
        },
        name: r.try_get("name")?,
    };
    Ok(StoredTunnel {
        pop: r.try_get("pop")?,
        tunnel,
    })
}

impl Store {
    /// Opens (creating when needed) the database at `url` and applies the embedded schema.
    /// An SQLite file is created with mode 0600 first.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let backend = Backend::of_url(url)?;
        if backend == Backend::Sqlite
            && let Some(p) = sqlite_path(url)
        {
            create_private_file(&p)?;
        }
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .connect(&with_pg_host(url))
            .await
            .map_err(|source| StoreError::Db {
                url: redact(url),
                source,
            })?;
        migrator(backend)
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                url: redact(url),
                source,
            })?;
        Ok(Store {
            pool,
            backend,
            url: redact(url),
        })
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL (password redacted).
    pub fn url(&self) -> &str {
        &self.url
    }

    fn db(&self) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
        |source| StoreError::Db {
            url: self.url.clone(),
            source,
        }
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The change counter: it grows with every committed change.
    pub async fn version(&self) -> Result<i64, StoreError> {
        let r = sqlx::query("SELECT version FROM registry_version WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(self.db())?;
        r.try_get::<i64, _>("version").map_err(self.db())
    }

    async fn snapshot_in(&self, conn: &mut sqlx::AnyConnection) -> Result<Snapshot, StoreError> {
        let users = sqlx::query("SELECT name, password_md5 FROM users ORDER BY name")
            .fetch_all(&mut *conn)
            .await
            .map_err(self.db())?
            .iter()
            .map(|r| {
                Ok(UserEntry {
                    name: r.try_get("name")?,
                    password_md5: Some(r.try_get("password_md5")?),
                    password: None,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(self.db())?;
        let tunnels = sqlx::query(
            "SELECT id, owner, pop, prefix, subnets, mtu, heartbeat, password, admin, name \
             FROM tunnels ORDER BY id",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(self.db())?
        .iter()
        .map(tunnel_of_row)
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(self.db())?;
        Ok(Snapshot { users, tunnels })
    }

    /// Every user and tunnel, validated, with each tunnel's PoP.
    pub async fn load_all(&self) -> Result<(RegistryData, Vec<StoredTunnel>), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(self.db())?;
        let s = self.snapshot_in(&mut conn).await?;
        Ok((s.validate()?, s.tunnels))
    }

    /// The registry as PoP `pop` serves it: every user, and the tunnels of that PoP, with the
    /// change counter it was read at.
    pub async fn load_pop(&self, pop: &str) -> Result<(i64, RegistryData), StoreError> {
        let mut tx = self.pool.begin().await.map_err(self.db())?;
        let v = sqlx::query("SELECT version FROM registry_version WHERE id = 1")
            .fetch_one(&mut *tx)
            .await
            .and_then(|r| r.try_get::<i64, _>("version"))
            .map_err(self.db())?;
        let s = self.snapshot_in(&mut tx).await?;
        tx.commit().await.map_err(self.db())?;
        let mut data = s.validate()?;
        let mine: std::collections::HashSet<u32> = s
            .tunnels
            .iter()
            .filter(|t| t.pop == pop)
            .map(|t| t.tunnel.id)
            .collect();
        data.tunnels.retain(|t| mine.contains(&t.id));
        Ok((v, data))
    }

    /// Starts a change: takes the writers' lock by bumping the counter, then reads everything.
    async fn begin_change(&self) -> Result<(Tx<'_>, Snapshot), StoreError> {
        let mut tx = self.pool.begin().await.map_err(self.db())?;
        sqlx::query("UPDATE registry_version SET version = version + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await
            .map_err(self.db())?;
        let s = self.snapshot_in(&mut tx).await?;
        Ok((tx, s))
    }

    async fn insert_tunnel(
        &self,
        tx: &mut Tx<'_>,
        pop: &str,
        t: &Tunnel,
        with_id: bool,
    ) -> Result<u32, StoreError> {
        let sql = if with_id {
            "INSERT INTO tunnels (id, owner, pop, prefix, subnets, mtu, heartbeat, password, \
             admin, name) VALUES ($10, $1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id"
        } else {
            "INSERT INTO tunnels (owner, pop, prefix, subnets, mtu, heartbeat, password, \
             admin, name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id"
        };
        let mut q = sqlx::query(sql)
            .bind(t.owner.clone())
            .bind(pop.to_string())
            .bind(t.prefix.to_string())
            .bind(join_subnets(&t.subnets))
            .bind(i64::from(t.mtu))
            .bind(i64::from(t.heartbeat))
            .bind(t.password.clone())
            .bind(t.admin.as_str().to_string())
            .bind(t.name.clone());
        if with_id {
            q = q.bind(i64::from(t.id));
        }
        let r = q.fetch_one(&mut **tx).await.map_err(self.db())?;
        let id: i64 = r.try_get("id").map_err(self.db())?;
        u32::try_from(id)
            .map_err(|_| StoreError::Registry(RegistryError::Invalid(format!("tunnel id {id}"))))
    }

    async fn update_tunnel(
        &self,
        tx: &mut Tx<'_>,
        pop: &str,
        t: &Tunnel,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tunnels SET owner = $1, pop = $2, prefix = $3, subnets = $4, mtu = $5, \
             heartbeat = $6, password = $7, admin = $8, name = $9 WHERE id = $10",
        )
        .bind(t.owner.clone())
        .bind(pop.to_string())
        .bind(t.prefix.to_string())
        .bind(join_subnets(&t.subnets))
        .bind(i64::from(t.mtu))
        .bind(i64::from(t.heartbeat))
        .bind(t.password.clone())
        .bind(t.admin.as_str().to_string())
        .bind(t.name.clone())
        .bind(i64::from(t.id))
        .execute(&mut **tx)
        .await
        .map_err(self.db())?;
        Ok(())
    }

    /// Adds a user with `md5hex(password)`; the name must be new.
    pub async fn add_user(&self, name: &str, password_md5: &str) -> Result<(), StoreError> {
        let (mut tx, mut s) = self.begin_change().await?;
        if s.users.iter().any(|u| u.name == name) {
            return Err(RegistryError::Invalid(format!("user {name:?} already exists")).into());
        }
        s.users.push(UserEntry {
            name: name.to_string(),
            password_md5: Some(password_md5.to_string()),
            password: None,
        });
        let data = s.validate()?;
        let md5 = data
            .user(name)
            .map(|u| u.password_md5.clone())
            .unwrap_or_default();
        sqlx::query("INSERT INTO users (name, password_md5) VALUES ($1, $2)")
            .bind(name.to_string())
            .bind(md5)
            .execute(&mut *tx)
            .await
            .map_err(self.db())?;
        tx.commit().await.map_err(self.db())
    }

    /// Sets a user's `md5hex(password)`.
    pub async fn set_password(&self, name: &str, password_md5: &str) -> Result<(), StoreError> {
        let (mut tx, mut s) = self.begin_change().await?;
        let Some(u) = s.users.iter_mut().find(|u| u.name == name) else {
            return Err(StoreError::NotFound(format!("no user {name:?}")));
        };
        u.password_md5 = Some(password_md5.to_string());
        let data = s.validate()?;
        let md5 = data
            .user(name)
            .map(|u| u.password_md5.clone())
            .unwrap_or_default();
        sqlx::query("UPDATE users SET password_md5 = $1 WHERE name = $2")
            .bind(md5)
            .bind(name.to_string())
            .execute(&mut *tx)
            .await
            .map_err(self.db())?;
        tx.commit().await.map_err(self.db())
    }

    /// Deletes a user who owns no tunnel.
    pub async fn del_user(&self, name: &str) -> Result<(), StoreError> {
        let (mut tx, mut s) = self.begin_change().await?;
        let before = s.users.len();
        s.users.retain(|u| u.name != name);
        if s.users.len() == before {
            return Err(StoreError::NotFound(format!("no user {name:?}")));
        }
        let owned: Vec<String> = s
            .tunnels
            .iter()
            .filter(|t| t.tunnel.owner == name)
            .map(|t| t.tunnel.tic_id())
            .collect();
        if !owned.is_empty() {
            return Err(RegistryError::Invalid(format!(
                "user {name:?} owns {}; delete those tunnels first",
                owned.join(", ")
            ))
            .into());
        }
        s.validate()?;
        sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name.to_string())
            .execute(&mut *tx)
            .await
            .map_err(self.db())?;
        tx.commit().await.map_err(self.db())
    }

    /// The users and how many tunnels each owns.
    pub async fn users(&self) -> Result<Vec<UserInfo>, StoreError> {
        let (data, _) = self.load_all().await?;
        Ok(data
            .users
            .iter()
            .map(|u| UserInfo {
                name: u.name.clone(),
                tunnels: data.tunnels_of(&u.name).count(),
            })
            .collect())
    }

    /// Every tunnel with its PoP, by id.
    pub async fn tunnels(&self) -> Result<Vec<StoredTunnel>, StoreError> {
        Ok(self.load_all().await?.1)
    }

    /// One tunnel.
    pub async fn tunnel(&self, id: u32) -> Result<StoredTunnel, StoreError> {
        self.tunnels()
            .await?
            .into_iter()
            .find(|t| t.tunnel.id == id)
            .ok_or_else(|| StoreError::NotFound(format!("no tunnel T{id}")))
    }

    /// Allocates a tunnel for PoP `pop`: the id comes from the database, the /64 is the first
    /// free one of `req.from`; the result is validated against every stored tunnel.
    pub async fn add_tunnel(&self, pop: &str, req: &NewTunnel) -> Result<Tunnel, StoreError> {
        let (mut tx, mut s) = self.begin_change().await?;
        let data = s.validate()?;
        if data.user(&req.owner).is_none() {
            return Err(RegistryError::Invalid(format!("unknown user {:?}", req.owner)).into());
        }
        let (provisional, prefix) = allocate(&data, req.from)?;
        let mut t = Tunnel {
            id: provisional,
            owner: req.owner.clone(),
            prefix,
            subnets: req.subnets.clone(),
            mtu: req.mtu,
            heartbeat: req.heartbeat,
            password: req.password.clone().unwrap_or_else(random_secret),
            admin: AdminState::Enabled,
            name: None,
        };
        // Check before writing (clear error, nothing stored), then again with the real id.
        s.tunnels.push(StoredTunnel {
            pop: pop.to_string(),
            tunnel: t.clone(),
        });
        s.validate()?;
        t.id = self.insert_tunnel(&mut tx, pop, &t, false).await?;
        if let Some(last) = s.tunnels.last_mut() {
            last.tunnel.id = t.id;
        }
        s.validate()?;
        tx.commit().await.map_err(self.db())?;
        Ok(t)
    }

    /// Deletes a tunnel.
    pub async fn del_tunnel(&self, id: u32) -> Result<Tunnel, StoreError> {
        let (mut tx, s) = self.begin_change().await?;
        let Some(t) = s.tunnels.iter().find(|t| t.tunnel.id == id) else {
            return Err(StoreError::NotFound(format!("no tunnel T{id}")));
        };
        sqlx::query("DELETE FROM tunnels WHERE id = $1")
            .bind(i64::from(id))
            .execute(&mut *tx)
            .await
            .map_err(self.db())?;
        tx.commit().await.map_err(self.db())?;
        Ok(t.tunnel.clone())
    }

    /// Enables or disables a tunnel.
    pub async fn set_admin(&self, id: u32, admin: AdminState) -> Result<Tunnel, StoreError> {
        let (mut tx, mut s) = self.begin_change().await?;
        let Some(st) = s.tunnels.iter_mut().find(|t| t.tunnel.id == id) else {
            return Err(StoreError::NotFound(format!("no tunnel T{id}")));
        };
        st.tunnel.admin = admin;
        let (pop, t) = (st.pop.clone(), st.tunnel.clone());
        s.validate()?;
        self.update_tunnel(&mut tx, &pop, &t).await?;
        tx.commit().await.map_err(self.db())?;
        Ok(t)
    }

    /// Records PoP `name` (its IPv4 address and tunnel prefix), replacing an older record.
    pub async fn register_pop(
        &self,
        name: &str,
        ipv4_pop: std::net::Ipv4Addr,
        tunnel_prefix: Prefix6,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(self.db())?;
        sqlx::query("DELETE FROM pops WHERE name = $1")
            .bind(name.to_string())
            .execute(&mut *tx)
            .await
            .map_err(self.db())?;
        sqlx::query("INSERT INTO pops (name, ipv4_pop, tunnel_prefix) VALUES ($1, $2, $3)")
            .bind(name.to_string())
            .bind(ipv4_pop.to_string())
            .bind(tunnel_prefix.to_string())
            .execute(&mut *tx)
            .await
            .map_err(self.db())?;
        tx.commit().await.map_err(self.db())
    }

    /// The recorded PoPs: (name, IPv4 address, tunnel prefix).
    pub async fn pops(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows = sqlx::query("SELECT name, ipv4_pop, tunnel_prefix FROM pops ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(self.db())?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("name")?,
                    r.try_get("ipv4_pop")?,
                    r.try_get("tunnel_prefix")?,
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(self.db())
    }

    /// Imports users and tunnels (e.g. from an old broker.toml) for PoP `pop`, idempotently:
    /// missing ones are inserted with their ids, changed ones updated, identical ones left
    /// alone; nothing is deleted. The merged registry must validate, or nothing is written.
    pub async fn import(&self, pop: &str, data: &RegistryData) -> Result<ImportReport, StoreError> {
        let (mut tx, mut s) = self.begin_change().await?;
        let mut rep = ImportReport::default();
        let mut user_writes = Vec::new();
        for u in &data.users {
            match s.users.iter_mut().find(|x| x.name == u.name) {
                Some(x) if x.password_md5.as_deref() == Some(u.password_md5.as_str()) => {
                    rep.unchanged += 1
                }
                Some(x) => {
                    x.password_md5 = Some(u.password_md5.clone());
                    rep.users_updated += 1;
                    user_writes.push((u.clone(), false));
                }
                None => {
                    s.users.push(UserEntry {
                        name: u.name.clone(),
                        password_md5: Some(u.password_md5.clone()),
                        password: None,
                    });
                    rep.users_added += 1;
                    user_writes.push((u.clone(), true));
                }
            }
        }
        let mut tunnel_writes = Vec::new();
        for t in &data.tunnels {
            match s.tunnels.iter_mut().find(|x| x.tunnel.id == t.id) {
                Some(x) if x.tunnel == *t && x.pop == pop => rep.unchanged += 1,
                Some(x) => {
                    x.tunnel = t.clone();
                    x.pop = pop.to_string();
                    rep.tunnels_updated += 1;
                    tunnel_writes.push((t.clone(), false));
                }
                None => {
                    s.tunnels.push(StoredTunnel {
                        pop: pop.to_string(),
                        tunnel: t.clone(),
                    });
                    rep.tunnels_added += 1;
                    tunnel_writes.push((t.clone(), true));
                }
            }
        }
        s.validate()?;
        for (u, new) in user_writes {
            let sql = if new {
                "INSERT INTO users (password_md5, name) VALUES ($1, $2)"
            } else {
                "UPDATE users SET password_md5 = $1 WHERE name = $2"
            };
            sqlx::query(sql)
                .bind(u.password_md5.clone())
                .bind(u.name.clone())
                .execute(&mut *tx)
                .await
                .map_err(self.db())?;
        }
        for (t, new) in tunnel_writes {
            if new {
                self.insert_tunnel(&mut tx, pop, &t, true).await?;
            } else {
                self.update_tunnel(&mut tx, pop, &t).await?;
            }
        }
        if self.backend == Backend::Postgres && rep.tunnels_added > 0 {
            // Explicit ids do not move the identity sequence; move it past them.
            sqlx::query(
                "SELECT setval(pg_get_serial_sequence('tunnels', 'id'), \
                 (SELECT COALESCE(MAX(id), 1) FROM tunnels))",
            )
            .execute(&mut *tx)
            .await
            .map_err(self.db())?;
        }
        tx.commit().await.map_err(self.db())?;
        Ok(rep)
    }
}

/// A random 32-hex-digit secret (AYIYA tunnel password, generated TIC password).
pub fn random_secret() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `md5hex(password)` for a new TIC password, refusing ones TIC cannot carry.
pub fn tic_password_md5(password: &str) -> Result<String, RegistryError> {
    if password.is_empty() || password.chars().any(|c| c.is_control()) {
        return Err(RegistryError::Invalid(
            "password must be non-empty and without control characters".into(),
        ));
    }
    Ok(md5_hex(password))
}

#[cfg(test)]
mod tests;
