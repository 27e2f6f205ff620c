use std::io;

/// Errors of the L2 responder's I/O side. Codec errors are [`crate::packet::DecodeError`]
/// and never leave the responder: a bad frame is dropped and counted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to start the L2 responder: not inside a tokio runtime")]
    NoRuntime,
    #[error("failed to list network interfaces (getifaddrs)")]
    ListInterfaces(#[source] io::Error),
    #[error("failed to find interface {iface}")]
    NoSuchInterface { iface: String },
    #[error("failed to open an AF_PACKET socket on {iface}")]
    OpenSocket {
        iface: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to register the AF_PACKET socket of {iface} with the tokio reactor")]
    Register {
        iface: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to send a frame on {iface}")]
    Send {
        iface: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to update the owned IPs: the L2 responder has stopped")]
    Stopped,
}
