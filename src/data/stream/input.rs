//! A command's input as an upload reads it: a read waits for data a short
//! while at a time and fails once the command is interrupted. A connection
//! broker's request whose producer stalled then stops at once when its
//! client is signalled: its temporary is removed and its stream and
//! connection go back, instead of when the input ends.

use std::io::{self, Read};
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::process::signals;

/// How long a read waits for data before it looks for an interrupt again.
const WAKE_MS: u16 = 100;

/// An input (standard input, a pipe or a file) that stops at an interrupt.
pub struct Input<F>(pub F);

impl<F: Read + AsFd> Read for Input<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if signals::interrupted() {
                return Err(io::Error::other("the command was interrupted"));
            }
            let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(WAKE_MS)) {
                Ok(0) | Err(Errno::EINTR) => continue,
                // Data, the end, or an error the read then reports.
                Ok(_) | Err(_) => return self.0.read(buf),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::scope::Scope;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_stalled_input_stops_at_an_interrupt() {
        let (mut producer, consumer) = UnixStream::pair().unwrap();
        producer.write_all(b"abc").unwrap();
        let request = Scope::request(9, "backup_data", None);
        let reader = {
            let request = std::sync::Arc::clone(&request);
            std::thread::spawn(move || {
                let _in = request.enter();
                let mut input = Input(consumer);
                let mut got = Vec::new();
                let mut buf = [0u8; 8];
                loop {
                    match input.read(&mut buf) {
                        Ok(0) => return (got, None),
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(e) => return (got, Some(e)),
                    }
                }
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(300));
        signals::interrupt(&request);
        let (got, failed) = reader.join().unwrap();
        assert_eq!(got, b"abc");
        assert!(failed.is_some(), "it stopped without an end of input");
        drop(producer);
    }
}
