//! The sans-IO DHCPv6 server core.
//!
//! [`Server::handle`] takes the time, one received datagram and where it came from
//! ([`LinkInfo`]) and returns the datagrams to send ([`Reply`]). It never touches a clock or a
//! socket. Validation follows RFC 8415 §16, processing §18.3, relaying §19.3.
//!
//! **Link selection.** A direct message is served on the link of its arrival interface. A
//! relayed message (RFC 8415 §13.1, §19.3) is served on the link chosen by the relay agent
//! closest to the client: the innermost Relay-Forw's link-address is looked up among the
//! configured link prefixes (`[[link]]` tables and `interface` prefixes); if it is `::`, that
//! relay's Interface-ID is matched against the `[[link]]` `interface_id`s, and failing both the
//! next outer relay is asked the same way, then the arrival interface. A link-address that
//! matches no configured link leaves the IAs unserved (NoAddrsAvail, NoPrefixAvail,
//! NoBinding) and is counted in [`Counters::relay_unknown_link`].
//!
//! Leases live behind the [`Bindings`] trait so the stateful service can plug in without
//! changing the message pipeline. [`NoBindings`] is the stateless service: every IA gets the
//! status RFC 8415 prescribes when no pool can serve it.

use std::net::{Ipv6Addr, SocketAddrV6};

use crate::config::Config;
use crate::wire::{
    ClientMessage, DhcpOption, Ia, IaAddr, IaPrefix, Message, NtpSuboption, RelayMessage, code,
    msg, status,
};
use v6h_lease::Prefix;

/// The UDP port servers and relays listen on.
pub const SERVER_PORT: u16 = 547;
/// The UDP port clients listen on.
pub const CLIENT_PORT: u16 = 546;
/// All_DHCP_Relay_Agents_and_Servers (link scope).
pub const ALL_SERVERS_AND_RELAYS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

/// Where a datagram arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    /// Arrival interface index.
    pub ifindex: u32,
    /// Source address and port of the datagram.
    pub src: SocketAddrV6,
    /// Destination address of the datagram (from IPV6_PKTINFO).
    pub dst: Ipv6Addr,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Destination (scope id = interface index for link-local destinations).
    pub to: SocketAddrV6,
    /// Interface to send on.
    pub ifindex: u32,
    /// The DHCPv6 payload.
    pub bytes: Vec<u8>,
}

/// Why a datagram was dropped; also the index into [`Counters::dropped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Failed the strict decoder.
    Malformed,
    /// A message type the server never answers (2, 7, 10, 13) or does not know.
    NotForServer,
    /// Solicit, Confirm, Rebind or Information-Request sent to a unicast address.
    Unicast,
    /// Client Identifier missing where required.
    NoClientId,
    /// Server Identifier missing where required.
    NoServerId,
    /// Server Identifier present but not ours.
    ForeignServerId,
    /// Server Identifier present where it must not be.
    UnexpectedServerId,
    /// Information-Request carrying an IA option.
    IaInInformationRequest,
    /// Confirm the server cannot judge (RFC 8415 §18.3.3: no reply).
    ConfirmUndetermined,
    /// The reply could not be encoded.
    EncodeFailed,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 10] = [
        DropReason::Malformed,
        DropReason::NotForServer,
        DropReason::Unicast,
        DropReason::NoClientId,
        DropReason::NoServerId,
        DropReason::ForeignServerId,
        DropReason::UnexpectedServerId,
        DropReason::IaInInformationRequest,
        DropReason::ConfirmUndetermined,
        DropReason::EncodeFailed,
    ];

    /// A short stable name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::NotForServer => "not_for_server",
            DropReason::Unicast => "unicast",
            DropReason::NoClientId => "no_client_id",
            DropReason::NoServerId => "no_server_id",
            DropReason::ForeignServerId => "foreign_server_id",
            DropReason::UnexpectedServerId => "unexpected_server_id",
            DropReason::IaInInformationRequest => "ia_in_information_request",
            DropReason::ConfirmUndetermined => "confirm_undetermined",
            DropReason::EncodeFailed => "encode_failed",
        }
    }
}

/// Per-interface counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams received (valid or not).
    pub datagrams: u64,
    /// Valid messages received, by message type (index = type; 0 and ≥ 14 counted at 0).
    /// For relayed messages, the innermost type and also 12 (Relay-Forw).
    pub received: [u64; 14],
    /// Messages sent, by type (13 = Relay-Repl, plus the inner type).
    pub sent: [u64; 14],
    /// Drops, indexed like [`DropReason::ALL`].
    pub dropped: [u64; 10],
    /// Relayed messages whose relay link-address matched no configured link (their IAs
    /// got NoAddrsAvail/NoPrefixAvail/NoBinding).
    pub relay_unknown_link: u64,
    /// IAs beyond `limits.max_ias_per_message` in one message, answered NoAddrsAvail or
    /// NoPrefixAvail without asking the lease engine.
    pub ia_limit: u64,
}

impl Counters {
    fn drop(&mut self, r: DropReason) {
        let i = DropReason::ALL.iter().position(|&x| x == r).unwrap_or(0);
        self.dropped[i] += 1;
    }
    /// The count for one drop reason.
    pub fn dropped_for(&self, r: DropReason) -> u64 {
        DropReason::ALL
            .iter()
            .position(|&x| x == r)
            .map_or(0, |i| self.dropped[i])
    }
    /// Total drops.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

fn type_index(t: u8) -> usize {
    let i = usize::from(t);
    if i < 14 { i } else { 0 }
}

/// What an IA handler sees about the request.
#[derive(Debug, Clone, Copy)]
pub struct IaContext<'a> {
    /// The message type being answered.
    pub msg_type: u8,
    /// The link name the request was attributed to.
    pub link: &'a str,
    /// The client's DUID.
    pub client_duid: &'a [u8],
    /// The request carried Rapid Commit and the link allows it (commit now).
    pub rapid_commit: bool,
}

/// Lease storage and allocation. The stateful service implements this; the message pipeline,
/// validation, option selection and relaying stay in [`Server`].
pub trait Bindings {
    /// Answers one IA option (IA_NA, IA_TA or IA_PD) of a Solicit, Request, Renew, Rebind,
    /// Release or Decline. `None` leaves the IA out of the reply.
    fn answer_ia(&mut self, now: u64, ctx: &IaContext<'_>, ia: &DhcpOption) -> Option<DhcpOption>;

    /// Judges a Confirm's addresses: `Some(true)` all on-link, `Some(false)` some off-link,
    /// `None` cannot tell (then no reply is sent).
    fn confirm(&mut self, now: u64, link: &str, addrs: &[Ipv6Addr]) -> Option<bool>;
}

/// The stateless service: no pools, so no leases.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBindings;

fn status_opt(code: u16, message: &str) -> DhcpOption {
    DhcpOption::StatusCode {
        status: code,
        message: message.to_owned(),
    }
}

impl Bindings for NoBindings {
    fn answer_ia(&mut self, _now: u64, ctx: &IaContext<'_>, ia: &DhcpOption) -> Option<DhcpOption> {
        let is_pd = ia.code() == code::IA_PD;
        let st = match ctx.msg_type {
            msg::SOLICIT | msg::REQUEST => {
                if is_pd {
                    status_opt(
                        status::NO_PREFIX_AVAIL,
                        "no prefixes available on this link",
                    )
                } else {
                    status_opt(
                        status::NO_ADDRS_AVAIL,
                        "no addresses available on this link",
                    )
                }
            }
            msg::REBIND => {
                // No pool covers any lease on this link: return the client's leases with zero
                // lifetimes (RFC 8415 §18.3.5); an empty IA gets NoBinding.
                let zeroed = zero_leases(ia);
                if zeroed.is_some() {
                    return zeroed;
                }
                status_opt(status::NO_BINDING, "no binding for this IA")
            }
            _ => status_opt(status::NO_BINDING, "no binding for this IA"),
        };
        Some(with_options(ia, vec![st]))
    }

    fn confirm(&mut self, _now: u64, _link: &str, _addrs: &[Ipv6Addr]) -> Option<bool> {
        None
    }
}

/// The IA with no leases and NoAddrsAvail (IA_NA, IA_TA) or NoPrefixAvail (IA_PD), for IAs
/// over the per-message limit. The status has no message text, so the answer stays about as
/// small as the IA the client sent (22 bytes for a 16-byte IA_NA): no amplification.
fn refused_ia(ia: &DhcpOption) -> DhcpOption {
    let code = if ia.code() == code::IA_PD {
        status::NO_PREFIX_AVAIL
    } else {
        status::NO_ADDRS_AVAIL
    };
    with_options(ia, vec![status_opt(code, "")])
}

/// The IA with T1 = T2 = 0 and the given sub-options.
fn with_options(ia: &DhcpOption, options: Vec<DhcpOption>) -> DhcpOption {
    match ia {
        DhcpOption::IaNa(i) => DhcpOption::IaNa(Ia {
            iaid: i.iaid,
            t1: 0,
            t2: 0,
            options,
        }),
        DhcpOption::IaPd(i) => DhcpOption::IaPd(Ia {
            iaid: i.iaid,
            t1: 0,
            t2: 0,
            options,
        }),
        DhcpOption::IaTa { iaid, .. } => DhcpOption::IaTa {
            iaid: *iaid,
            options,
        },
        other => other.clone(),
    }
}

/// The IA's addresses/prefixes with zero lifetimes, or `None` if it holds none.
fn zero_leases(ia: &DhcpOption) -> Option<DhcpOption> {
    let subs = match ia {
        DhcpOption::IaNa(i) | DhcpOption::IaPd(i) => &i.options,
        DhcpOption::IaTa { options, .. } => options,
        _ => return None,
    };
    let zeroed: Vec<DhcpOption> = subs
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IaAddr(a) => Some(DhcpOption::IaAddr(IaAddr {
                addr: a.addr,
                preferred: 0,
                valid: 0,
                options: Vec::new(),
            })),
            DhcpOption::IaPrefix(p) => Some(DhcpOption::IaPrefix(IaPrefix {
                preferred: 0,
                valid: 0,
                prefix_len: p.prefix_len,
                prefix: p.prefix,
                options: Vec::new(),
            })),
            _ => None,
        })
        .collect();
    (!zeroed.is_empty()).then(|| with_options(ia, zeroed))
}

/// Per-link state: settings and pre-encoded stateless options.
#[derive(Debug, Clone)]
struct Link {
    ifindex: u32,
    name: String,
    rapid_commit: bool,
    preference: Option<u8>,
    /// Configured options (all encodable), sorted by code.
    options: Vec<DhcpOption>,
    counters: Counters,
}

/// Builds the configured options, sorted by code, keeping only those that encode.
fn encode_config_options(cfg: &Config) -> Vec<DhcpOption> {
    let o = &cfg.options;
    let mut opts: Vec<DhcpOption> = Vec::new();
    let addrs = |c: u16, v: &[Ipv6Addr]| DhcpOption::Addresses {
        code: c,
        addrs: v.to_vec(),
    };
    let names = |c: u16, v: &[String]| DhcpOption::Names {
        code: c,
        names: v.to_vec(),
    };
    let a_lists = [
        (code::SIP_SERVER_A, &o.sip_server_addresses),
        (code::DNS_SERVERS, &o.dns_servers),
        (code::NIS_SERVERS, &o.nis_server_addresses),
        (code::NISP_SERVERS, &o.nisp_server_addresses),
        (code::SNTP_SERVERS, &o.ntp_servers),
        (code::BCMCS_SERVER_A, &o.bcmcs_server_addresses),
    ];
    for (c, v) in a_lists {
        if !v.is_empty() {
            opts.push(addrs(c, v));
        }
    }
    let n_lists = [
        (code::SIP_SERVER_D, &o.sip_server_domain_names),
        (code::DOMAIN_LIST, &o.domain_list),
        (code::NIS_DOMAIN_NAME, &o.nis_domain_names),
        (code::NISP_DOMAIN_NAME, &o.nisp_domain_names),
        (code::BCMCS_SERVER_D, &o.bcmcs_server_domain_names),
    ];
    for (c, v) in n_lists {
        if !v.is_empty() {
            opts.push(names(c, v));
        }
    }
    if let Some(r) = o.refresh_time {
        opts.push(DhcpOption::InformationRefreshTime(r));
    }
    if !o.ntp_servers.is_empty() {
        opts.push(DhcpOption::NtpServer(
            o.ntp_servers
                .iter()
                .map(|a| NtpSuboption::Address(*a))
                .collect(),
        ));
    }
    opts.sort_by_key(DhcpOption::code);
    // Validated configurations always encode; an option that does not is left out.
    opts.retain(|opt| opt.emit(&mut Vec::new()).is_ok());
    opts
}

/// A link the server can choose for a relayed message: an `interface` block with a
/// `prefix`, or a `[[link]]`.
#[derive(Debug, Clone)]
struct LinkPolicy {
    name: String,
    prefix: Option<Prefix>,
    interface_id: Option<Vec<u8>>,
    rapid_commit: bool,
    preference: Option<u8>,
}

fn link_policies(cfg: &Config) -> Vec<LinkPolicy> {
    let interfaces = cfg
        .interfaces
        .iter()
        .filter(|i| i.prefix.is_some())
        .map(|i| LinkPolicy {
            name: i.name.clone(),
            prefix: i.prefix,
            interface_id: None,
            rapid_commit: i.rapid_commit,
            preference: i.preference,
        });
    let relayed = cfg.links.iter().map(|l| LinkPolicy {
        name: l.name.clone(),
        prefix: Some(l.prefix),
        interface_id: l.interface_id.as_ref().map(|i| i.as_bytes().to_vec()),
        rapid_commit: l.rapid_commit,
        preference: l.preference,
    });
    interfaces.chain(relayed).collect()
}

/// Where the name of the chosen link is (no allocation per message).
#[derive(Debug, Clone, Copy)]
enum LinkName {
    /// The arrival interface, by index into `Server::links`.
    Arrival(usize),
    /// A link chosen by a relay, by index into `Server::policies`.
    Policy(usize),
}

/// The link a message is served on.
#[derive(Debug, Clone, Copy)]
struct Serving {
    /// The link's name; `None`: a relay's link-address matched no configured link.
    name: Option<LinkName>,
    rapid_commit: bool,
    preference: Option<u8>,
}

/// One layer of relay encapsulation, outermost first.
struct RelayLayer<'m> {
    hop_count: u8,
    link_address: Ipv6Addr,
    peer_address: Ipv6Addr,
    interface_id: Option<&'m [u8]>,
}

/// The DHCPv6 server core.
#[derive(Debug)]
pub struct Server<B: Bindings = NoBindings> {
    duid: Vec<u8>,
    config: Config,
    links: Vec<Link>,
    /// Links selectable by a relay's link-address or Interface-ID.
    policies: Vec<LinkPolicy>,
    /// Datagrams from interfaces that are not served.
    unserved: u64,
    bindings: B,
}

impl Server<NoBindings> {
    /// A stateless server with DUID `duid` and configuration `config`.
    pub fn stateless(duid: Vec<u8>, config: Config) -> Self {
        Server::new(duid, config, NoBindings)
    }
}

impl<B: Bindings> Server<B> {
    /// A server with its DUID, configuration and lease store.
    pub fn new(duid: Vec<u8>, config: Config, bindings: B) -> Self {
        Server {
            duid,
            policies: link_policies(&config),
            config,
            links: Vec::new(),
            unserved: 0,
            bindings,
        }
    }

    /// The server DUID.
    pub fn duid(&self) -> &[u8] {
        &self.duid
    }

    /// The current configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The lease store.
    pub fn bindings(&mut self) -> &mut B {
        &mut self.bindings
    }

    /// Serves interface `name` (index `ifindex`). Counters survive re-adding.
    pub fn add_link(&mut self, ifindex: u32, name: &str) {
        let counters = self
            .links
            .iter()
            .position(|l| l.ifindex == ifindex)
            .map(|i| self.links.remove(i).counters)
            .unwrap_or_default();
        let l = self.make_link(ifindex, name, counters);
        self.links.push(l);
    }

    fn make_link(&self, ifindex: u32, name: &str, counters: Counters) -> Link {
        let ifc = self.config.interface(name);
        Link {
            ifindex,
            name: name.to_owned(),
            rapid_commit: ifc.is_some_and(|i| i.rapid_commit),
            preference: ifc.and_then(|i| i.preference),
            options: encode_config_options(&self.config),
            counters,
        }
    }

    /// Replaces the configuration (after validation by the caller); counters are kept.
    pub fn set_config(&mut self, config: Config) {
        self.policies = link_policies(&config);
        self.config = config;
        let links = std::mem::take(&mut self.links);
        self.links = links
            .into_iter()
            .map(|l| self.make_link(l.ifindex, &l.name, l.counters))
            .collect();
    }

    /// Served links as `(ifindex, name, counters)`.
    pub fn links(&self) -> impl Iterator<Item = (u32, &str, &Counters)> {
        self.links
            .iter()
            .map(|l| (l.ifindex, l.name.as_str(), &l.counters))
    }

    /// Counters of one served interface.
    pub fn counters(&self, ifindex: u32) -> Option<&Counters> {
        self.links
            .iter()
            .find(|l| l.ifindex == ifindex)
            .map(|l| &l.counters)
    }

    /// Datagrams that arrived on interfaces the server does not serve.
    pub fn unserved(&self) -> u64 {
        self.unserved
    }

    /// Processes one datagram received on `link` at time `now` (seconds, caller's clock).
    pub fn handle(&mut self, now: u64, datagram: &[u8], link: &LinkInfo) -> Vec<Reply> {
        let Some(li) = self.links.iter().position(|l| l.ifindex == link.ifindex) else {
            self.unserved += 1;
            return Vec::new();
        };
        self.links[li].counters.datagrams += 1;
        match self.process(now, datagram, link, li) {
            Ok(r) => r.into_iter().collect(),
            Err(reason) => {
                tracing::debug!(ifindex = link.ifindex, src = %link.src, reason = reason.name(), "dropped");
                self.links[li].counters.drop(reason);
                Vec::new()
            }
        }
    }

    fn process(
        &mut self,
        now: u64,
        datagram: &[u8],
        link: &LinkInfo,
        li: usize,
    ) -> Result<Option<Reply>, DropReason> {
        let m = Message::parse(datagram).map_err(|e| {
            tracing::debug!(error = %e, "malformed datagram");
            DropReason::Malformed
        })?;
        // Unwrap relays, outermost first.
        let mut layers: Vec<RelayLayer<'_>> = Vec::new();
        let mut relay_port = None;
        let mut cur = &m;
        let inner: &ClientMessage = loop {
            match cur {
                Message::Client(c) => break c,
                Message::Relay(r) => {
                    if r.msg_type != msg::RELAY_FORW {
                        return Err(DropReason::NotForServer);
                    }
                    if layers.is_empty() && relay_has_source_port(r) {
                        relay_port = Some(link.src.port());
                    }
                    layers.push(RelayLayer {
                        hop_count: r.hop_count,
                        link_address: r.link_address,
                        peer_address: r.peer_address,
                        interface_id: r.interface_id(),
                    });
                    // The decoder guarantees a Relay Message option.
                    cur = r.relay_msg().ok_or(DropReason::Malformed)?;
                }
            }
        };
        let relayed = !layers.is_empty();
        let counters = &mut self.links[li].counters;
        if relayed {
            counters.received[usize::from(msg::RELAY_FORW)] += 1;
        }
        counters.received[type_index(inner.msg_type)] += 1;
        let unicast = !relayed && !link.dst.is_multicast();
        let serving = self.serving(&layers, li);
        if serving.name.is_none() {
            self.links[li].counters.relay_unknown_link += 1;
            let unknown = layers
                .iter()
                .rev()
                .find(|l| !l.link_address.is_unspecified())
                .map_or(Ipv6Addr::UNSPECIFIED, |l| l.link_address);
            tracing::debug!(link_address = %unknown, "relay link-address matches no configured link");
        }
        let Some(reply) = self.answer(now, inner, unicast, li, serving)? else {
            return Ok(None);
        };
        let reply_type = reply.msg_type;
        let mut bytes = Message::Client(reply)
            .emit()
            .map_err(|_| DropReason::EncodeFailed)?;
        let to = if relayed {
            for l in layers.iter().rev() {
                bytes = wrap_relay_repl(l, &bytes).ok_or(DropReason::EncodeFailed)?;
            }
            SocketAddrV6::new(
                *link.src.ip(),
                relay_port.unwrap_or(SERVER_PORT),
                0,
                scope_for(link.src.ip(), link.ifindex),
            )
        } else {
            SocketAddrV6::new(
                *link.src.ip(),
                link.src.port(),
                0,
                scope_for(link.src.ip(), link.ifindex),
            )
        };
        let counters = &mut self.links[li].counters;
        counters.sent[type_index(reply_type)] += 1;
        if relayed {
            counters.sent[usize::from(msg::RELAY_REPL)] += 1;
        }
        Ok(Some(Reply {
            to,
            ifindex: link.ifindex,
            bytes,
        }))
    }

    /// Chooses the link to serve: by the relays' link-addresses and Interface-IDs, innermost
    /// first, else the arrival interface `li` (RFC 8415 §19.3).
    fn serving(&self, layers: &[RelayLayer<'_>], li: usize) -> Serving {
        let policy = |i: usize| {
            let p = &self.policies[i];
            Serving {
                name: Some(LinkName::Policy(i)),
                rapid_commit: p.rapid_commit,
                preference: p.preference,
            }
        };
        for l in layers.iter().rev() {
            if !l.link_address.is_unspecified() {
                // Longest matching prefix (validated configurations have no overlaps).
                return match self
                    .policies
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.prefix.is_some_and(|x| x.contains(l.link_address)))
                    .max_by_key(|(_, p)| p.prefix.map_or(0, |x| x.len()))
                {
                    Some((i, _)) => policy(i),
                    None => Serving {
                        name: None,
                        rapid_commit: false,
                        preference: None,
                    },
                };
            }
            if let Some(id) = l.interface_id
                && let Some(i) = self
                    .policies
                    .iter()
                    .position(|p| p.interface_id.as_deref() == Some(id))
            {
                return policy(i);
            }
        }
        let a = &self.links[li];
        Serving {
            name: Some(LinkName::Arrival(li)),
            rapid_commit: a.rapid_commit,
            preference: a.preference,
        }
    }

    /// Whether `a` lies in a configured link prefix or address pool.
    fn on_known_link(&self, a: Ipv6Addr) -> bool {
        self.policies
            .iter()
            .any(|p| p.prefix.is_some_and(|x| x.contains(a)))
            || self
                .config
                .pools
                .iter()
                .any(|p| (u128::from(p.start)..=u128::from(p.end)).contains(&u128::from(a)))
    }

    /// Validates one client message (RFC 8415 §16) and builds the answer.
    fn answer(
        &mut self,
        now: u64,
        m: &ClientMessage,
        unicast: bool,
        li: usize,
        link: Serving,
    ) -> Result<Option<ClientMessage>, DropReason> {
        let mut client_id = None;
        let mut server_id = None;
        let mut oro: &[u16] = &[];
        let mut rapid = false;
        let mut has_ia = false;
        for o in &m.options {
            match o {
                DhcpOption::ClientId(d) => client_id = Some(d.as_slice()),
                DhcpOption::ServerId(d) => server_id = Some(d.as_slice()),
                DhcpOption::Oro(v) => oro = v,
                DhcpOption::RapidCommit => rapid = true,
                DhcpOption::IaNa(_) | DhcpOption::IaTa { .. } | DhcpOption::IaPd(_) => {
                    has_ia = true
                }
                _ => {}
            }
        }
        let ours = |s: Option<&[u8]>| s == Some(self.duid.as_slice());
        let t = m.msg_type;
        // §16 validation.
        match t {
            msg::SOLICIT | msg::CONFIRM | msg::REBIND => {
                if unicast {
                    return Err(DropReason::Unicast);
                }
                if client_id.is_none() {
                    return Err(DropReason::NoClientId);
                }
                if server_id.is_some() {
                    return Err(DropReason::UnexpectedServerId);
                }
            }
            msg::REQUEST | msg::RENEW | msg::RELEASE | msg::DECLINE => {
                if client_id.is_none() {
                    return Err(DropReason::NoClientId);
                }
                match server_id {
                    None => return Err(DropReason::NoServerId),
                    Some(_) if !ours(server_id) => return Err(DropReason::ForeignServerId),
                    Some(_) => {}
                }
            }
            msg::INFORMATION_REQUEST => {
                if unicast {
                    return Err(DropReason::Unicast);
                }
                if has_ia {
                    return Err(DropReason::IaInInformationRequest);
                }
                if server_id.is_some() && !ours(server_id) {
                    return Err(DropReason::ForeignServerId);
                }
            }
            _ => return Err(DropReason::NotForServer),
        }
        let reply_type = if t == msg::SOLICIT && !(rapid && link.rapid_commit) {
            msg::ADVERTISE
        } else {
            msg::REPLY
        };
        let mut options = Vec::with_capacity(8);
        if let Some(c) = client_id {
            options.push(DhcpOption::ClientId(c.to_vec()));
        }
        options.push(DhcpOption::ServerId(self.duid.clone()));
        // Unicast Request/Renew/Release/Decline: UseMulticast only (we never send option 12).
        if unicast {
            options.push(status_opt(
                status::USE_MULTICAST,
                "send this message to ff02::1:2",
            ));
            return Ok(Some(ClientMessage {
                msg_type: msg::REPLY,
                xid: m.xid,
                options,
            }));
        }
        match t {
            msg::INFORMATION_REQUEST => {}
            msg::CONFIRM => {
                let addrs: Vec<Ipv6Addr> = m
                    .options
                    .iter()
                    .filter_map(|o| match o {
                        DhcpOption::IaNa(ia) => Some(ia),
                        _ => None,
                    })
                    .flat_map(|ia| ia.options.iter())
                    .filter_map(|o| match o {
                        DhcpOption::IaAddr(a) => Some(a.addr),
                        _ => None,
                    })
                    .collect();
                if addrs.is_empty() {
                    return Err(DropReason::ConfirmUndetermined);
                }
                let judged = if let Some(name) = link.name {
                    let name = match name {
                        LinkName::Arrival(i) => self.links[i].name.as_str(),
                        LinkName::Policy(i) => self.policies[i].name.as_str(),
                    };
                    self.bindings.confirm(now, name, &addrs)
                } else if addrs.iter().any(|a| self.on_known_link(*a)) {
                    // The addresses belong to a configured link, which the relay's
                    // link-address is not on: the client has moved.
                    Some(false)
                } else {
                    None
                };
                match judged {
                    None => return Err(DropReason::ConfirmUndetermined),
                    Some(true) => {
                        options.push(status_opt(status::SUCCESS, "all addresses on-link"))
                    }
                    Some(false) => {
                        options.push(status_opt(status::NOT_ON_LINK, "addresses not on-link"))
                    }
                }
            }
            _ => {
                let rapid_commit = t == msg::SOLICIT && rapid && link.rapid_commit;
                let preference = link.preference;
                let ctx = IaContext {
                    msg_type: t,
                    link: match link.name {
                        Some(LinkName::Arrival(i)) => self.links[i].name.as_str(),
                        Some(LinkName::Policy(i)) => self.policies[i].name.as_str(),
                        None => "",
                    },
                    client_duid: client_id.unwrap_or_default(),
                    rapid_commit,
                };
                let mut n_ia = 0u32;
                let mut refused = 0u64;
                // Release and Decline only free; the others may allocate, so they are capped.
                let cap = match t {
                    msg::SOLICIT | msg::REQUEST | msg::RENEW | msg::REBIND => {
                        self.config.limits.max_ias_per_message
                    }
                    _ => 0,
                };
                for o in &m.options {
                    if matches!(
                        o,
                        DhcpOption::IaNa(_) | DhcpOption::IaTa { .. } | DhcpOption::IaPd(_)
                    ) {
                        n_ia += 1;
                        let answer = if cap != 0 && n_ia > cap {
                            refused += 1;
                            Some(refused_ia(o))
                        } else if link.name.is_some() {
                            self.bindings.answer_ia(now, &ctx, o)
                        } else {
                            NoBindings.answer_ia(now, &ctx, o)
                        };
                        if let Some(a) = answer {
                            options.push(a);
                        }
                    }
                }
                self.links[li].counters.ia_limit += refused;
                match t {
                    msg::SOLICIT => {
                        if n_ia == 0 {
                            options.push(status_opt(
                                status::NO_ADDRS_AVAIL,
                                "no addresses available on this link",
                            ));
                        }
                        if let Some(p) = preference
                            && reply_type == msg::ADVERTISE
                        {
                            options.push(DhcpOption::Preference(p));
                        }
                        if rapid_commit {
                            options.push(DhcpOption::RapidCommit);
                        }
                    }
                    msg::RELEASE => options.push(status_opt(status::SUCCESS, "released")),
                    msg::DECLINE => options.push(status_opt(status::SUCCESS, "declined")),
                    _ => {}
                }
            }
        }
        let mut reply = ClientMessage {
            msg_type: reply_type,
            xid: m.xid,
            options,
        };
        self.add_configured(&mut reply, oro, t == msg::INFORMATION_REQUEST, li);
        Ok(Some(reply))
    }

    /// Appends the configured options the ORO selects (23 always; 32 only in a Reply to an
    /// Information-Request).
    fn add_configured(&self, reply: &mut ClientMessage, oro: &[u16], is_ir: bool, li: usize) {
        for o in &self.links[li].options {
            let c = o.code();
            let wanted = c == code::DNS_SERVERS || oro.contains(&c);
            if wanted && (c != code::INFORMATION_REFRESH_TIME || is_ir) {
                reply.options.push(o.clone());
            }
        }
    }
}

fn relay_has_source_port(r: &RelayMessage) -> bool {
    r.options
        .iter()
        .any(|o| o.code() == code::RELAY_SOURCE_PORT)
}

fn scope_for(ip: &Ipv6Addr, ifindex: u32) -> u32 {
    if ip.is_unicast_link_local() || ip.is_multicast() {
        ifindex
    } else {
        0
    }
}

/// Wraps `inner` in a Relay-Repl copying the layer's header and Interface-Id (RFC 8415 §19.3).
fn wrap_relay_repl(l: &RelayLayer<'_>, inner: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(inner.len() + 64);
    out.push(msg::RELAY_REPL);
    out.push(l.hop_count);
    out.extend_from_slice(&l.link_address.octets());
    out.extend_from_slice(&l.peer_address.octets());
    if let Some(id) = l.interface_id {
        out.extend_from_slice(&code::INTERFACE_ID.to_be_bytes());
        out.extend_from_slice(&u16::try_from(id.len()).ok()?.to_be_bytes());
        out.extend_from_slice(id);
    }
    out.extend_from_slice(&code::RELAY_MSG.to_be_bytes());
    out.extend_from_slice(&u16::try_from(inner.len()).ok()?.to_be_bytes());
    out.extend_from_slice(inner);
    Some(out)
}
