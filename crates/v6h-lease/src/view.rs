//! Lease listings for `v6home dhcp6 leases`: a serializable row type and a table formatter.

use crate::record::{LeaseRecord, LeaseState};
use crate::types::IaKind;
use serde::Serialize;

/// One lease as shown to an operator (`--json` serializes this).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeaseView {
    /// Link name.
    pub link: String,
    /// `na` or `pd`.
    pub kind: IaKind,
    /// The address or prefix.
    pub lease: String,
    /// `bound`, `declined` or `offered`.
    pub state: String,
    /// Client DUID in hex.
    pub duid: String,
    /// IAID.
    pub iaid: u32,
    /// Preferred lifetime granted.
    pub preferred: u32,
    /// Valid lifetime granted.
    pub valid: u32,
    /// Absolute expiry (seconds, caller's clock).
    pub expires: u64,
    /// Seconds left at the time of listing.
    pub remaining: u64,
}

impl LeaseView {
    /// A view of `r` as of `now`; `offered` marks a tentative (Advertise) hold.
    pub fn new(r: &LeaseRecord, offered: bool, now: u64) -> Self {
        let state = if offered {
            "offered"
        } else {
            match r.state {
                LeaseState::Bound => "bound",
                LeaseState::Declined => "declined",
            }
        };
        LeaseView {
            link: r.link.clone(),
            kind: r.kind(),
            lease: r.resource.to_string(),
            state: state.to_string(),
            duid: hex::encode(&r.duid),
            iaid: r.iaid,
            preferred: r.preferred,
            valid: r.valid,
            expires: r.expires,
            remaining: r.expires.saturating_sub(now),
        }
    }
}

/// Formats leases as an aligned text table with a header line.
pub fn format_table(rows: &[LeaseView]) -> String {
    let header = [
        "LINK",
        "TYPE",
        "LEASE",
        "STATE",
        "IAID",
        "VALID",
        "REMAINING",
        "DUID",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.link.clone(),
                r.kind.to_string(),
                r.lease.clone(),
                r.state.clone(),
                r.iaid.to_string(),
                r.valid.to_string(),
                r.remaining.to_string(),
                r.duid.clone(),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for c in &cells {
        for (w, s) in width.iter_mut().zip(c.iter()) {
            *w = (*w).max(s.len());
        }
    }
    let mut out = String::new();
    let mut line = |cols: Vec<&str>| {
        let mut l = String::new();
        for (i, (s, w)) in cols.iter().zip(width.iter()).enumerate() {
            if i + 1 == cols.len() {
                l.push_str(s);
            } else {
                l.push_str(&format!("{s:<w$}  "));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for c in &cells {
        line(c.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Resource;

    #[test]
    fn table_and_json() {
        let r = LeaseRecord {
            link: "lan0".into(),
            duid: vec![0, 3, 0, 1, 0xaa],
            iaid: 7,
            resource: Resource::Addr("2001:db8::5".parse().unwrap()),
            state: LeaseState::Bound,
            preferred: 100,
            valid: 200,
            expires: 1200,
        };
        let v = LeaseView::new(&r, false, 1000);
        assert_eq!(v.remaining, 200);
        let t = format_table(std::slice::from_ref(&v));
        assert_eq!(
            t,
            "LINK  TYPE  LEASE        STATE  IAID  VALID  REMAINING  DUID\n\
             lan0  na    2001:db8::5  bound  7     200    200        00030001aa\n"
        );
        let j = serde_json::to_value(&v).unwrap();
        assert_eq!(j["kind"], "na");
        assert_eq!(j["lease"], "2001:db8::5");
        assert_eq!(j["state"], "bound");
        assert_eq!(format_table(&[]).lines().count(), 1);
    }
}
