//! Images: references, platforms, the registry client (placeholder until
//! imgstore's mod.rs is merged).
pub mod auth;
pub mod platform;
pub mod reference;
pub mod registry;
