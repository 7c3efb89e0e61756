//! Integration tests of the host: the real `wascc-host` binary serving real
//! waSCC 0.x fixtures and our own actors over real HTTP.

mod claims;
mod contracts;
mod faults;
mod fixtures;
mod lattice;
mod manifest;
mod placement;
mod portable;
mod providers;
mod shards;
mod support;
