-- v6home broker registry, SQLite. Secrets: users.password_md5 and tunnels.password are
-- password-equivalent (see docs/broker-registry.md); the database file is created 0600.
CREATE TABLE registry_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO registry_version (id, version) VALUES (1, 0);
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    password_md5 TEXT NOT NULL
);
CREATE TABLE pops (
    name TEXT PRIMARY KEY,
    ipv4_pop TEXT NOT NULL,
    tunnel_prefix TEXT NOT NULL
);
CREATE TABLE tunnels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL REFERENCES users (name),
    pop TEXT NOT NULL,
    prefix TEXT NOT NULL UNIQUE,
    subnets TEXT NOT NULL DEFAULT '',
    mtu BIGINT NOT NULL,
    heartbeat BIGINT NOT NULL,
    password TEXT NOT NULL,
    admin TEXT NOT NULL,
    name TEXT
);
