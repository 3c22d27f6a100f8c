//! The OCI runtime (issue 20) and its other direction, `export`.
pub mod export;
pub mod export_cmd;
pub mod export_rootfs;
