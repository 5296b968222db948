//! Moving a real server's wall clock: the LD_PRELOAD shim built from `shim/locksim_clock.c`
//! (see its header for why not libfaketime) and the control file each shimmed server maps.
//!
//! The shim shifts `CLOCK_REALTIME`, `gettimeofday` and `time` — what Redis 7.0's key expiry
//! reads (`mstime()` is `gettimeofday`) — and leaves `CLOCK_MONOTONIC`, which Redis's timers
//! read, alone. A change written here is seen by the server's next clock read.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The shim, built by `build.rs` and carried in the binary so an installed `locksim` needs no
/// build directory.
const SHIM: &[u8] = include_bytes!(env!("LOCKSIM_CLOCK_SHIM"));

/// The environment variable naming a server's control file.
pub(crate) const CONTROL_ENV: &str = "LOCKSIM_CLOCK_FILE";

/// Where a shimmed server's wall clock stands: `offset_ns` ahead of true time at the true wall
/// time `anchor_ns`, running at `rate` (so it reads
/// `real + offset_ns + (rate − 1)·(real − anchor_ns)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServerClock {
    /// How far the clock is ahead of true time at the anchor, in nanoseconds.
    pub offset_ns: i64,
    /// How fast the clock runs relative to true time (1.005 runs 0.5 % fast).
    pub rate: f64,
    /// The true wall time (Unix nanoseconds) at which `offset_ns` held.
    pub anchor_ns: i64,
}

impl ServerClock {
    /// A clock `offset_ms` ahead of true time now, running at `rate`.
    pub fn starting(offset_ms: f64, rate: f64) -> ServerClock {
        ServerClock {
            offset_ns: (offset_ms * 1e6).round() as i64,
            rate,
            anchor_ns: real_now_ns(),
        }
    }

    /// How far the clock is ahead of true time at the true wall time `real_ns`, in
    /// nanoseconds.
    pub fn offset_ns_at(&self, real_ns: i64) -> i64 {
        self.offset_ns + ((self.rate - 1.0) * (real_ns - self.anchor_ns) as f64).round() as i64
    }

    /// How far the clock is ahead of true time at `real_ns`, in milliseconds.
    pub fn offset_ms_at(&self, real_ns: i64) -> f64 {
        self.offset_ns_at(real_ns) as f64 / 1e6
    }

    /// The same clock stepped by `by_ms` at the true wall time `now_ns` (its rate kept).
    pub fn jumped(&self, now_ns: i64, by_ms: i64) -> ServerClock {
        ServerClock {
            offset_ns: self
                .offset_ns_at(now_ns)
                .saturating_add(by_ms.saturating_mul(1_000_000)),
            rate: self.rate,
            anchor_ns: now_ns,
        }
    }
}

/// The true wall clock (the harness is not shimmed), in Unix nanoseconds.
pub fn real_now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Writes the shim into `dir`; returns its path, for `LD_PRELOAD`.
pub(crate) fn install_shim(dir: &Path) -> io::Result<PathBuf> {
    let path = dir.join("liblocksim_clock.so");
    std::fs::write(&path, SHIM)?;
    Ok(path)
}

/// One server's control file: 32 bytes (`seq`, `offset_ns`, `rate`, `anchor_ns`, native
/// endian) the shim maps shared and reads as a seqlock, so a rewrite is never seen half done.
pub(crate) struct ControlFile {
    file: File,
    seq: u64,
    clock: ServerClock,
}

impl ControlFile {
    /// Creates the control file at `path` with the clock set to `clock`.
    pub(crate) fn create(path: &Path, clock: ServerClock) -> io::Result<ControlFile> {
        let file = File::create(path)?;
        file.set_len(32)?;
        let mut c = ControlFile {
            file,
            seq: 0,
            clock,
        };
        c.set(clock)?;
        Ok(c)
    }

    /// The clock as last set.
    pub(crate) fn clock(&self) -> ServerClock {
        self.clock
    }

    /// Sets the clock: `seq` odd, the fields, `seq` even again (each its own write, so a
    /// reader that sees the even `seq` sees the fields too).
    pub(crate) fn set(&mut self, clock: ServerClock) -> io::Result<()> {
        let mut fields = [0u8; 24];
        fields[..8].copy_from_slice(&clock.offset_ns.to_ne_bytes());
        fields[8..16].copy_from_slice(&clock.rate.to_ne_bytes());
        fields[16..].copy_from_slice(&clock.anchor_ns.to_ne_bytes());
        self.file.write_all_at(&(self.seq + 1).to_ne_bytes(), 0)?;
        self.file.write_all_at(&fields, 8)?;
        self.seq += 2;
        self.file.write_all_at(&self.seq.to_ne_bytes(), 0)?;
        self.clock = clock;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jump_keeps_the_rate_and_adds_to_the_drift_so_far() {
        let c = ServerClock {
            offset_ns: 0,
            rate: 1.005,
            anchor_ns: 0,
        };
        // 10 s at 1.005: 50 ms ahead.
        assert_eq!(c.offset_ns_at(10_000_000_000), 50_000_000);
        let j = c.jumped(10_000_000_000, 20_000);
        assert_eq!(j.offset_ms_at(10_000_000_000), 20_050.0);
        assert_eq!(j.offset_ms_at(20_000_000_000), 20_100.0);
        assert_eq!(c.jumped(0, -20_000).offset_ms_at(0), -20_000.0);
    }

    #[test]
    fn the_control_file_holds_an_even_seq_and_the_fields() {
        let dir = std::env::temp_dir().join(format!("locksim-clock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("n.clock");
        let clock = ServerClock::starting(1.5, 2.0);
        let mut f = ControlFile::create(&path, clock).unwrap();
        f.set(clock.jumped(clock.anchor_ns, 1)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 32);
        assert_eq!(u64::from_ne_bytes(bytes[..8].try_into().unwrap()), 4);
        let off = i64::from_ne_bytes(bytes[8..16].try_into().unwrap());
        assert_eq!(off, 2_500_000);
        assert!(install_shim(&dir).unwrap().metadata().unwrap().len() > 1000);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
