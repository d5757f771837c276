//! The native-messaging framing: every message is a 32-bit length in native byte order followed
//! by that many bytes (UTF-8 JSON). Reading refuses oversized messages without holding them in
//! memory; writing sends each frame whole, under a mutex, and keeps every frame under the
//! browsers' 1 MiB limit for messages from the host.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

/// A message the host sends must be shorter than this (Chrome's limit: 1 MB from the host).
pub const MAX_OUTBOUND_BYTES: usize = 1024 * 1024;

/// Bytes discarded per read when an inbound message is over the cap.
const DISCARD_CHUNK: usize = 64 * 1024;

/// What one read of the input produced.
#[derive(Debug)]
pub enum Inbound {
    /// A whole message (its bytes, not checked yet).
    Message(Vec<u8>),
    /// A message longer than the cap: its bytes were read and discarded.
    TooLarge {
        /// Its declared length.
        length: u64,
    },
    /// The input ended between two frames.
    End,
    /// The input ended inside a frame (inside the length prefix or the message).
    Truncated {
        /// Whether it ended inside the length prefix.
        in_prefix: bool,
        /// Bytes expected: 4 of a length prefix, or the message's declared length.
        expected: u64,
        /// Bytes that came before the end.
        got: u64,
    },
}

/// Reads into `buf` until it is full or the input ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads one frame. A message longer than `cap` bytes is skipped in small chunks (never held
/// in memory) and reported as [`Inbound::TooLarge`]; the body of an accepted message grows as
/// its bytes arrive, so a length prefix that promises more than follows costs no allocation
/// up front.
///
/// # Errors
/// Read errors of the input other than `Interrupted`.
pub fn read_frame(reader: &mut impl Read, cap: u64) -> io::Result<Inbound> {
    let mut prefix = [0u8; 4];
    match read_full(reader, &mut prefix)? {
        0 => return Ok(Inbound::End),
        4 => {}
        got => {
            return Ok(Inbound::Truncated {
                in_prefix: true,
                expected: 4,
                got: got as u64,
            })
        }
    }
    let length = u64::from(u32::from_ne_bytes(prefix));
    if length > cap {
        let mut chunk = vec![0u8; DISCARD_CHUNK];
        let mut left = length;
        while left > 0 {
            let want = left.min(DISCARD_CHUNK as u64) as usize;
            let got = read_full(reader, &mut chunk[..want])?;
            left -= got as u64;
            if got < want {
                return Ok(Inbound::Truncated {
                    in_prefix: false,
                    expected: length,
                    got: length - left,
                });
            }
        }
        return Ok(Inbound::TooLarge { length });
    }
    let mut body = Vec::new();
    let got = reader.take(length).read_to_end(&mut body)? as u64;
    if got < length {
        return Ok(Inbound::Truncated {
            in_prefix: false,
            expected: length,
            got,
        });
    }
    Ok(Inbound::Message(body))
}

/// `length` as the 4-byte native-order prefix, followed by `body`: one frame.
pub fn encode(body: &[u8]) -> Vec<u8> {
    let length = u32::try_from(body.len()).expect("frames are shorter than 4 GiB");
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&length.to_ne_bytes());
    frame.extend_from_slice(body);
    frame
}

/// The only writer of frames: a private duplicate of the original standard output, behind a
/// mutex, so frames from every thread arrive whole and in one piece each.
pub struct FrameWriter {
    out: Mutex<Box<dyn Write + Send>>,
    failed: AtomicBool,
}

impl FrameWriter {
    /// A writer over `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        FrameWriter {
            out: Mutex::new(out),
            failed: AtomicBool::new(false),
        }
    }

    /// Sends `message`. One that would reach [`MAX_OUTBOUND_BYTES`] is replaced by an error
    /// frame for the same `id` saying so (with id `null` if even that is too long). A write
    /// error (the browser went away) is reported on stderr once; later frames are dropped.
    pub fn send(&self, id: &Value, message: &Value) {
        let body = serde_json::to_vec(message).expect("JSON values serialize");
        if body.len() < MAX_OUTBOUND_BYTES {
            self.write(&body);
            return;
        }
        let text = format!(
            "the reply is {} bytes of JSON: a native message from the host must be shorter than {MAX_OUTBOUND_BYTES} bytes (1 MiB)",
            body.len()
        );
        let mut error = error_frame(id, "protocol", &text, None);
        let mut body = serde_json::to_vec(&error).expect("JSON values serialize");
        if body.len() >= MAX_OUTBOUND_BYTES {
            error = error_frame(&Value::Null, "protocol", &text, None);
            body = serde_json::to_vec(&error).expect("JSON values serialize");
        }
        self.write(&body);
    }

    fn write(&self, body: &[u8]) {
        if self.failed.load(Ordering::Relaxed) {
            return;
        }
        let frame = encode(body);
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = out.write_all(&frame).and_then(|()| out.flush()) {
            if !self.failed.swap(true, Ordering::Relaxed) {
                eprintln!("native_host: cannot write a frame ({e}); later replies are dropped");
            }
        }
    }

    /// Flushes the output.
    pub fn flush(&self) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = out.flush();
    }
}

/// `{"id", "event": "error", "error": {"category", "message"[, "hint"]}}`.
pub fn error_frame(id: &Value, category: &str, message: &str, hint: Option<&str>) -> Value {
    let mut error = json!({ "category": category, "message": message });
    if let Some(hint) = hint {
        error["hint"] = Value::from(hint);
    }
    json!({ "id": id, "event": "error", "error": error })
}
