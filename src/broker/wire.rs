//! The broker's messages on its Unix socket: each frame is a 4-byte
//! big-endian length and a JSON body; a request's standard input or output
//! travels with its frame (`SCM_RIGHTS`). Both ends check that the other is
//! the same user (`SO_PEERCRED`).

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};

use crate::protocol::args::Command;

/// One message, either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Message {
    /// Client: run this command, as the client parsed it (its local paths
    /// absolute).
    Run {
        command: Command,
        cwd: String,
        pid: u32,
        /// The client's test pause point (test builds).
        pause: Option<String>,
        /// When the client process started (Unix time, µs): a request's
        /// time counts from there.
        #[serde(default)]
        started_us: Option<u64>,
    },
    /// Client, once accepted: its standard input or output comes with this.
    Handover,
    /// Hook: stop once what runs is finished.
    Stop,
    /// Client, on a signal: stop the command and remove its temporaries.
    Cancel,
    /// Broker: the request is taken and runs now.
    Accepted { broker_pid: u32 },
    /// Broker: the outcome, the exit code and the one stderr line;
    /// `cancelled` when a cancel stopped it (its temporaries are removed).
    Done {
        code: u8,
        line: Option<String>,
        cancelled: bool,
    },
}

/// Far more than any command line.
const MAX_FRAME: usize = 1 << 20;

fn frame(msg: &Message) -> io::Result<Vec<u8>> {
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    let len = u32::try_from(body.len()).map_err(io::Error::other)?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend(body);
    Ok(out)
}

/// Sends `msg`, with `fd` when given.
pub fn send(sock: &UnixStream, msg: &Message, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    let bytes = frame(msg)?;
    let sent = match fd {
        None => 0,
        Some(fd) => {
            let fds = [fd];
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
                return Err(io::Error::other("cannot attach the descriptor"));
            }
            sendmsg(
                sock.as_fd(),
                &[IoSlice::new(&bytes)],
                &mut control,
                SendFlags::NOSIGNAL,
            )?
        }
    };
    (&*sock).write_all(&bytes[sent..])
}

/// Receives one message and the descriptor that came with it; None when the
/// other end closed the socket before a frame began.
pub fn recv(sock: &UnixStream) -> io::Result<Option<(Message, Option<OwnedFd>)>> {
    let mut head = [0u8; 4];
    let mut got = 0;
    let mut fd = None;
    while got < head.len() {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let r = recvmsg(
            sock.as_fd(),
            &mut [IoSliceMut::new(&mut head[got..])],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        );
        let n = match r {
            Ok(m) => m.bytes,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = m {
                for f in fds {
                    fd.get_or_insert(f);
                }
            }
        }
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        got += n;
    }
    let len = u32::from_be_bytes(head) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::other(format!("a message of {len} bytes")));
    }
    let mut body = vec![0u8; len];
    (&*sock).read_exact(&mut body)?;
    let msg = serde_json::from_slice(&body).map_err(io::Error::other)?;
    Ok(Some((msg, fd)))
}

/// Whether the process at the other end of `sock` runs as this user.
pub fn same_user(sock: &UnixStream) -> io::Result<bool> {
    let cred = rustix::net::sockopt::socket_peercred(sock.as_fd())?;
    Ok(cred.uid.as_raw() == nix::unistd::getuid().as_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_and_its_descriptor_arrive_together() {
        let (a, b) = UnixStream::pair().unwrap();
        let file = tempfile::tempfile().unwrap();
        let argv = [
            "gpbackup_ddboost_plugin",
            "backup_data",
            "/c.yaml",
            "/d/backups/20250101/20250101120000/obj",
        ];
        let argv: Vec<std::ffi::OsString> = argv.iter().map(Into::into).collect();
        let msg = Message::Run {
            command: crate::protocol::args::parse(&argv).unwrap().command,
            cwd: "/".into(),
            pid: 7,
            pause: None,
            started_us: Some(1),
        };
        send(&a, &msg, Some(file.as_fd())).unwrap();
        send(&a, &Message::Cancel, None).unwrap();
        let (got, fd) = recv(&b).unwrap().unwrap();
        assert_eq!(got, msg);
        assert!(fd.is_some());
        let (got, fd) = recv(&b).unwrap().unwrap();
        assert_eq!(got, Message::Cancel);
        assert!(fd.is_none());
        assert!(same_user(&b).unwrap());
        drop(a);
        assert!(recv(&b).unwrap().is_none());
    }

    #[test]
    fn a_command_travels_typed_and_is_checked_as_it_is_read() {
        let key = "/d/backups/20250101/20250101120000/gpbackup_0_20250101120000";
        for args in [
            vec!["backup_data", "/c.yaml", key],
            vec!["restore_data", "/c.yaml", key],
            vec!["restore_data_subset", "/c.yaml", key, "/tmp/offsets"],
        ] {
            let argv: Vec<std::ffi::OsString> = std::iter::once("gpbackup_ddboost_plugin")
                .chain(args)
                .map(Into::into)
                .collect();
            let msg = Message::Run {
                command: crate::protocol::args::parse(&argv).unwrap().command,
                cwd: "/".into(),
                pid: 7,
                pause: None,
                started_us: None,
            };
            let text = String::from_utf8(frame(&msg).unwrap()[4..].to_vec()).unwrap();
            assert_eq!(serde_json::from_str::<Message>(&text).unwrap(), msg);
            // A key that is not one (a ".." in it) is refused as it is read.
            let bad = text.replace("20250101120000/gpbackup_0", "20250101120000/../gpbackup_0");
            assert!(serde_json::from_str::<Message>(&bad).is_err(), "{bad}");
        }
    }
}
