//! squadlab's core: everything but the faces. The CLI and the desktop app sit
//! on top of it and it knows neither; ARCHITECTURE.md gives the layers and
//! who may import whom.

pub mod config;
pub mod data;
pub mod eval;
pub mod family;
pub mod faults;
pub mod fsutil;
pub mod host;
pub mod hub;
pub mod memory;
pub mod model;
pub mod numeric;
pub mod report;
pub mod rng;
pub mod schema;
pub mod store;
pub mod sweep;
pub mod text;
pub mod train;
