//! Shaping a link: the scenario's `network.latency` and `network.loss` applied to the bytes a
//! [`super::Link`] relays, as the simulator applies them to messages (`sim/src/network.rs`).
//!
//! - **Unit.** On a client link the unit is one RESP frame (a command one way, a reply the
//!   other), found with [`redis_protocol`]'s RESP3 decoder (RESP2 is a subset); an inline
//!   command (`PING\r\n`, as typed at a terminal) is one line. On a replication link the unit
//!   is the chunk read: its stream opens with an RDB payload that is not a RESP frame, and no
//!   unit there is ever lost. A frame longer than [`MAX_FRAME`] turns the rest of that
//!   direction into chunks, so a held frame never takes more memory than that.
//! - **Latency.** Each unit is delivered at `max(previous delivery, arrival + sample)`, the
//!   sample drawn from `network.latency` by [`workload::dist::sample_us`]: order is kept (a
//!   TCP connection is FIFO, as the simulator's links are). This adds to the loopback's own
//!   latency (tens of microseconds), which nothing removes.
//! - **Loss.** A TCP connection cannot skip bytes, so loss is what it is on a network that
//!   gives up: with probability `network.loss` per unit, that unit and everything after it in
//!   that direction of that connection is never delivered (read and discarded, so the sender
//!   is not blocked). The client's request then times out and its connection
//!   ([`crate::conn`]) is dropped and made again, through the same link, under a fresh
//!   shaper.
//! - **Determinism.** Every direction of every connection draws from its own ChaCha8 stream,
//!   keyed by the scenario's seed, the link's identity, the connection's number on the link
//!   and the direction: the same frames on the same seed meet the same fate.

use super::Direction;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scenario::{Dist, Network};
use std::time::{Duration, Instant};

/// The longest frame held whole; past it the direction is shaped per chunk.
pub const MAX_FRAME: usize = 64 * 1024;

/// How one link is shaped: the latency of every unit, the loss of client frames, and the seed
/// of its draws. Cheap to clone.
#[derive(Debug, Clone, PartialEq)]
pub struct Shaping {
    latency: Dist,
    loss: f64,
    frames: bool,
    seed: u64,
    link: u64,
}

impl Shaping {
    /// A client↔node link named `identity` (unique within a run, e.g. `A->redis-1`): per
    /// RESP frame, with the scenario's latency and loss, drawn under `seed`.
    pub fn client_link(network: &Network, seed: u64, identity: &str) -> Shaping {
        Shaping {
            latency: network.latency.clone(),
            loss: network.loss,
            frames: true,
            seed,
            link: fnv1a(identity),
        }
    }

    /// A node↔node replication link named `identity`: per chunk, the scenario's latency, no
    /// loss (the simulator's replication is reliable).
    pub fn replication_link(network: &Network, seed: u64, identity: &str) -> Shaping {
        Shaping {
            latency: network.latency.clone(),
            loss: 0.0,
            frames: false,
            seed,
            link: fnv1a(identity),
        }
    }

    /// The shaper of direction `dir` of the link's connection number `conn` (from 0).
    pub(crate) fn shaper(&self, conn: u64, dir: Direction) -> Shaper {
        let mut key = [0u8; 32];
        let dir = match dir {
            Direction::ToTarget => 0u64,
            Direction::FromTarget => 1,
        };
        for (i, part) in [self.seed, self.link, conn, dir].into_iter().enumerate() {
            key[i * 8..i * 8 + 8].copy_from_slice(&part.to_le_bytes());
        }
        Shaper {
            latency: self.latency.clone(),
            loss: self.loss,
            frames: self.frames,
            rng: ChaCha8Rng::from_seed(key),
            pending: Vec::new(),
            last: None,
            dead: false,
        }
    }
}

/// FNV-1a, 64 bits: a stable number for a link's name (the std hasher's output may change
/// between Rust releases, which would change every shaped run's draws).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// One direction of one connection: cuts what it reads into units and stamps each with the
/// time it is due.
#[derive(Debug)]
pub(crate) struct Shaper {
    latency: Dist,
    loss: f64,
    frames: bool,
    rng: ChaCha8Rng,
    /// Bytes read but not yet a whole frame.
    pending: Vec<u8>,
    /// When the previous unit is due.
    last: Option<Instant>,
    /// A unit was lost: nothing more is delivered.
    dead: bool,
}

impl Shaper {
    /// Takes `bytes` read at `at` and pushes onto `out` the units now whole, each with the
    /// time it is due (never earlier than the previous one's). Nothing once a unit was lost.
    pub(crate) fn push(&mut self, at: Instant, bytes: &[u8], out: &mut Vec<(Instant, Vec<u8>)>) {
        if self.dead {
            return;
        }
        if !self.frames {
            self.unit(at, bytes.to_vec(), out);
            return;
        }
        self.pending.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(len) = frame_len(&self.pending[start..]) {
            let unit = self.pending[start..start + len].to_vec();
            start += len;
            self.unit(at, unit, out);
            if self.dead {
                self.pending.clear();
                return;
            }
        }
        self.pending.drain(..start);
        if self.pending.len() > MAX_FRAME {
            // Too long to hold whole: chunks from here on.
            self.frames = false;
            let rest = std::mem::take(&mut self.pending);
            self.unit(at, rest, out);
        }
    }

    /// Whether a unit was lost (everything after it is discarded).
    #[cfg(test)]
    pub(crate) fn is_dead(&self) -> bool {
        self.dead
    }

    fn unit(&mut self, at: Instant, unit: Vec<u8>, out: &mut Vec<(Instant, Vec<u8>)>) {
        let sample = Duration::from_micros(workload::dist::sample_us(&self.latency, &mut self.rng));
        if self.loss > 0.0 && self.rng.gen::<f64>() < self.loss {
            self.dead = true;
            return;
        }
        let due = (at + sample).max(self.last.unwrap_or(at));
        self.last = Some(due);
        out.push((due, unit));
    }
}

/// The length of the whole frame `buf` starts with, if it holds one: a RESP2 frame as
/// [`redis_protocol`] decodes it (what Redis speaks unless a client says `HELLO 3`), else a
/// RESP3 one (whose decoder refuses RESP2's null `$-1` and `*-1`), else, when `buf` starts
/// with neither, an inline command up to its newline.
pub(super) fn frame_len(buf: &[u8]) -> Option<usize> {
    use redis_protocol::{resp2, resp3};
    if buf.is_empty() {
        return None;
    }
    match resp2::decode::decode_range(buf) {
        Ok(Some((_, len))) if len > 0 => return Some(len),
        Ok(_) => return None,
        Err(_) => {}
    }
    match resp3::decode::complete::decode_range(buf) {
        Ok(Some((_, len))) if len > 0 => Some(len),
        Ok(_) => None,
        Err(_) => buf.iter().position(|&b| b == b'\n').map(|i| i + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(latency: Dist, loss: f64) -> Network {
        Network {
            latency,
            loss,
            ..Network::default()
        }
    }

    fn units(s: &mut Shaper, at: Instant, bytes: &[u8]) -> Vec<(Instant, Vec<u8>)> {
        let mut out = Vec::new();
        s.push(at, bytes, &mut out);
        out
    }

    #[test]
    fn frames_are_found_across_reads_and_inline_commands_are_lines() {
        let shaping = Shaping::client_link(&network(Dist::FixedMs(1.0), 0.0), 7, "A->redis-1");
        let mut s = shaping.shaper(0, Direction::ToTarget);
        let t = Instant::now();
        let cmd = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        assert!(units(&mut s, t, &cmd[..5]).is_empty(), "half a frame waits");
        let nulls = b"*3\r\n$-1\r\n*-1\r\n:1\r\n";
        let resp3 = b"%1\r\n+a\r\n_\r\n";
        let rest = [&cmd[5..], &b"PING\r\n$-1\r\n"[..], nulls, resp3].concat();
        let got = units(&mut s, t, &rest);
        let frames: Vec<&[u8]> = got.iter().map(|(_, b)| b.as_slice()).collect();
        assert_eq!(
            frames,
            vec![&cmd[..], b"PING\r\n", b"$-1\r\n", nulls, resp3]
        );
        for (due, _) in &got {
            assert_eq!(*due, t + Duration::from_millis(1));
        }
    }

    #[test]
    fn delivery_keeps_order_under_random_latency() {
        let shaping =
            Shaping::client_link(&network(Dist::UniformMs([0.0, 50.0]), 0.0), 1, "A->redis-1");
        let mut s = shaping.shaper(0, Direction::FromTarget);
        let t = Instant::now();
        let mut last = t;
        let mut spread = false;
        for i in 0..200u64 {
            let at = t + Duration::from_micros(i * 100);
            for (due, _) in units(&mut s, at, b"+OK\r\n") {
                assert!(due >= last && due >= at);
                spread |= due > at + Duration::from_millis(1);
                last = due;
            }
        }
        assert!(spread, "the latency was drawn, not fixed");
    }

    #[test]
    fn a_lost_frame_ends_the_direction_and_the_same_seed_loses_the_same_frame() {
        let first_lost = |seed: u64, conn: u64| {
            let shaping =
                Shaping::client_link(&network(Dist::FixedMs(0.0), 0.2), seed, "A->redis-1");
            let mut s = shaping.shaper(conn, Direction::ToTarget);
            let t = Instant::now();
            let mut delivered = 0;
            for _ in 0..100 {
                delivered += units(&mut s, t, b"+OK\r\n").len();
                if s.is_dead() {
                    assert!(units(&mut s, t, b"+OK\r\n").is_empty());
                    return delivered;
                }
            }
            panic!("nothing lost in 100 frames at 20%");
        };
        assert_eq!(first_lost(3, 0), first_lost(3, 0));
        let all: Vec<usize> = (0..8).map(|conn| first_lost(3, conn)).collect();
        assert!(
            all.iter().any(|&n| n != all[0]),
            "each connection draws anew: {all:?}"
        );
    }

    #[test]
    fn replication_links_lose_nothing_and_a_long_frame_turns_into_chunks() {
        let net = network(Dist::FixedMs(0.5), 0.9);
        let mut r = Shaping::replication_link(&net, 1, "replica-1->primary")
            .shaper(0, Direction::FromTarget);
        let t = Instant::now();
        for _ in 0..100 {
            assert_eq!(units(&mut r, t, b"$5\r\nREDIS").len(), 1);
        }
        let net = network(Dist::FixedMs(0.5), 0.0);
        let mut c = Shaping::client_link(&net, 1, "A->redis-1").shaper(0, Direction::ToTarget);
        let header = format!("${}\r\n", MAX_FRAME * 2);
        assert!(units(&mut c, t, header.as_bytes()).is_empty());
        let got = units(&mut c, t, &vec![b'x'; MAX_FRAME + 1]);
        assert_eq!(got.len(), 1, "held no longer than MAX_FRAME");
        assert_eq!(units(&mut c, t, b"xyz").len(), 1, "chunks from then on");
    }
}
