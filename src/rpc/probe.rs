//! The Rust side of ggml-rpc's wire protocol: what the C client would abort on, found out first.
//!
//! A request is `| command (1 byte) | size (8 bytes) | data (size bytes) |`, a response
//! `| size (8 bytes) | data (size bytes) |`, integers in the host's byte order (little-endian on
//! every target this crate supports), structs packed. The first command of a connection must be
//! HELLO; `ggml-rpc.cpp`'s `negotiate_hello` accepts a server whose major version equals
//! [`super::PROTOCOL_VERSION`]'s and whose minor version is not above it.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::time::Duration;

use super::{error, RpcEndpoint, RpcProblem};
use crate::error::Result;
use crate::sys::upstream::rpc::{
    RPC_CMD_DEVICE_COUNT, RPC_CMD_GET_DEVICE_MEMORY, RPC_CMD_HELLO, RPC_DEVICE_COUNT_RSP_SIZE,
    RPC_GET_DEVICE_MEMORY_REQ_SIZE, RPC_GET_DEVICE_MEMORY_RSP_SIZE, RPC_HELLO_REQ_SIZE,
    RPC_HELLO_RSP_SIZE, RPC_PROTO_MAJOR_VERSION, RPC_PROTO_MINOR_VERSION,
};

/// More devices than this on one server is taken for a garbled answer.
const MAX_REMOTE_DEVICES: u32 = 1024;

/// Time limits of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeOptions {
    /// For the TCP connection.
    pub connect_timeout: Duration,
    /// For each read and write after it.
    pub io_timeout: Duration,
}

impl Default for ProbeOptions {
    /// 5 s to connect, 10 s per read or write.
    fn default() -> Self {
        ProbeOptions {
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(10),
        }
    }
}

/// Memory of one remote device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteDeviceMemory {
    /// The device's index on its server.
    pub index: u32,
    /// Free bytes.
    pub free: u64,
    /// Total bytes.
    pub total: u64,
}

/// What a probe learned about a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcServerInfo {
    /// The endpoint as given.
    pub endpoint: RpcEndpoint,
    /// The IPv4 address connected to.
    pub address: SocketAddrV4,
    /// The server's protocol version (major, minor, patch).
    pub version: (u8, u8, u8),
    /// Its devices, in index order.
    pub devices: Vec<RemoteDeviceMemory>,
}

/// Connects to `endpoint` with a timeout, runs the HELLO exchange as ggml-rpc does, and asks
/// the device count and each device's memory; then closes the connection. Nothing reaches C.
///
/// # Errors
/// [`crate::Error::Rpc`] naming the endpoint: `Unsupported` (IPv6), `Unreachable` (no
/// address, refused, timed out), `NoAnswer` (no HELLO answer in time), `NotRpc` (another
/// protocol), `Version` (another protocol version), `NoDevices`.
#[doc(alias = "ggml_backend_rpc_get_device_memory")]
pub fn probe(endpoint: &RpcEndpoint, options: &ProbeOptions) -> Result<RpcServerInfo> {
    let address = endpoint.resolve()?;
    probe_address(endpoint, address, options)
}

/// [`probe`] of an already resolved address.
pub(crate) fn probe_address(
    endpoint: &RpcEndpoint,
    address: SocketAddrV4,
    options: &ProbeOptions,
) -> Result<RpcServerInfo> {
    let fail = |problem, reason: String| error(endpoint, problem, reason);
    let mut stream =
        TcpStream::connect_timeout(&address.into(), options.connect_timeout).map_err(|e| {
            let why = if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock {
                format!("no connection within {:?}", options.connect_timeout)
            } else {
                format!("cannot connect to {address}: {e}")
            };
            fail(RpcProblem::Unreachable, why)
        })?;
    let io = |e: std::io::Error, during: &str| {
        if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) {
            fail(
                RpcProblem::NoAnswer,
                format!(
                    "no answer to {during} within {:?} (not an RPC server, or busy with another client: the pinned server serves one client at a time)",
                    options.io_timeout
                ),
            )
        } else if e.kind() == ErrorKind::UnexpectedEof {
            fail(
                RpcProblem::NotRpc,
                format!("the peer closed the connection during {during}"),
            )
        } else {
            fail(RpcProblem::NotRpc, format!("{during}: {e}"))
        }
    };
    for setting in [
        stream.set_read_timeout(Some(options.io_timeout)),
        stream.set_write_timeout(Some(options.io_timeout)),
        stream.set_nodelay(true),
    ] {
        setting.map_err(|e| io(e, "setting up the connection"))?;
    }

    // HELLO: the client's transport capabilities; all zero means plain TCP.
    let hello = [0u8; RPC_HELLO_REQ_SIZE];
    let response = command(&mut stream, RPC_CMD_HELLO, &hello, RPC_HELLO_RSP_SIZE)
        .map_err(|e| match e {
            Exchange::Io(e) => io(e, "HELLO"),
            Exchange::Size(size) => fail(
                RpcProblem::NotRpc,
                format!(
                    "HELLO answered with {size} bytes instead of {RPC_HELLO_RSP_SIZE} (a server of another protocol generation, or not an RPC server)"
                ),
            ),
        })?;
    let version = (response[0], response[1], response[2]);
    if version.0 != RPC_PROTO_MAJOR_VERSION || version.1 > RPC_PROTO_MINOR_VERSION {
        return Err(fail(
            RpcProblem::Version,
            format!(
                "the server speaks protocol {}.{}.{}; this build needs {RPC_PROTO_MAJOR_VERSION}.x with x <= {RPC_PROTO_MINOR_VERSION}",
                version.0, version.1, version.2
            ),
        ));
    }

    let count = command(
        &mut stream,
        RPC_CMD_DEVICE_COUNT,
        &[],
        RPC_DEVICE_COUNT_RSP_SIZE,
    )
    .map_err(|e| e.into_error(&io, &fail, "DEVICE_COUNT"))?;
    let count = u32::from_le_bytes([count[0], count[1], count[2], count[3]]);
    if count == 0 {
        return Err(fail(
            RpcProblem::NoDevices,
            "the server offers no device".into(),
        ));
    }
    if count > MAX_REMOTE_DEVICES {
        return Err(fail(
            RpcProblem::NotRpc,
            format!("the server reports {count} devices"),
        ));
    }
    let mut devices = Vec::with_capacity(count as usize);
    for index in 0..count {
        let request: [u8; RPC_GET_DEVICE_MEMORY_REQ_SIZE] = index.to_le_bytes();
        let memory = command(
            &mut stream,
            RPC_CMD_GET_DEVICE_MEMORY,
            &request,
            RPC_GET_DEVICE_MEMORY_RSP_SIZE,
        )
        .map_err(|e| e.into_error(&io, &fail, "GET_DEVICE_MEMORY"))?;
        let word = |at: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&memory[at..at + 8]);
            u64::from_le_bytes(bytes)
        };
        devices.push(RemoteDeviceMemory {
            index,
            free: word(0),
            total: word(8),
        });
    }
    log::debug!(
        "RPC server {endpoint} ({address}): protocol {}.{}.{}, {} devices",
        version.0,
        version.1,
        version.2,
        devices.len()
    );
    Ok(RpcServerInfo {
        endpoint: endpoint.clone(),
        address,
        version,
        devices,
    })
}

enum Exchange {
    Io(std::io::Error),
    /// The response's size field, when it is not the expected one.
    Size(u64),
}

impl Exchange {
    fn into_error(
        self,
        io: &dyn Fn(std::io::Error, &str) -> crate::Error,
        fail: &dyn Fn(RpcProblem, String) -> crate::Error,
        during: &str,
    ) -> crate::Error {
        match self {
            Exchange::Io(e) => io(e, during),
            Exchange::Size(size) => fail(
                RpcProblem::NotRpc,
                format!("{during} answered with {size} bytes"),
            ),
        }
    }
}

/// Sends one command and reads a response of exactly `expected` bytes.
fn command(
    stream: &mut TcpStream,
    cmd: u8,
    input: &[u8],
    expected: usize,
) -> std::result::Result<Vec<u8>, Exchange> {
    let mut message = Vec::with_capacity(9 + input.len());
    message.push(cmd);
    message.extend_from_slice(&(input.len() as u64).to_le_bytes());
    message.extend_from_slice(input);
    stream.write_all(&message).map_err(Exchange::Io)?;
    stream.flush().map_err(Exchange::Io)?;
    let mut size = [0u8; 8];
    stream.read_exact(&mut size).map_err(Exchange::Io)?;
    let size = u64::from_le_bytes(size);
    if size != expected as u64 {
        return Err(Exchange::Size(size));
    }
    let mut data = vec![0u8; expected];
    stream.read_exact(&mut data).map_err(Exchange::Io)?;
    Ok(data)
}
