//! The Redis commands a lock sends and the replies it reads, each with one canonical encoding.

use crate::SharedStr;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Compare-and-delete: delete the key only while it still holds our token.
pub const RELEASE_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// Compare-and-pexpire: push the expiry out only while the key still holds our token.
pub const EXTEND_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";

/// Acquire and take a fencing token in one step: SET NX (PX when `ARGV[2]` > 0), then INCR the
/// per-resource counter; nil when the lock is taken.
pub const FENCED_ACQUIRE_SCRIPT: &str = "local ok if ARGV[2] == '0' then ok = redis.call('SET', KEYS[1], ARGV[1], 'NX') else ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) end if ok then return redis.call('INCR', KEYS[2]) end return false";

/// The counting (re-entrant) acquire, Redisson's `tryLockInnerAsync`: the key is a hash whose
/// field is the holder's token and whose value counts its holds. When the key is absent, or
/// already holds our field, the count goes up by one and the key's expiry is set (when
/// `ARGV[2]` > 0); the script answers the new count. Held by another token, it answers nil
/// (Redisson answers nil on a grant and the holder's PTTL otherwise; the same branches, with
/// replies that read like `SET NX`'s in a history). Run twice for one acquisition — a resend
/// after a reply timeout — it counts that acquisition twice.
pub const COUNTING_ACQUIRE_SCRIPT: &str = "if (redis.call('exists', KEYS[1]) == 0) or (redis.call('hexists', KEYS[1], ARGV[1]) == 1) then local n = redis.call('hincrby', KEYS[1], ARGV[1], 1) if ARGV[2] ~= '0' then redis.call('pexpire', KEYS[1], ARGV[2]) end return n end return false";

/// The counting release, Redisson's `unlockInnerAsync`: nil when the key does not hold our
/// field; otherwise the count goes down by one, and the key is deleted at 0 (answers 1) or
/// given the expiry `ARGV[2]` again (answers 0: still held, by one hold fewer).
pub const COUNTING_RELEASE_SCRIPT: &str = "if (redis.call('hexists', KEYS[1], ARGV[1]) == 0) then return false end local n = redis.call('hincrby', KEYS[1], ARGV[1], -1) if n > 0 then if ARGV[2] ~= '0' then redis.call('pexpire', KEYS[1], ARGV[2]) end return 0 end redis.call('del', KEYS[1]) return 1";

/// The counting extension, Redisson's `renewExpirationAsync`: pushes the expiry out while the
/// key holds our field (answers 1), else answers 0.
pub const COUNTING_EXTEND_SCRIPT: &str = "if (redis.call('hexists', KEYS[1], ARGV[1]) == 1) then redis.call('pexpire', KEYS[1], ARGV[2]) return 1 end return 0";

/// A command a lock sends to one Redis instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// `SET key value NX [PX ttl]`: take the lock if free, atomically with its expiry.
    SetNx {
        /// The lock key.
        key: SharedStr,
        /// The token written.
        value: SharedStr,
        /// The expiry in milliseconds; `None` sets none.
        ttl_ms: Option<u64>,
    },
    /// `SETNX key value`: take the lock if free, with no expiry (the first half of a pitfall).
    SetNxLegacy {
        /// The lock key.
        key: SharedStr,
        /// The token written.
        value: SharedStr,
    },
    /// `SET key value [PX ttl]`: unconditional write (last writer wins).
    Set {
        /// The lock key.
        key: SharedStr,
        /// The token written.
        value: SharedStr,
        /// The expiry in milliseconds; `None` sets none.
        ttl_ms: Option<u64>,
    },
    /// `PEXPIRE key ttl`.
    PExpire {
        /// The lock key.
        key: SharedStr,
        /// The expiry in milliseconds.
        ttl_ms: u64,
    },
    /// `GET key`.
    Get {
        /// The key read.
        key: SharedStr,
    },
    /// `DEL key`.
    Del {
        /// The key deleted, whoever's value it holds.
        key: SharedStr,
    },
    /// `INCR key`.
    Incr {
        /// The counter incremented.
        key: SharedStr,
    },
    /// `WAIT replicas timeout`: block until that many replicas acknowledged earlier writes.
    Wait {
        /// Replicas that must acknowledge.
        replicas: u32,
        /// How long the server may block, in milliseconds.
        timeout_ms: u64,
    },
    /// The compare-and-delete script ([`RELEASE_SCRIPT`]).
    Release {
        /// The lock key.
        key: SharedStr,
        /// The token the key must still hold to be deleted.
        token: SharedStr,
    },
    /// The compare-and-pexpire script ([`EXTEND_SCRIPT`]).
    Extend {
        /// The lock key.
        key: SharedStr,
        /// The token the key must still hold to be extended.
        token: SharedStr,
        /// The new expiry in milliseconds.
        ttl_ms: u64,
    },
    /// The acquire-with-fencing-token script ([`FENCED_ACQUIRE_SCRIPT`]).
    FencedAcquire {
        /// The lock key.
        key: SharedStr,
        /// The per-resource counter the fencing token is drawn from.
        counter_key: SharedStr,
        /// The token written.
        token: SharedStr,
        /// The expiry in milliseconds; `None` sets none.
        ttl_ms: Option<u64>,
    },
    /// The counting (re-entrant) acquire script ([`COUNTING_ACQUIRE_SCRIPT`]).
    CountingAcquire {
        /// The lock key (a hash).
        key: SharedStr,
        /// The field counted: the holder's token.
        token: SharedStr,
        /// The expiry in milliseconds; `None` sets none.
        ttl_ms: Option<u64>,
    },
    /// The counting release script ([`COUNTING_RELEASE_SCRIPT`]).
    CountingRelease {
        /// The lock key (a hash).
        key: SharedStr,
        /// The field counted down.
        token: SharedStr,
        /// The expiry the key gets again while holds remain; `None` sets none.
        ttl_ms: Option<u64>,
    },
    /// The counting extension script ([`COUNTING_EXTEND_SCRIPT`]).
    CountingExtend {
        /// The lock key (a hash).
        key: SharedStr,
        /// The field the key must hold to be extended.
        token: SharedStr,
        /// The new expiry in milliseconds.
        ttl_ms: u64,
    },
}

/// What a command is for, so a history reader knows a grant from a release without parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Takes the lock (SET NX, SETNX, plain SET, the fenced script).
    Acquire,
    /// Gives a lock taken by SETNX its expiry.
    Expire,
    /// Gives the lock back.
    Release,
    /// Pushes the lock's expiry out.
    Extend,
    /// Waits for replicas.
    Wait,
    /// Anything else (GET, INCR, ...).
    Other,
}

/// A command's variant without its arguments: cheap to keep while a reply is awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// [`Command::SetNx`].
    SetNx,
    /// [`Command::SetNxLegacy`].
    SetNxLegacy,
    /// [`Command::Set`].
    Set,
    /// [`Command::PExpire`].
    PExpire,
    /// [`Command::Get`].
    Get,
    /// [`Command::Del`].
    Del,
    /// [`Command::Incr`].
    Incr,
    /// [`Command::Wait`].
    Wait,
    /// [`Command::Release`].
    Release,
    /// [`Command::Extend`].
    Extend,
    /// [`Command::FencedAcquire`].
    FencedAcquire,
    /// [`Command::CountingAcquire`].
    CountingAcquire,
    /// [`Command::CountingRelease`].
    CountingRelease,
    /// [`Command::CountingExtend`].
    CountingExtend,
}

impl Command {
    /// The command's variant, without arguments.
    pub fn shape(&self) -> Shape {
        match self {
            Command::SetNx { .. } => Shape::SetNx,
            Command::SetNxLegacy { .. } => Shape::SetNxLegacy,
            Command::Set { .. } => Shape::Set,
            Command::PExpire { .. } => Shape::PExpire,
            Command::Get { .. } => Shape::Get,
            Command::Del { .. } => Shape::Del,
            Command::Incr { .. } => Shape::Incr,
            Command::Wait { .. } => Shape::Wait,
            Command::Release { .. } => Shape::Release,
            Command::Extend { .. } => Shape::Extend,
            Command::FencedAcquire { .. } => Shape::FencedAcquire,
            Command::CountingAcquire { .. } => Shape::CountingAcquire,
            Command::CountingRelease { .. } => Shape::CountingRelease,
            Command::CountingExtend { .. } => Shape::CountingExtend,
        }
    }

    /// The command's purpose in the lock protocol.
    pub fn op(&self) -> Op {
        match self {
            Command::SetNx { .. }
            | Command::SetNxLegacy { .. }
            | Command::Set { .. }
            | Command::FencedAcquire { .. }
            | Command::CountingAcquire { .. } => Op::Acquire,
            Command::PExpire { .. } => Op::Expire,
            Command::Release { .. } | Command::Del { .. } | Command::CountingRelease { .. } => {
                Op::Release
            }
            Command::Extend { .. } | Command::CountingExtend { .. } => Op::Extend,
            Command::Wait { .. } => Op::Wait,
            Command::Get { .. } | Command::Incr { .. } => Op::Other,
        }
    }

    /// The command as it goes on the wire, borrowed from the command (no copies): a plain
    /// command's words, or a script with its keys and arguments.
    pub fn wire(&self) -> Wire<'_> {
        use Word::{Int, Text};
        match self {
            Command::SetNx { key, value, ttl_ms } => {
                let mut w = Vec::with_capacity(6);
                w.extend([Text("SET"), Text(key), Text(value), Text("NX")]);
                Wire::Plain(with_px(w, ttl_ms))
            }
            Command::SetNxLegacy { key, value } => {
                Wire::Plain(vec![Text("SETNX"), Text(key), Text(value)])
            }
            Command::Set { key, value, ttl_ms } => {
                let mut w = Vec::with_capacity(5);
                w.extend([Text("SET"), Text(key), Text(value)]);
                Wire::Plain(with_px(w, ttl_ms))
            }
            Command::PExpire { key, ttl_ms } => {
                Wire::Plain(vec![Text("PEXPIRE"), Text(key), Int(*ttl_ms)])
            }
            Command::Get { key } => Wire::Plain(vec![Text("GET"), Text(key)]),
            Command::Del { key } => Wire::Plain(vec![Text("DEL"), Text(key)]),
            Command::Incr { key } => Wire::Plain(vec![Text("INCR"), Text(key)]),
            Command::Wait {
                replicas,
                timeout_ms,
            } => Wire::Plain(vec![
                Text("WAIT"),
                Int(u64::from(*replicas)),
                Int(*timeout_ms),
            ]),
            Command::Release { key, token } => Wire::Script {
                script: Script::Release,
                keys: vec![key],
                args: vec![Text(token)],
            },
            Command::Extend { key, token, ttl_ms } => Wire::Script {
                script: Script::Extend,
                keys: vec![key],
                args: vec![Text(token), Int(*ttl_ms)],
            },
            Command::FencedAcquire {
                key,
                counter_key,
                token,
                ttl_ms,
            } => Wire::Script {
                script: Script::FencedAcquire,
                keys: vec![key, counter_key],
                args: vec![Text(token), Int(ttl_ms.unwrap_or(0))],
            },
            Command::CountingAcquire { key, token, ttl_ms } => Wire::Script {
                script: Script::CountingAcquire,
                keys: vec![key],
                args: vec![Text(token), Int(ttl_ms.unwrap_or(0))],
            },
            Command::CountingRelease { key, token, ttl_ms } => Wire::Script {
                script: Script::CountingRelease,
                keys: vec![key],
                args: vec![Text(token), Int(ttl_ms.unwrap_or(0))],
            },
            Command::CountingExtend { key, token, ttl_ms } => Wire::Script {
                script: Script::CountingExtend,
                keys: vec![key],
                args: vec![Text(token), Int(*ttl_ms)],
            },
        }
    }

    /// The command as Redis receives it: name and arguments, scripts sent with `EVAL`
    /// (a client that caches scripts sends the same with `EVALSHA` and the script's hash).
    pub fn args(&self) -> Vec<String> {
        match self.wire() {
            Wire::Plain(words) => words.iter().map(Word::to_string).collect(),
            Wire::Script { script, keys, args } => {
                let mut v = vec![
                    "EVAL".to_string(),
                    script.body().to_string(),
                    keys.len().to_string(),
                ];
                v.extend(keys.iter().map(|k| k.to_string()));
                v.extend(args.iter().map(Word::to_string));
                v
            }
        }
    }
}

/// Appends ` PX ttl` when the command carries a TTL.
fn with_px<'a>(mut words: Vec<Word<'a>>, ttl: &Option<u64>) -> Vec<Word<'a>> {
    if let Some(t) = ttl {
        words.extend([Word::Text("PX"), Word::Int(*t)]);
    }
    words
}

/// One argument of a command on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word<'a> {
    /// A string argument (command name, key, token, keyword).
    Text(&'a str),
    /// A number, sent in decimal.
    Int(u64),
}

impl fmt::Display for Word<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Word::Text(t) => f.write_str(t),
            Word::Int(n) => write!(f, "{n}"),
        }
    }
}

/// The Lua scripts the lock protocol runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Script {
    /// [`RELEASE_SCRIPT`].
    Release,
    /// [`EXTEND_SCRIPT`].
    Extend,
    /// [`FENCED_ACQUIRE_SCRIPT`].
    FencedAcquire,
    /// [`COUNTING_ACQUIRE_SCRIPT`].
    CountingAcquire,
    /// [`COUNTING_RELEASE_SCRIPT`].
    CountingRelease,
    /// [`COUNTING_EXTEND_SCRIPT`].
    CountingExtend,
}

impl Script {
    /// Every script, for a driver that loads them all when it connects.
    pub const ALL: [Script; 6] = [
        Script::Release,
        Script::Extend,
        Script::FencedAcquire,
        Script::CountingAcquire,
        Script::CountingRelease,
        Script::CountingExtend,
    ];

    /// The Lua source.
    pub fn body(self) -> &'static str {
        match self {
            Script::Release => RELEASE_SCRIPT,
            Script::Extend => EXTEND_SCRIPT,
            Script::FencedAcquire => FENCED_ACQUIRE_SCRIPT,
            Script::CountingAcquire => COUNTING_ACQUIRE_SCRIPT,
            Script::CountingRelease => COUNTING_RELEASE_SCRIPT,
            Script::CountingExtend => COUNTING_EXTEND_SCRIPT,
        }
    }
}

/// A command as it goes on the wire ([`Command::wire`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire<'a> {
    /// A plain command: its name, then its arguments.
    Plain(Vec<Word<'a>>),
    /// A Lua script (`EVAL body numkeys keys... args...`).
    Script {
        /// Which script.
        script: Script,
        /// Its `KEYS`.
        keys: Vec<&'a str>,
        /// Its `ARGV`.
        args: Vec<Word<'a>>,
    },
}

/// Short, readable form for histories and timelines (scripts by name, not by Lua text).
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The name, then each word after a space, as they are (write_str, not `{}`: no
        // padding looked up per word).
        let words = |f: &mut fmt::Formatter<'_>, name: &str, rest: &[&str]| {
            f.write_str(name)?;
            rest.iter().try_for_each(|w| {
                f.write_str(" ")?;
                f.write_str(w)
            })
        };
        let px = |f: &mut fmt::Formatter<'_>, ttl: &Option<u64>| match ttl {
            Some(t) => write!(f, " PX {t}"),
            None => Ok(()),
        };
        match self {
            Command::SetNx { key, value, ttl_ms } => {
                words(f, "SET", &[key, value, "NX"])?;
                px(f, ttl_ms)
            }
            Command::SetNxLegacy { key, value } => words(f, "SETNX", &[key, value]),
            Command::Set { key, value, ttl_ms } => {
                words(f, "SET", &[key, value])?;
                px(f, ttl_ms)
            }
            Command::PExpire { key, ttl_ms } => {
                words(f, "PEXPIRE", &[key])?;
                write!(f, " {ttl_ms}")
            }
            Command::Get { key } => words(f, "GET", &[key]),
            Command::Del { key } => words(f, "DEL", &[key]),
            Command::Incr { key } => words(f, "INCR", &[key]),
            Command::Wait {
                replicas,
                timeout_ms,
            } => write!(f, "WAIT {replicas} {timeout_ms}"),
            Command::Release { key, token } => words(f, "RELEASE-SCRIPT", &[key, token]),
            Command::Extend { key, token, ttl_ms } => {
                words(f, "EXTEND-SCRIPT", &[key, token])?;
                write!(f, " {ttl_ms}")
            }
            Command::FencedAcquire {
                key,
                counter_key,
                token,
                ttl_ms,
            } => {
                words(f, "FENCED-ACQUIRE-SCRIPT", &[key, counter_key, token])?;
                write!(f, " {}", ttl_ms.unwrap_or(0))
            }
            Command::CountingAcquire { key, token, ttl_ms } => {
                words(f, "COUNTING-ACQUIRE-SCRIPT", &[key, token])?;
                write!(f, " {}", ttl_ms.unwrap_or(0))
            }
            Command::CountingRelease { key, token, ttl_ms } => {
                words(f, "COUNTING-RELEASE-SCRIPT", &[key, token])?;
                write!(f, " {}", ttl_ms.unwrap_or(0))
            }
            Command::CountingExtend { key, token, ttl_ms } => {
                words(f, "COUNTING-EXTEND-SCRIPT", &[key, token])?;
                write!(f, " {ttl_ms}")
            }
        }
    }
}

/// A Redis reply, as much of RESP as the lock protocol reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// A nil bulk string (`SET NX` that lost, `GET` of a missing key).
    Nil,
    /// An integer.
    Int(i64),
    /// A bulk string.
    Bulk(String),
    /// An error reply, or a transport failure reported by the driver.
    Error(String),
}

impl Reply {
    /// Whether this reply to an acquire-type command (or to the PEXPIRE that completes a
    /// SETNX) means the lock was taken, and the fencing token it carries if any.
    pub fn grant(&self, cmd: Shape) -> Option<Option<u64>> {
        match (cmd, self) {
            (Shape::SetNx | Shape::Set, Reply::Ok) => Some(None),
            (Shape::SetNxLegacy | Shape::PExpire, Reply::Int(1)) => Some(None),
            (Shape::FencedAcquire, Reply::Int(n)) if *n > 0 => Some(Some(*n as u64)),
            // The hold count: 1 for a fresh grant, more when the field was there already.
            (Shape::CountingAcquire, Reply::Int(n)) if *n > 0 => Some(None),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_nx_px_encoding() {
        let c = Command::SetNx {
            key: "lock:order:5001".into(),
            value: "tok".into(),
            ttl_ms: Some(30000),
        };
        assert_eq!(
            c.args(),
            ["SET", "lock:order:5001", "tok", "NX", "PX", "30000"]
        );
        assert_eq!(c.to_string(), "SET lock:order:5001 tok NX PX 30000");
        assert_eq!(c.op(), Op::Acquire);
    }

    #[test]
    fn scripts_are_sent_with_eval_and_key_count() {
        let c = Command::Release {
            key: "k".into(),
            token: "t".into(),
        };
        let a = c.args();
        assert_eq!(a[0], "EVAL");
        assert_eq!(a[1], RELEASE_SCRIPT);
        assert_eq!(&a[2..], ["1", "k", "t"]);
        assert_eq!(c.to_string(), "RELEASE-SCRIPT k t");
        let f = Command::FencedAcquire {
            key: "k".into(),
            counter_key: "k:fence".into(),
            token: "t".into(),
            ttl_ms: None,
        };
        assert_eq!(&f.args()[2..], ["2", "k", "k:fence", "t", "0"]);
    }

    #[test]
    fn display_names_scripts_and_keeps_their_words_in_order() {
        let extend = Command::Extend {
            key: "k".into(),
            token: "t".into(),
            ttl_ms: 700,
        };
        assert_eq!(extend.to_string(), "EXTEND-SCRIPT k t 700");
        let fenced = |ttl_ms| Command::FencedAcquire {
            key: "k".into(),
            counter_key: "k:fence".into(),
            token: "t".into(),
            ttl_ms,
        };
        assert_eq!(
            fenced(Some(30)).to_string(),
            "FENCED-ACQUIRE-SCRIPT k k:fence t 30"
        );
        assert_eq!(
            fenced(None).to_string(),
            "FENCED-ACQUIRE-SCRIPT k k:fence t 0"
        );
    }

    #[test]
    fn display_is_the_args_for_plain_commands() {
        let cmds = [
            Command::SetNx {
                key: "k".into(),
                value: "v".into(),
                ttl_ms: None,
            },
            Command::Set {
                key: "k".into(),
                value: "v".into(),
                ttl_ms: Some(5),
            },
            Command::SetNxLegacy {
                key: "k".into(),
                value: "v".into(),
            },
            Command::PExpire {
                key: "k".into(),
                ttl_ms: 5,
            },
            Command::Get { key: "k".into() },
            Command::Del { key: "k".into() },
            Command::Incr { key: "k".into() },
            Command::Wait {
                replicas: 1,
                timeout_ms: 100,
            },
        ];
        for c in cmds {
            assert_eq!(c.to_string(), c.args().join(" "));
        }
    }

    #[test]
    fn grant_reading() {
        let setnx = Command::SetNx {
            key: "k".into(),
            value: "v".into(),
            ttl_ms: None,
        };
        assert_eq!(Reply::Ok.grant(setnx.shape()), Some(None));
        assert_eq!(Reply::Nil.grant(setnx.shape()), None);
        let legacy = Command::SetNxLegacy {
            key: "k".into(),
            value: "v".into(),
        };
        assert_eq!(Reply::Int(1).grant(legacy.shape()), Some(None));
        assert_eq!(Reply::Int(0).grant(legacy.shape()), None);
        let fenced = Command::FencedAcquire {
            key: "k".into(),
            counter_key: "c".into(),
            token: "t".into(),
            ttl_ms: Some(1),
        };
        assert_eq!(Reply::Int(7).grant(fenced.shape()), Some(Some(7)));
        assert_eq!(Reply::Nil.grant(fenced.shape()), None);
    }
}
