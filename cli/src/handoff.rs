//! Hand-offs between the batch engine's threads that retry for a while before they sleep.
//!
//! `recv` on an empty channel, or `send` on a full one, puts the thread to sleep until the other
//! side wakes it. On a virtual machine whose idle cores halt, a wake-up takes about a third of a
//! millisecond (`perf sched` on `mdm dedupe`), while a batch takes half a millisecond to merge:
//! the stages spent much of their time waking each other, and a core stood idle for 15–20 % of
//! the run. So each side first retries, handing its core to any other thread that can run
//! between tries, and sleeps only when the wait outlasts the tries.

use std::sync::mpsc::{Receiver, RecvError, SyncSender, TryRecvError, TrySendError};

/// Tries before sleeping: each is a channel check and a `sched_yield`, a microsecond or two
/// when no other thread wants the core, so the wait before sleeping stays below one batch's
/// merge. Fewer tries left more of a core idle; more gave no further gain (docs/benchmarks.md).
const TRIES: usize = 200;

/// The next value, or an error once the channel is empty and its senders are gone.
pub fn recv<T>(rx: &Receiver<T>) -> Result<T, RecvError> {
    for _ in 0..TRIES {
        match rx.try_recv() {
            Ok(v) => return Ok(v),
            Err(TryRecvError::Disconnected) => return Err(RecvError),
            Err(TryRecvError::Empty) => std::thread::yield_now(),
        }
    }
    rx.recv()
}

/// Sends a value, waiting while the channel is full; false when the receiver is gone.
pub fn send<T>(tx: &SyncSender<T>, value: T) -> bool {
    let mut value = value;
    for _ in 0..TRIES {
        match tx.try_send(value) {
            Ok(()) => return true,
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(v)) => {
                value = v;
                std::thread::yield_now();
            }
        }
    }
    tx.send(value).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    #[test]
    fn values_arrive_in_order_and_the_end_shows_once_the_senders_are_gone() {
        let (tx, rx) = sync_channel(1);
        let sender = std::thread::spawn(move || (0..500).all(|i| send(&tx, i)));
        let got: Vec<i32> = std::iter::from_fn(|| recv(&rx).ok()).collect();
        assert!(sender.join().expect("sender"), "every send found the receiver");
        assert_eq!(got, (0..500).collect::<Vec<_>>());
        assert!(recv(&rx).is_err());
    }

    #[test]
    fn a_send_into_a_full_channel_waits_for_the_receiver_beyond_the_tries() {
        let (tx, rx) = sync_channel(1);
        assert!(send(&tx, 1));
        // The channel is full: the second send outlasts its tries and sleeps until this thread,
        // after a pause, takes the first value.
        let sender = std::thread::spawn(move || send(&tx, 2));
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(recv(&rx), Ok(1));
        assert!(sender.join().expect("sender"));
        assert_eq!(recv(&rx), Ok(2));
    }

    #[test]
    fn a_send_reports_a_receiver_that_is_gone() {
        let (tx, rx) = sync_channel::<i32>(1);
        drop(rx);
        assert!(!send(&tx, 1));
    }
}
