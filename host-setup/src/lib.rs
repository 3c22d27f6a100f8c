//! host-setup: the host side of the RED/BLUE lab. Each module is one section of the
//! tutorial; `plan` puts them in order.
pub mod error;
