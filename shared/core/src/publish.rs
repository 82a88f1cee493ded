//! Publishing the events the store keeps: read the items that hold them, send them to the bus,
//! and take the delivered items out of the set of unpublished ones. At least once: an event
//! sent whose item could not be marked is sent again by a later sweep, with the same content
//! (subscribers drop what they have by `version`).
//!
//! The DynamoDB adapter's items are history versions and outbox items named by the table's
//! stream, and its unpublished set is the pending-event items; the in-process store's items
//! are its outbox entries. The publish handler and the scheduled sweep are this module's
//! [`publish_items`] and [`sweep`].

use crate::store::{OutboxEntry, StoreError};
use std::future::Future;

/// An item that holds events: `(partition key, sort key)` on DynamoDB, `(event id, "")` in
/// process.
pub type EventItem = (String, String);

/// Where the events to publish wait.
pub trait EventItems: Send + Sync {
    /// The events an item holds; `None` when the item is gone (delivered and deleted, or erased).
    fn events_in(&self, item: &EventItem) -> impl Future<Output = Result<Option<Vec<OutboxEntry>>, StoreError>> + Send;
    /// Items with events not yet delivered, waiting since before `before_ms`, at most `limit`.
    fn unpublished(
        &self,
        before_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<EventItem>, StoreError>> + Send;
    /// Items all of whose events were delivered (and items found gone): out of the unpublished set.
    fn mark_delivered(&self, items: &[EventItem]) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What one send did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Event ids delivered.
    pub delivered: Vec<String>,
    /// Event ids that failed after every retry, with the last error code.
    pub failed: Vec<(String, String)>,
    pub calls: u32,
    pub retried_entries: u32,
}

/// The bus.
pub trait EventSink: Send + Sync {
    /// Sends the events (slim where they say so or are too large); never fails as a whole: an
    /// event not delivered is in `failed`.
    fn send(&self, events: &[OutboxEntry]) -> impl Future<Output = Delivery> + Send;
}

/// What publishing a list of items did.
#[derive(Debug, Default)]
pub struct Published {
    /// The events read and sent, in item order.
    pub events: Vec<OutboxEntry>,
    pub delivery: Delivery,
    /// Items found gone (delivered and deleted before, or erased).
    pub gone: usize,
    /// The first item (index into the list) holding an event that was not delivered.
    pub first_failed: Option<usize>,
    /// Marking delivered items failed: they are sent again by a later sweep.
    pub unmarked: Option<StoreError>,
    /// Items that could not be read ([`sweep`] only: they are left for the next sweep).
    pub unreadable: usize,
}

/// Reading an item failed: nothing was sent. `resume_at` is the first item (index into the
/// list) not published yet: the first one read with events, or the one that failed.
#[derive(Debug)]
pub struct ReadFailed {
    pub resume_at: usize,
    pub error: StoreError,
}

/// Items all of whose events were delivered.
fn delivered_items(named: &[(usize, String)], items: &[EventItem], delivered: &[String]) -> Vec<EventItem> {
    let mut out: Vec<EventItem> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let mut events = named.iter().filter(|(at, _)| *at == i).peekable();
        if events.peek().is_some() && events.all(|(_, id)| delivered.contains(id)) && !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

/// Publishes the events of `items`, in order, and marks the delivered ones. An item that cannot
/// be read stops it before anything is sent (the stream retries from there, in order).
pub async fn publish_items<I: EventItems, K: EventSink>(
    store: &I,
    sink: &K,
    items: &[EventItem],
) -> Result<Published, ReadFailed> {
    publish(store, sink, items, false).await
}

async fn publish<I: EventItems, K: EventSink>(
    store: &I,
    sink: &K,
    items: &[EventItem],
    skip_unreadable: bool,
) -> Result<Published, ReadFailed> {
    let mut out = Published::default();
    // (item index, event id) for every event read.
    let mut named: Vec<(usize, String)> = Vec::new();
    let mut gone: Vec<EventItem> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match store.events_in(item).await {
            Ok(Some(entries)) => {
                for e in entries {
                    named.push((i, e.event_id.clone()));
                    out.events.push(e);
                }
            }
            Ok(None) => {
                out.gone += 1;
                gone.push(item.clone());
            }
            Err(_) if skip_unreadable => out.unreadable += 1,
            Err(error) => {
                let resume_at = named.first().map_or(i, |(at, _)| *at);
                return Err(ReadFailed { resume_at, error });
            }
        }
    }
    if !out.events.is_empty() {
        out.delivery = sink.send(&out.events).await;
    }
    let mut done = gone;
    done.extend(delivered_items(&named, items, &out.delivery.delivered));
    if !done.is_empty() {
        if let Err(e) = store.mark_delivered(&done).await {
            out.unmarked = Some(e);
        }
    }
    out.first_failed = named.iter().find(|(_, id)| out.delivery.failed.iter().any(|(f, _)| f == id)).map(|(at, _)| *at);
    Ok(out)
}

/// What a sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub items: usize,
    pub delivered: usize,
    /// Events not delivered, and items that could not be read: left for the next sweep.
    pub failed: usize,
}

/// Publishes every event waiting since before `before_ms` (at most `limit` items): events the
/// stream never delivered, or delivered without being marked. An item that cannot be read is
/// passed over (and counted as failed), so it does not hold back the others.
pub async fn sweep<I: EventItems, K: EventSink>(
    store: &I,
    sink: &K,
    before_ms: i64,
    limit: usize,
) -> Result<SweepReport, StoreError> {
    let items = store.unpublished(before_ms, limit).await?;
    let published = publish(store, sink, &items, true).await.map_err(|f| f.error)?;
    if let Some(e) = published.unmarked {
        return Err(e);
    }
    Ok(SweepReport {
        items: items.len(),
        delivered: published.delivery.delivered.len(),
        failed: published.delivery.failed.len() + published.unreadable,
    })
}
