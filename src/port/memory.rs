//! The in-memory backend (the default): ids `<epoch>-<offset>` issued under the hub
//! lock, events kept only in the hub's replay ring. Never refuses, never waits.

use std::sync::Arc;
use std::time::Duration;

use super::{Backend, BoxFuture, Receipt, Refused, Status};
use crate::envelope::Envelope;
use crate::hub::{Hub, HubLimits, Local};
use crate::log::Log;
use crate::sse::Event;
use crate::stats::Stats;

/// The memory backend of `hub`.
struct Memory {
    hub: Hub,
}

/// A new in-memory hub and its backend.
pub(super) fn open(limits: HubLimits, stats: Arc<Stats>, log: Log) -> (Hub, Arc<dyn Backend>) {
    let hub = Hub::with_log(limits, stats, log);
    (hub.clone(), of(hub))
}

/// The backend of an existing in-memory hub.
pub(super) fn of(hub: Hub) -> Arc<dyn Backend> {
    Arc::new(Memory { hub })
}

impl Backend for Memory {
    fn publish(&self, envelope: Envelope, event: Event) -> BoxFuture<'_, Result<Receipt, Refused>> {
        let outcome = self.hub.commit_local(envelope, &event);
        Box::pin(async move {
            match outcome {
                Local::Published(p, id) => Ok(Receipt {
                    id,
                    delivered_to: Some(p.delivery.sent),
                    replayed: false,
                    congested: p.delivery.congested(),
                }),
                Local::Repeated(id) => Ok(Receipt::replay(id)),
                Local::Refused => Err(Refused {
                    reason: "this hub's events are ordered by another port".into(),
                    retry_after: Duration::from_secs(1),
                }),
            }
        })
    }

    fn status(&self) -> Status {
        Status {
            backend: "memory",
            up: true,
            reason: None,
            file_bytes: None,
            syncs: None,
            broker: None,
        }
    }
}
