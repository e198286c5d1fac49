//! The AYIYA PoP: the sans-IO tunnel table ([`table`]).

pub mod table;

pub use table::{
    InAction, OutAction, PopDrop, PopStatus, PopTable, TicCounters, TunnelState, TunnelStatus,
};
