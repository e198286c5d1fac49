//! Privacy addresses: sysctl/manager configuration and a userspace SLAAC agent.

#![forbid(unsafe_code)]
