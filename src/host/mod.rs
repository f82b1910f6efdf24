//! Looking at the host: `ignite doctor` (what this machine supports and which OCI runtime
//! fits), `ignite env` (the environment report) and `ignite runtime list`.

pub mod doctor;
pub mod envinfo;
pub mod inventory;
