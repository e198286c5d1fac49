//! The AYIYA PoP: the sans-IO tunnel table ([`table`]) and the kernel state it needs
//! ([`reconcile`]).

pub mod reconcile;
pub mod table;

pub use table::{
    InAction, OutAction, PopDrop, PopStatus, PopTable, TicCounters, TunnelState, TunnelStatus,
};
