//! The read sides of resting streams: one epoll set of the server's own.
//!
//! A resting stream (see `rest.rs`) must still notice at once a client that hangs up or
//! sends something. The runtime's reactor could watch it, but every socket registered
//! there holds a `Source` of about 216 bytes (two directions, each with its wakers),
//! plus the reactor's slot: more than everything else an idle subscriber holds. So a
//! resting stream drops that registration and its socket joins this set instead, with
//! `EPOLLIN | EPOLLRDHUP | EPOLLONESHOT`: the kernel keeps the interest (an `epitem`,
//! kernel memory), and this side keeps one slot of 24 bytes, the stream's waker (slots
//! come a chunk of [`CHUNK`] at a time). The set
//! itself is one descriptor the reactor watches; one task ([`Watch::run`]) wakes the
//! streams whose sockets became readable. A stream that wakes leaves the set before its
//! writer runs ([`Watch::unwatch`]), and the writer registers with the reactor again on
//! its first wait.
//!
//! A slot's key carries a generation: an event still in flight for a socket that left
//! the set cannot wake the stream that reuses the slot.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::task::Waker;

use async_io::Async;
use rustix::event::epoll;

/// Events taken from the set per `epoll_wait`; the task yields after each batch, so one
/// burst of hang-ups cannot hold the request thread. **Unit:** events.
pub const WATCH_BATCH: usize = 256;

/// One socket in the set: its slot and the slot's generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    index: u32,
    generation: u32,
}

impl Key {
    fn data(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    fn from_data(data: u64) -> Key {
        Key {
            index: data as u32,
            generation: (data >> 32) as u32,
        }
    }
}

/// Slots per chunk of [`Slots`]. **Why:** slots are allocated a chunk at a time, so the
/// set never holds more than this many unused slots beyond its peak (a `Vec` that
/// doubles would hold up to as many as it uses: 24 bytes each).
const CHUNK: usize = 1024;

/// One slot: the generation that names it now, and the stream's waker.
type Slot = (u32, Option<Waker>);

/// The slots: each stream's waker, by index, with the generation that names it now.
#[derive(Debug, Default)]
struct Slots {
    chunks: Vec<Box<[Slot]>>,
    /// Slots ever handed out (the next new index).
    used: u32,
    free: Vec<u32>,
}

impl Slots {
    fn get_mut(&mut self, index: u32) -> Option<&mut Slot> {
        let i = index as usize;
        self.chunks.get_mut(i / CHUNK)?.get_mut(i % CHUNK)
    }

    /// A free slot's index, with room made for a new one when none is free.
    fn take(&mut self) -> u32 {
        if let Some(index) = self.free.pop() {
            return index;
        }
        let index = self.used;
        if index as usize == self.chunks.len() * CHUNK {
            self.chunks.push(
                (0..CHUNK)
                    .map(|_| (0, None))
                    .collect::<Vec<_>>()
                    .into_boxed_slice(),
            );
        }
        self.used += 1;
        index
    }
}

/// The set of resting streams' read sides (see the module docs).
#[derive(Debug)]
pub(crate) struct Watch {
    ep: Async<OwnedFd>,
    slots: Mutex<Slots>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Watch {
    /// An empty set.
    ///
    /// # Errors
    ///
    /// When the kernel refuses an epoll set, or the reactor refuses to watch it.
    pub(crate) fn new() -> io::Result<Watch> {
        let fd = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        Ok(Watch {
            ep: Async::new(fd)?,
            slots: Mutex::new(Slots::default()),
        })
    }

    /// Watches `fd`'s read side: `waker` is woken once, when it becomes readable (data,
    /// end of stream, an error), at once if it is now.
    pub(crate) fn watch(&self, fd: BorrowedFd<'_>, waker: Waker) -> io::Result<Key> {
        let key = {
            let mut s = lock(&self.slots);
            let index = s.take();
            match s.get_mut(index) {
                Some(slot) => {
                    slot.1 = Some(waker);
                    Key {
                        index,
                        generation: slot.0,
                    }
                }
                None => return Err(io::ErrorKind::Other.into()),
            }
        };
        let flags = epoll::EventFlags::IN | epoll::EventFlags::RDHUP | epoll::EventFlags::ONESHOT;
        match epoll::add(&self.ep, fd, epoll::EventData::new_u64(key.data()), flags) {
            Ok(()) => Ok(key),
            Err(e) => {
                self.release(key);
                Err(e.into())
            }
        }
    }

    /// Takes `fd` out of the set and frees its slot.
    pub(crate) fn unwatch(&self, fd: BorrowedFd<'_>, key: Key) {
        let _ = epoll::delete(&self.ep, fd);
        self.release(key);
    }

    fn release(&self, key: Key) {
        let mut s = lock(&self.slots);
        if let Some(slot) = s.get_mut(key.index)
            && slot.0 == key.generation
        {
            slot.0 = slot.0.wrapping_add(1);
            slot.1 = None;
            s.free.push(key.index);
        }
    }

    /// Streams in the set now.
    pub(crate) fn len(&self) -> usize {
        let s = lock(&self.slots);
        s.used as usize - s.free.len()
    }

    /// Wakes the streams whose sockets became readable, for as long as the server runs
    /// (the task is dropped at shutdown). At most [`WATCH_BATCH`] per poll.
    pub(crate) async fn run(&self) {
        let mut woken: Vec<Waker> = Vec::with_capacity(WATCH_BATCH);
        loop {
            if self.ep.readable().await.is_err() || self.take_ready(&mut woken).is_err() {
                return;
            }
            // Outside the lock: a waker spawns the stream's writer.
            for w in woken.drain(..) {
                w.wake();
            }
            futures_lite::future::yield_now().await;
        }
    }

    /// The wakers of up to [`WATCH_BATCH`] sockets that became readable.
    fn take_ready(&self, woken: &mut Vec<Waker>) -> rustix::io::Result<()> {
        let mut buf = [MaybeUninit::<epoll::Event>::uninit(); WATCH_BATCH];
        let now = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let got = match epoll::wait(&self.ep, &mut buf, Some(&now)) {
            Ok((got, _)) => got,
            Err(rustix::io::Errno::INTR) => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut s = lock(&self.slots);
        for event in got.iter() {
            let data = { event.data };
            let key = Key::from_data(data.u64());
            if let Some(slot) = s.get_mut(key.index)
                && slot.0 == key.generation
                && let Some(w) = slot.1.take()
            {
                woken.push(w);
            }
        }
        Ok(())
    }
}
