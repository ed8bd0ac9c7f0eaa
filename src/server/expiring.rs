//! The `token-expiring` event: a stream opened with a token that expires gets it
//! `--token-notice` before `exp`, so a page can fetch a fresh token and
//! reconnect (resuming from its last id) before the stream ends. Named, without an
//! `id:` line (the client's last id does not move); its data is one line of JSON:
//! `{"exp":<Unix seconds>,"expires_in":<seconds left when sent>}`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::sse::{self, Event, Frame};

/// The event's name.
pub const EVENT: &str = "token-expiring";

/// The event for a token that expires at `exp`, and when to send it: `before` ahead of
/// `exp`, or at once when less than that is left.
pub(super) fn notice(exp: SystemTime, before: Duration) -> (Instant, Frame) {
    let left = exp
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    let wait = left.saturating_sub(before);
    let unix = exp.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let data = format!(
        "{{\"exp\":{unix},\"expires_in\":{}}}",
        (left - wait).as_secs()
    );
    let event = Event::new(data)
        .and_then(|e| e.with_name(EVENT))
        .expect("one line of JSON and a fixed name are valid fields");
    (Instant::now() + wait, sse::encode(&event, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_is_named_has_no_id_and_says_when() {
        let exp = SystemTime::now() + Duration::from_secs(100);
        let (at, frame) = notice(exp, Duration::from_secs(30));
        let until = at - Instant::now();
        assert!(until > Duration::from_secs(68) && until <= Duration::from_secs(70));
        let text = std::str::from_utf8(frame.as_bytes()).unwrap();
        let unix = exp.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert!(
            text == format!(
                "event: token-expiring\ndata: {{\"exp\":{unix},\"expires_in\":30}}\n\n"
            ) || text.contains("\"expires_in\":29"),
            "{text:?}"
        );
        assert!(!text.contains("id:"));
    }

    #[test]
    fn less_left_than_the_notice_is_at_once() {
        let (at, frame) = notice(
            SystemTime::now() + Duration::from_secs(5),
            Duration::from_secs(30),
        );
        assert!(at <= Instant::now());
        let text = std::str::from_utf8(frame.as_bytes()).unwrap();
        assert!(text.contains("\"expires_in\":4") || text.contains("\"expires_in\":5"));
    }
}
