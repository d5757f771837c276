//! ggml's RPC backend: remote devices served by `rpc-server`s, and a server of this process's
//! own devices.
//!
//! - [`RpcEndpoint`]: `HOST:PORT` (IPv6 in brackets), parsed and checked in Rust.
//! - [`probe`]: a TCP connect with a timeout and the protocol's HELLO exchange, exactly as
//!   ggml-rpc does it, then the remote device count and memory: everything the C client would
//!   abort on is found out here first.
//! - [`crate::ModelParams::with_rpc_servers`]: the servers' devices join the devices a model is
//!   loaded on (layers split over local and remote devices by `gpu_layers`, `tensor_split`,
//!   `main_gpu`).
//! - [`RpcServer`]: serves chosen local devices (`ggml_backend_rpc_start_server`), after the
//!   endpoint, the port, the devices, the thread count and the cache directory were checked.
//!
//! # Failure isolation
//! The pinned ggml-rpc aborts the client process when a server cannot be reached, fails the
//! handshake, or is lost later (`GGML_ABORT`, `RPC_STATUS_ASSERT`), and a server that stops
//! answering blocks it for good. The probe catches the first two before any C call; nothing in
//! process can catch the third. So a model loaded in process with RPC servers must say that it
//! accepts this ([`crate::ModelParams::with_rpc_in_process`]); the contract-keeping way is
//! [`crate::worker::WorkerModel`], which runs the model in a child process and turns its death
//! or stall into a typed error.
//!
//! # Security
//! The protocol has neither authentication nor encryption, and the server trusts its client
//! (malformed requests can abort it): serve on loopback, or on a network where every host is
//! trusted.

mod client;
mod endpoint;
mod probe;
mod server;

pub(crate) use client::{attach, in_process_refused, RpcLease};
pub use endpoint::{RpcEndpoint, RpcHost};
pub use probe::{probe, ProbeOptions, RemoteDeviceMemory, RpcServerInfo};
pub use server::{RpcServer, RpcServerOptions};

/// The protocol version this build speaks (`RPC_PROTO_MAJOR_VERSION`, `_MINOR_`, `_PATCH_`): a
/// server must answer with the same major version and a minor version not above it.
pub const PROTOCOL_VERSION: (u8, u8, u8) = (
    crate::sys::upstream::rpc::RPC_PROTO_MAJOR_VERSION,
    crate::sys::upstream::rpc::RPC_PROTO_MINOR_VERSION,
    crate::sys::upstream::rpc::RPC_PROTO_PATCH_VERSION,
);

/// At most this many servers per model (`GGML_RPC_MAX_SERVERS`).
pub const MAX_SERVERS: usize = crate::sys::upstream::rpc::GGML_RPC_MAX_SERVERS;

/// What is wrong with an RPC endpoint, server or server configuration
/// ([`crate::Error::Rpc`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RpcProblem {
    /// Not `HOST:PORT` (IPv6 in brackets), or a port outside 1..=65535.
    #[error("malformed endpoint")]
    Malformed,
    /// Valid, but the pinned ggml-rpc cannot use it (IPv6: it connects and listens over IPv4
    /// only).
    #[error("unsupported endpoint")]
    Unsupported,
    /// The host does not resolve, or the TCP connection was refused or timed out.
    #[error("unreachable")]
    Unreachable,
    /// Connected, but no answer to HELLO in time (not an RPC server, or one busy with another
    /// client: the pinned server serves one client at a time).
    #[error("no answer")]
    NoAnswer,
    /// The peer does not speak ggml's RPC protocol (closed the connection, or answered with
    /// sizes of another protocol).
    #[error("not a ggml RPC server")]
    NotRpc,
    /// An RPC server of another protocol version.
    #[error("protocol version mismatch")]
    Version,
    /// The server offers no device.
    #[error("no remote device")]
    NoDevices,
    /// The same server (after name resolution) listed twice, or too many servers.
    #[error("bad server list")]
    ServerList,
    /// The loaded build has no RPC plugin.
    #[error("RPC not supported by the loaded build")]
    NoPlugin,
    /// In-process use was not accepted (see [`crate::ModelParams::with_rpc_in_process`]).
    #[error("in-process RPC not accepted")]
    InProcess,
    /// A server address that cannot be bound (in use, not an address of this machine, no
    /// permission).
    #[error("cannot listen")]
    Bind,
    /// A device name that is not a local device of the loaded build (or named twice).
    #[error("unknown device")]
    Device,
    /// A thread count of 0 or above the limit.
    #[error("invalid thread count")]
    Threads,
    /// A cache directory that cannot be created or written.
    #[error("unusable cache directory")]
    CacheDir,
    /// The server stopped (ggml-rpc returned: it could not create its socket, or `accept`
    /// failed).
    #[error("server stopped")]
    Stopped,
}

impl RpcProblem {
    /// Which kind of problem this is.
    pub fn category(self) -> crate::Category {
        match self {
            RpcProblem::NoPlugin | RpcProblem::Version => crate::Category::Installation,
            RpcProblem::Stopped => crate::Category::Hardware,
            _ => crate::Category::Configuration,
        }
    }

    /// What to do about it.
    pub fn hint(self) -> &'static str {
        match self {
            RpcProblem::Malformed => "write endpoints as HOST:PORT (IPv6 as [ADDR]:PORT), ports 1..=65535, several separated by commas",
            RpcProblem::Unsupported => "use an IPv4 address or a host name that resolves to one (the pinned ggml-rpc speaks IPv4 only)",
            RpcProblem::Unreachable => "start the server (cargo run --example rpc_server -- --port PORT) and check host, port and firewall",
            RpcProblem::NoAnswer => "check that the endpoint is an rpc-server and that no other client is connected to it (it serves one at a time)",
            RpcProblem::NotRpc => "point the endpoint at a ggml rpc-server",
            RpcProblem::Version => "run the server from the same llama.cpp build as the client (protocol 7.0)",
            RpcProblem::NoDevices => "start the server with at least one device (--device NAME)",
            RpcProblem::ServerList => "list each server once, at most 16",
            RpcProblem::NoPlugin => "use a build made with -DGGML_RPC=ON (variants/provision builds one)",
            RpcProblem::InProcess => "run the model in a worker process (worker::WorkerModel), or accept in-process RPC with ModelParams::with_rpc_in_process(true)",
            RpcProblem::Bind => "choose a free port and an address of this machine",
            RpcProblem::Device => "name a device the loaded build offers (cargo run --example doctor lists them)",
            RpcProblem::Threads => "use at least one thread",
            RpcProblem::CacheDir => "name a directory that can be created and written",
            RpcProblem::Stopped => "see the server's stderr; start it again",
        }
    }
}

pub(crate) fn error(
    endpoint: impl std::fmt::Display,
    problem: RpcProblem,
    reason: impl Into<String>,
) -> crate::Error {
    crate::Error::Rpc {
        endpoint: endpoint.to_string(),
        problem,
        reason: reason.into(),
    }
}
