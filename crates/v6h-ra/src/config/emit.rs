//! The model back in radvd.conf syntax, every value spelled out, except options
//! newer than radvd 2.19 (UnrestrictedUnicast, RemoveAdvOnExit, AdvDHCPv6PDPreferred,
//! AdvSNACRouterFlag), which are written only when they differ from the default, so
//! configurations that use no new feature load in radvd 2.19 as well.

use super::lexer::is_bare_string;
use super::model::*;
use std::fmt::Write;

fn on(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// Seconds as radvd.conf NUMBER or DECIMAL (Rust's shortest round-trip form).
fn secs(v: f64) -> String {
    let s = format!("{v}");
    if s.contains('.') || s.bytes().all(|b| b.is_ascii_digit()) {
        s
    } else {
        // Unreachable for validated values (finite, 0..=65535); keep the output parseable.
        format!("{v:.3}")
    }
}

fn word(s: &str) -> String {
    if is_bare_string(s) {
        s.to_string()
    } else {
        format!("\"{s}\"")
    }
}

pub(crate) fn emit(cfg: &Config) -> String {
    let mut out = String::new();
    for (i, it) in cfg.interfaces.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        iface(&mut out, it);
    }
    out
}

fn iface(o: &mut String, it: &Interface) {
    let _ = writeln!(o, "interface {} {{", it.name);
    let mut line = |k: &str, v: String| {
        let _ = writeln!(o, "\t{k} {v};");
    };
    line("IgnoreIfMissing", on(it.ignore_if_missing).into());
    line("AdvSendAdvert", on(it.adv_send_advert).into());
    line("UnicastOnly", on(it.unicast_only).into());
    if it.unrestricted_unicast {
        line("UnrestrictedUnicast", "on".into());
    }
    line(
        "AdvRASolicitedUnicast",
        on(it.adv_ra_solicited_unicast).into(),
    );
    line("MaxRtrAdvInterval", secs(it.max_rtr_adv_interval));
    line("MinRtrAdvInterval", secs(it.min_rtr_adv_interval));
    line("MinDelayBetweenRAs", secs(it.min_delay_between_ras));
    line("AdvManagedFlag", on(it.adv_managed_flag).into());
    line("AdvOtherConfigFlag", on(it.adv_other_config_flag).into());
    line("AdvLinkMTU", it.adv_link_mtu.to_string());
    line("AdvRAMTU", it.adv_ra_mtu.to_string());
    line("AdvReachableTime", it.adv_reachable_time.to_string());
    line("AdvRetransTimer", it.adv_retrans_timer.to_string());
    line("AdvCurHopLimit", it.adv_cur_hop_limit.to_string());
    line("AdvDefaultLifetime", it.adv_default_lifetime.to_string());
    line(
        "AdvDefaultPreference",
        it.adv_default_preference.keyword().into(),
    );
    line("AdvSourceLLAddress", on(it.adv_source_ll_address).into());
    if !it.remove_adv_on_exit {
        line("RemoveAdvOnExit", "off".into());
    }
    line("AdvHomeAgentFlag", on(it.adv_home_agent_flag).into());
    line("AdvHomeAgentInfo", on(it.adv_home_agent_info).into());
    line("HomeAgentLifetime", it.home_agent_lifetime.to_string());
    line("HomeAgentPreference", it.home_agent_preference.to_string());
    line(
        "AdvMobRtrSupportFlag",
        on(it.adv_mob_rtr_support_flag).into(),
    );
    line("AdvIntervalOpt", on(it.adv_interval_opt).into());
    if let Some(url) = &it.adv_captive_portal_api {
        line("AdvCaptivePortalAPI", format!("\"{url}\""));
    }
    if it.adv_snac_router_flag {
        line("AdvSNACRouterFlag", "on".into());
    }

    for p in &it.prefix {
        let _ = writeln!(o, "\n\tprefix {}/{} {{", p.prefix, p.len);
        let mut l = |k: &str, v: String| {
            let _ = writeln!(o, "\t\t{k} {v};");
        };
        l("AdvOnLink", on(p.adv_on_link).into());
        l("AdvAutonomous", on(p.adv_autonomous).into());
        l("AdvRouterAddr", on(p.adv_router_addr).into());
        if p.adv_dhcpv6_pd_preferred {
            l("AdvDHCPv6PDPreferred", "on".into());
        }
        l("AdvValidLifetime", p.adv_valid_lifetime.to_string());
        l("AdvPreferredLifetime", p.adv_preferred_lifetime.to_string());
        l("DeprecatePrefix", on(p.deprecate_prefix).into());
        l("DecrementLifetimes", on(p.decrement_lifetimes).into());
        if let Some(b) = &p.base6_interface {
            l("Base6Interface", word(b));
        }
        if let Some(b) = &p.base6to4_interface {
            l("Base6to4Interface", word(b));
        }
        let _ = writeln!(o, "\t}};");
    }
    for r in &it.route {
        let _ = writeln!(o, "\n\troute {}/{} {{", r.prefix, r.len);
        let _ = writeln!(
            o,
            "\t\tAdvRoutePreference {};",
            r.adv_route_preference.keyword()
        );
        let _ = writeln!(o, "\t\tAdvRouteLifetime {};", r.adv_route_lifetime);
        let _ = writeln!(o, "\t\tRemoveRoute {};", on(r.remove_route));
        let _ = writeln!(o, "\t}};");
    }
    for r in &it.rdnss {
        let addrs: Vec<String> = r.addresses.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(o, "\n\tRDNSS {} {{", addrs.join(" "));
        let _ = writeln!(o, "\t\tAdvRDNSSLifetime {};", r.adv_rdnss_lifetime);
        let _ = writeln!(o, "\t\tFlushRDNSS {};", on(r.flush_rdnss));
        let _ = writeln!(o, "\t}};");
    }
    for d in &it.dnssl {
        let names: Vec<String> = d.suffixes.iter().map(|s| word(s)).collect();
        let _ = writeln!(o, "\n\tDNSSL {} {{", names.join(" "));
        let _ = writeln!(o, "\t\tAdvDNSSLLifetime {};", d.adv_dnssl_lifetime);
        let _ = writeln!(o, "\t\tFlushDNSSL {};", on(d.flush_dnssl));
        let _ = writeln!(o, "\t}};");
    }
    if !it.clients.is_empty() {
        let _ = writeln!(o, "\n\tclients {{");
        for c in &it.clients {
            let _ = writeln!(o, "\t\t{}{};", if c.excluded { "!" } else { "" }, c.address);
        }
        let _ = writeln!(o, "\t}};");
    }
    if !it.adv_ra_src_address.is_empty() {
        let _ = writeln!(o, "\n\tAdvRASrcAddress {{");
        for a in &it.adv_ra_src_address {
            let _ = writeln!(o, "\t\t{a};");
        }
        let _ = writeln!(o, "\t}};");
    }
    for n in &it.nat64prefix {
        let _ = writeln!(o, "\n\tnat64prefix {}/{} {{", n.prefix, n.len);
        let _ = writeln!(o, "\t\tAdvValidLifetime {};", n.adv_valid_lifetime);
        let _ = writeln!(o, "\t}};");
    }
    if !it.autoignoreprefixes.is_empty() {
        let _ = writeln!(o, "\n\tautoignoreprefixes {{");
        for p in &it.autoignoreprefixes {
            let _ = writeln!(o, "\t\t{}/{};", p.prefix, p.len);
        }
        let _ = writeln!(o, "\t}};");
    }
    for a in &it.abro {
        match a.len {
            Some(l) => {
                let _ = writeln!(o, "\n\tabro {}/{l} {{", a.address);
            }
            None => {
                let _ = writeln!(o, "\n\tabro {} {{", a.address);
            }
        }
        let _ = writeln!(o, "\t\tAdvVersionLow {};", a.adv_version_low);
        let _ = writeln!(o, "\t\tAdvVersionHigh {};", a.adv_version_high);
        // The 2.19 spelling; keywords are caseless from 2.20 on.
        let _ = writeln!(o, "\t\tAdvValidLifeTime {};", a.adv_valid_lifetime);
        let _ = writeln!(o, "\t}};");
    }
    for l in &it.lowpanco {
        let _ = writeln!(o, "\n\tlowpanco {{");
        let _ = writeln!(o, "\t\tAdvContextLength {};", l.adv_context_length);
        let _ = writeln!(
            o,
            "\t\tAdvContextCompressionFlag {};",
            on(l.adv_context_compression_flag)
        );
        let _ = writeln!(o, "\t\tAdvContextID {};", l.adv_context_id);
        let _ = writeln!(o, "\t\tAdvLifeTime {};", l.adv_life_time);
        let _ = writeln!(o, "\t}};");
    }
    let _ = writeln!(o, "}};");
}
