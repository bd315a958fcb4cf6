//! Fuzz body for the stream framer, kept in the library so it always
//! compiles (fuzz/ calls it).

use super::{Frame, FrameError, StreamFramer};

/// Feeds `data` to a framer in chunks whose sizes come from the data itself;
/// the framer must never panic, never hold more than its limit plus one
/// chunk, and every message frame must fit the limit.
pub fn framer(data: &[u8]) {
    const LIMIT: usize = 4096;
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(split).max(1);
    let mut framer = StreamFramer::new(LIMIT);
    for piece in rest.chunks(chunk) {
        framer.push(piece);
        assert!(
            framer.buffered() <= LIMIT + chunk,
            "buffer grew past its bound"
        );
        while let Some(frame) = framer.next_frame() {
            match frame {
                Ok(Frame::Message(m)) => assert!(m.len() <= LIMIT),
                Ok(Frame::Ping) => {}
                Err(
                    FrameError::TooLarge { .. }
                    | FrameError::BadContentLength
                    | FrameError::MissingContentLength { .. },
                ) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn framer_body_survives_samples() {
        super::framer(b"\x05OPTIONS sip:x SIP/2.0\r\nContent-Length: 3\r\n\r\nabc\r\n\r\n");
        super::framer(b"\x01\r\n\r\n\r\nl: 99999999\r\n\r\n");
        super::framer(b"");
    }
}
