//! A stream entry and an event: the fields of one (see [`entry_event`]).

use std::fmt;

use crate::envelope::{Envelope, PublisherId};
use crate::event_id::EventId;
use crate::redis::stream::Entry;
use crate::sse::Event;
use crate::topic::Topic;

/// A stream entry as an event: its id, envelope and event, or why it cannot be one.
///
/// Fields: `topic` (absent: the default topic), `alt` (repeated: alternate topics),
/// `private` (`1`), `id` (the publisher's id), `key` (the idempotency key), `data`,
/// `event`, `retry`. Entries written before alternates and private events existed have
/// only the first and the last three, and read as public events on one topic.
pub fn entry_event(e: &Entry) -> Result<(EventId, Envelope, Event), String> {
    let id: EventId = e.id.parse().map_err(|_| format!("entry id {:?}", e.id))?;
    let bad = |what: &dyn fmt::Display| format!("entry {}: {what}", e.id);
    let utf8 = |f: &str, v: &[u8]| -> Result<String, String> {
        String::from_utf8(v.to_vec()).map_err(|_| bad(&format!("{f} is not UTF-8")))
    };
    let (mut topics, mut alternates, mut private) = (Vec::new(), Vec::new(), false);
    let (mut data, mut name, mut retry, mut pid, mut key) = (None, None, None, None, None);
    for (k, v) in &e.fields {
        match k.as_slice() {
            b"topic" => topics.push(Topic::new(&utf8("topic", v)?).map_err(|err| bad(&err))?),
            b"alt" => alternates.push(Topic::new(&utf8("alt", v)?).map_err(|err| bad(&err))?),
            b"private" => private = v.as_slice() == b"1",
            b"data" => data = Some(utf8("data", v)?),
            b"event" => name = Some(utf8("event", v)?),
            b"retry" => retry = Some(utf8("retry", v)?),
            b"id" => pid = Some(PublisherId::new(&utf8("id", v)?).map_err(|err| bad(&err))?),
            b"key" => {
                key = Some(PublisherId::named(&utf8("key", v)?, "key").map_err(|err| bad(&err))?)
            }
            _ => {}
        }
    }
    if topics.is_empty() {
        topics.push(Topic::default_topic());
    }
    topics.extend(alternates);
    let mut envelope = Envelope::new(topics)
        .map_err(|err| bad(&err))?
        .with_private(private);
    if let Some(p) = pid {
        envelope = envelope.with_id(p);
    }
    if let Some(k) = key {
        envelope = envelope.with_key(k);
    }
    let data = data.ok_or_else(|| bad(&"no data field"))?;
    let mut event = Event::new(data).map_err(|err| bad(&err))?;
    if let Some(name) = name {
        event = event.with_name(&name).map_err(|err| bad(&err))?;
    }
    if let Some(r) = retry {
        event = event.with_retry(r.parse().map_err(|_| bad(&"bad retry"))?);
    }
    Ok((id, envelope, event))
}

/// The stream fields of an event (see [`entry_event`]).
pub(super) fn entry_fields<'a>(
    envelope: &'a Envelope,
    event: &'a Event,
    retry: &'a Option<String>,
) -> Vec<(&'a [u8], &'a [u8])> {
    let mut fields: Vec<(&[u8], &[u8])> = vec![(b"topic", envelope.topic().as_str().as_bytes())];
    for alt in envelope.alternates() {
        fields.push((b"alt", alt.as_str().as_bytes()));
    }
    if envelope.is_private() {
        fields.push((b"private", b"1"));
    }
    if let Some(id) = envelope.id() {
        fields.push((b"id", id.as_str().as_bytes()));
    }
    if let Some(key) = envelope.key() {
        fields.push((b"key", key.as_str().as_bytes()));
    }
    fields.push((b"data", event.data().as_bytes()));
    if let Some(name) = event.name() {
        fields.push((b"event", name.as_bytes()));
    }
    if let Some(r) = retry {
        fields.push((b"retry", r.as_bytes()));
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_become_events_or_say_why_not() {
        let e = Entry {
            id: "5-1".into(),
            fields: vec![
                (b"topic".to_vec(), b"news".to_vec()),
                (b"data".to_vec(), b"a\nb".to_vec()),
                (b"event".to_vec(), b"upd".to_vec()),
                (b"retry".to_vec(), b"700".to_vec()),
            ],
        };
        let (id, env, ev) = entry_event(&e).unwrap();
        assert_eq!((id, env.topic().as_str()), (EventId::new(5, 1), "news"));
        assert_eq!(
            (ev.data(), ev.name(), ev.retry()),
            ("a\nb", Some("upd"), Some(700))
        );
        for fields in [
            vec![
                (b"topic".to_vec(), b"bad topic".to_vec()),
                (b"data".to_vec(), b"x".to_vec()),
            ],
            vec![(b"topic".to_vec(), b"t".to_vec())],
            vec![(b"data".to_vec(), vec![0xff])],
            vec![
                (b"data".to_vec(), b"x".to_vec()),
                (b"event".to_vec(), b"a\nb".to_vec()),
            ],
        ] {
            let e = Entry {
                id: "1-0".into(),
                fields,
            };
            assert!(entry_event(&e).is_err(), "{e:?}");
        }
        let e = Entry {
            id: "nope".into(),
            fields: vec![(b"data".to_vec(), b"x".to_vec())],
        };
        assert!(entry_event(&e).is_err());
    }
}
