//! One global order across nodes: every subscriber, on whatever node, must see the same
//! events in the same order, with the same ids.
//!
//! Comparing whole sequences between thousands of subscribers would cost memory per
//! event and subscriber. Instead the sequence numbers are cut into blocks of [`BLOCK`]
//! (`seq / 64`), and each stream folds what it receives of a block, in arrival order,
//! into an order-sensitive digest of `(seq, id)`. A stream that saw the whole block
//! (each of its 64 numbers exactly once) offers its digest to a shared [`OrderTable`]:
//! the first one for a block is kept, every later one must be equal. Two streams that saw
//! the events of a block in different orders, or with different ids (another entry, a
//! node that assigned its own), differ: an `order_mismatch`. Blocks a stream saw only in
//! part (it connected in the middle, a gap, a duplicate) are not compared; the gap and
//! duplicate checks count those.
//!
//! Memory: one `u64` per block in the table (allocated in chunks as the run goes), and
//! four words per stream.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Sequence numbers per block (the bitmap of one `u64`).
pub(crate) const BLOCK: u64 = 64;
/// Blocks per chunk of the table.
const CHUNK: usize = 1 << 12;
/// Chunks in the table: 2^26 blocks, 2^32 events; later blocks are not compared.
const CHUNKS: usize = 1 << 14;
/// The digest of an empty block.
const SEED: u64 = 0x243f_6a88_85a3_08d3;

/// What offering a block's digest found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// The first digest of this block: kept for the others.
    First,
    /// Equal to the kept one.
    Same,
    /// Different from the kept one: another order, or other ids.
    Mismatch,
    /// Beyond the table: not compared.
    OutOfRange,
}

/// The digests of every block, shared by all streams.
#[derive(Debug)]
pub(crate) struct OrderTable {
    chunks: Box<[OnceLock<Box<[AtomicU64]>>]>,
    /// Blocks some stream saw whole.
    pub(crate) blocks: AtomicU64,
    /// Digests equal to the block's first.
    pub(crate) same: AtomicU64,
    /// Digests different from the block's first.
    pub(crate) mismatches: AtomicU64,
}

impl Default for OrderTable {
    fn default() -> Self {
        OrderTable {
            chunks: (0..CHUNKS).map(|_| OnceLock::new()).collect(),
            blocks: AtomicU64::new(0),
            same: AtomicU64::new(0),
            mismatches: AtomicU64::new(0),
        }
    }
}

impl OrderTable {
    /// Offers the digest of a block some stream saw whole.
    pub(crate) fn offer(&self, block: u64, digest: u64) -> Offer {
        let digest = digest.max(1); // 0 marks an empty slot
        let Some(chunk) = usize::try_from(block / CHUNK as u64)
            .ok()
            .and_then(|c| self.chunks.get(c))
        else {
            return Offer::OutOfRange;
        };
        let slots = chunk.get_or_init(|| (0..CHUNK).map(|_| AtomicU64::new(0)).collect());
        let slot = &slots[(block % CHUNK as u64) as usize];
        match slot.compare_exchange(0, digest, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => {
                self.blocks.fetch_add(1, Ordering::Relaxed);
                Offer::First
            }
            Err(kept) if kept == digest => {
                self.same.fetch_add(1, Ordering::Relaxed);
                Offer::Same
            }
            Err(_) => {
                self.mismatches.fetch_add(1, Ordering::Relaxed);
                Offer::Mismatch
            }
        }
    }
}

fn mix(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
}

/// Folds one event into a block's digest (order-sensitive).
fn fold(h: u64, seq: u64, id: &[u8]) -> u64 {
    let mut h = mix(h, seq);
    for piece in id.chunks(8) {
        let mut word = [0u8; 8];
        word[..piece.len()].copy_from_slice(piece);
        h = mix(h, u64::from_le_bytes(word));
    }
    mix(h, id.len() as u64)
}

/// Where a stream is in the block it is folding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    /// No block yet.
    #[default]
    None,
    /// Folding `block`.
    Open,
    /// `block` was offered, or cannot be (a duplicate in it).
    Closed,
}

/// One stream's digest of the block it is in.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BlockDigest {
    block: u64,
    seen: u64,
    hash: u64,
    state: State,
}

impl BlockDigest {
    /// Records event `seq` with `id`; when it completes a block, offers the block's
    /// digest: `Some((block, offer))`.
    pub(crate) fn observe(
        &mut self,
        table: &OrderTable,
        seq: u64,
        id: &[u8],
    ) -> Option<(u64, Offer)> {
        let block = seq / BLOCK;
        let bit = 1u64 << (seq % BLOCK);
        match self.state {
            State::None => self.start(block),
            _ if block > self.block => self.start(block),
            // An older block (late, or a duplicate): not this block's business.
            _ if block < self.block => return None,
            State::Closed => return None,
            State::Open => {}
        }
        if self.seen & bit != 0 {
            // A duplicate: this stream's view of the block is not comparable.
            self.state = State::Closed;
            return None;
        }
        self.seen |= bit;
        self.hash = fold(self.hash, seq, id);
        if self.seen != u64::MAX {
            return None;
        }
        self.state = State::Closed;
        Some((self.block, table.offer(self.block, self.hash)))
    }

    fn start(&mut self, block: u64) {
        *self = BlockDigest {
            block,
            seen: 0,
            hash: SEED,
            state: State::Open,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(
        t: &OrderTable,
        seqs: impl IntoIterator<Item = u64>,
        id: impl Fn(u64) -> String,
    ) -> Vec<(u64, Offer)> {
        let mut d = BlockDigest::default();
        seqs.into_iter()
            .filter_map(|s| d.observe(t, s, id(s).as_bytes()))
            .collect()
    }

    fn id(s: u64) -> String {
        format!("1795728769874-{s}")
    }

    #[test]
    fn the_same_order_and_ids_match() {
        let t = OrderTable::default();
        // Starts in the middle of block 0: only blocks 1 and 2 are whole.
        assert_eq!(
            feed(&t, 10..192, id),
            [(1, Offer::First), (2, Offer::First)]
        );
        assert_eq!(feed(&t, 64..200, id), [(1, Offer::Same), (2, Offer::Same)]);
        assert_eq!(t.blocks.load(Ordering::Relaxed), 2);
        assert_eq!(t.same.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn another_order_or_other_ids_mismatch() {
        let t = OrderTable::default();
        feed(&t, 64..128, id);
        let mut swapped: Vec<u64> = (64..128).collect();
        swapped.swap(3, 4);
        assert_eq!(feed(&t, swapped, id), [(1, Offer::Mismatch)]);
        let other = |s: u64| if s == 100 { "9-9".to_string() } else { id(s) };
        assert_eq!(feed(&t, 64..128, other), [(1, Offer::Mismatch)]);
        assert_eq!(t.mismatches.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn partial_blocks_and_duplicates_are_not_compared() {
        let t = OrderTable::default();
        // A gap in block 1.
        let gap = (64..128).filter(|&s| s != 70);
        assert_eq!(feed(&t, gap, id), []);
        // A duplicate in block 1 (the block is then left alone), block 2 whole.
        let dup = (64..80).chain(79..192);
        assert_eq!(feed(&t, dup, id), [(2, Offer::First)]);
        // A late event of an older block changes nothing.
        let late = (128..150).chain([3]).chain(150..192);
        assert_eq!(feed(&t, late, id), [(2, Offer::Same)]);
        assert_eq!(t.offer(u64::MAX, 5), Offer::OutOfRange);
    }
}
