//! AYIYA PoP, TIC server and AICCU-compatible client (IO shells).

#![forbid(unsafe_code)]
