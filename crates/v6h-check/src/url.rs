//! `http://` URLs with IPv6 literals handled right: `http://[2001:db8::1]:80/` needs no
//! `curl -g` trick.

use std::fmt;
use std::net::IpAddr;

/// Where a URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An address literal (`[2001:db8::1]` or `192.0.2.1`).
    Literal(IpAddr),
    /// A DNS name, lower-cased.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Literal(IpAddr::V6(a)) => write!(f, "[{a}]"),
            Host::Literal(IpAddr::V4(a)) => write!(f, "{a}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// The host part.
    pub host: Host,
    /// The port (80 unless given).
    pub port: u16,
    /// The path with query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// The value of the `Host:` header.
    pub fn host_header(&self) -> String {
        if self.port == 80 {
            self.host.to_string()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.host_header(), self.path)
    }
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Only plain `http://` is supported.
    #[error("unsupported scheme in {0:?}: only http:// URLs can be checked")]
    Scheme(String),
    /// `[` without `]`, or a bad address inside the brackets.
    #[error("bad IPv6 literal in {0:?}: write it as http://[2001:db8::1]/")]
    Literal(String),
    /// A bare IPv6 address without brackets.
    #[error("IPv6 address without brackets in {0:?}: write it as http://[{1}]/")]
    Unbracketed(String, String),
    /// The port is not a number from 1 to 65535.
    #[error("bad port in {0:?}")]
    Port(String),
    /// The host part is empty or has characters a DNS name cannot have.
    #[error("bad host name in {0:?}")]
    Host(String),
}

/// Parses an `http://` URL. A scheme-less `host/path` is taken as `http://host/path`.
pub fn parse(url: &str) -> Result<HttpUrl, UrlError> {
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some(_) => return Err(UrlError::Scheme(url.to_string())),
        None => url,
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = path.split('#').next().unwrap_or("/");
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    // Drop user info, which a check has no use for.
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (lit, after) = inner
            .split_once(']')
            .ok_or_else(|| UrlError::Literal(url.to_string()))?;
        // Zone ids (`%25eth0`) are not routable targets for a check.
        let addr: std::net::Ipv6Addr = lit
            .parse()
            .map_err(|_| UrlError::Literal(url.to_string()))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| UrlError::Port(url.to_string()))?,
            ),
        };
        (Host::Literal(IpAddr::V6(addr)), port)
    } else {
        if authority.matches(':').count() > 1 {
            let bare = authority.to_string();
            if bare.parse::<std::net::Ipv6Addr>().is_ok() {
                return Err(UrlError::Unbracketed(url.to_string(), bare));
            }
            return Err(UrlError::Host(url.to_string()));
        }
        let (h, p) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        // `192.0.2.1.` (a trailing root dot) is the same IPv4 literal as `192.0.2.1`.
        let bare = h.strip_suffix('.').unwrap_or(h);
        let host = match bare.parse::<std::net::Ipv4Addr>() {
            Ok(a) => Host::Literal(IpAddr::V4(a)),
            Err(_) => Host::Name(valid_name(h).ok_or_else(|| UrlError::Host(url.to_string()))?),
        };
        (host, p)
    };
    let port = match port {
        None => 80,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| UrlError::Port(url.to_string()))?,
    };
    Ok(HttpUrl { host, port, path })
}

/// A DNS name if `s` is one (letters, digits, `-`, `_`, dots; labels of 1..=63), lower-cased.
pub fn valid_name(s: &str) -> Option<String> {
    let s = s.strip_suffix('.').unwrap_or(s);
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ipv6_literal_with_port_needs_no_tricks() {
        let u = parse("http://[2001:db8::1]:8080/a?b=c").unwrap();
        assert_eq!(u.host, Host::Literal("2001:db8::1".parse().unwrap()));
        assert_eq!(u.port, 8080);
        assert_eq!(u.path, "/a?b=c");
        assert_eq!(u.host_header(), "[2001:db8::1]:8080");
        assert_eq!(u.to_string(), "http://[2001:db8::1]:8080/a?b=c");
    }

    #[test]
    fn names_default_port_and_path() {
        let u = parse("http://WWW.v6home.test").unwrap();
        assert_eq!(u.host, Host::Name("www.v6home.test".into()));
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        let u = parse("www.v6home.test/x#frag").unwrap();
        assert_eq!(u.path, "/x");
        let u = parse("http://192.0.2.1:81/").unwrap();
        assert_eq!(u.host, Host::Literal("192.0.2.1".parse().unwrap()));
        // A trailing root dot does not turn an IPv4 literal into a name (found by fuzzing).
        let dotted = parse("http://3.2.2.52./").unwrap();
        assert_eq!(dotted.host, Host::Literal("3.2.2.52".parse().unwrap()));
        assert_eq!(parse(&dotted.to_string()).unwrap(), dotted);
    }

    #[test]
    fn bad_urls_say_why() {
        assert!(matches!(parse("https://x/"), Err(UrlError::Scheme(_))));
        assert!(matches!(
            parse("http://[2001:db8::1/"),
            Err(UrlError::Literal(_))
        ));
        assert!(matches!(parse("http://[zz]/"), Err(UrlError::Literal(_))));
        let e = parse("http://2001:db8::1/").unwrap_err();
        assert_eq!(
            e.to_string(),
            "IPv6 address without brackets in \"http://2001:db8::1/\": write it as http://[2001:db8::1]/"
        );
        assert!(matches!(
            parse("http://[2001:db8::1]:0/"),
            Err(UrlError::Port(_))
        ));
        assert!(matches!(
            parse("http://[2001:db8::1]x/"),
            Err(UrlError::Port(_))
        ));
        assert!(matches!(parse("http://a..b/"), Err(UrlError::Host(_))));
        assert!(matches!(parse("http:///"), Err(UrlError::Host(_))));
    }

    proptest! {
        #[test]
        fn literal_urls_round_trip(a: [u8; 16], port in 1u16.., path in "/[a-z0-9/]{0,20}") {
            let addr = std::net::Ipv6Addr::from(a);
            let text = format!("http://[{addr}]:{port}{path}");
            let u = parse(&text).unwrap();
            prop_assert_eq!(&u.host, &Host::Literal(IpAddr::V6(addr)));
            prop_assert_eq!(u.port, port);
            prop_assert_eq!(parse(&u.to_string()).unwrap().path, path);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = parse(&s);
        }
    }
}
