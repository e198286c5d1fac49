//! The one home of unsafe syscalls in v6home.
//!
//! Every `unsafe` block in v6home lives in this crate, each with a `// SAFETY:` comment.
