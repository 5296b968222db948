//! A simulated Redis node: a keyspace whose keys expire by the node's own clock, and the
//! commands of the lock protocol executed the way Redis executes them.

use lock_core::{Command, Reply, SharedStr};
use std::collections::BTreeMap;

/// One key's value and its absolute expiry on the local clock (as Redis 7 propagates PXAT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The stored string, or for a hash (`count` is `Some`) its one field's name.
    pub value: SharedStr,
    /// Local time (µs) at which the key is gone; `None` for no expiry.
    pub expires_at: Option<u64>,
    /// `Some(n)`: the key is a hash of one field, `value`, holding the integer `n` (a counting
    /// lock: the holder's token and its holds; the counting scripts never make a hash of more
    /// fields, nor one whose field is not an integer). `None`: a string.
    pub count: Option<i64>,
}

/// A write as it travels the replication stream: the resulting state, not the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The key now holds this entry.
    Put {
        /// The key written.
        key: SharedStr,
        /// What it holds now.
        entry: Entry,
    },
    /// The key is gone.
    Del {
        /// The key deleted.
        key: SharedStr,
    },
}

/// A node's keyspace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyspace {
    entries: BTreeMap<SharedStr, Entry>,
}

/// Reply of a replica to any write.
pub const READONLY: &str = "READONLY You can't write against a read only replica.";

/// Reply of a replica to WAIT.
pub const WAIT_ON_REPLICA: &str = "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.";

const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";

/// Reply of a string command to a hash key, or of a hash command to a string key.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// Redis's `string2ll`: only the canonical decimal form of an i64 is an integer (no sign
/// `+`, no leading zeros, no `-0`, no spaces), so INCR refuses `"+5"` or `"007"`.
fn parse_redis_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let canonical = match digits.as_bytes() {
        [b'0'] => digits.len() == s.len(),
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if canonical {
        s.parse().ok()
    } else {
        None
    }
}

/// The absolute local expiry (µs) of a `ttl_ms` from `now`, checked the way Redis checks
/// `PX`/`PEXPIRE` arguments: above i64::MAX is not an integer, and an expiry past i64::MAX ms
/// is an invalid expire time (as is a zero `PX` on SET: `zero_ok` is false there; PEXPIRE 0
/// is valid and expires the key at once). Far expiries saturate the µs clock.
fn expiry(now: u64, ttl_ms: u64, command: &str, zero_ok: bool) -> Result<u64, Reply> {
    if ttl_ms > i64::MAX as u64 {
        return Err(Reply::Error(NOT_AN_INTEGER.into()));
    }
    if (ttl_ms == 0 && !zero_ok) || ttl_ms > i64::MAX as u64 - now / 1000 {
        return Err(Reply::Error(format!(
            "ERR invalid expire time in '{command}' command"
        )));
    }
    Ok(now.saturating_add(ttl_ms.saturating_mul(1000)))
}

/// The expiry a counting script's `pexpire` gives (`None`: the script sets none, the key
/// keeps its own; its `ARGV` "0").
fn counted_expiry(now: u64, ttl_ms: Option<u64>) -> Result<Option<u64>, Reply> {
    ttl_ms
        .filter(|ms| *ms > 0)
        .map(|ms| expiry(now, ms, "pexpire", true))
        .transpose()
}

impl Keyspace {
    /// The live entry for `key` at local time `now` (expired keys are dropped lazily).
    pub fn get(&mut self, key: &str, now: u64) -> Option<&Entry> {
        if self
            .entries
            .get(key)
            .is_some_and(|e| e.expires_at.is_some_and(|x| x <= now))
        {
            self.entries.remove(key);
        }
        self.entries.get(key)
    }

    /// The entry for `key` if it is live at local time `now`, without dropping expired keys.
    pub fn peek(&self, key: &str, now: u64) -> Option<&Entry> {
        self.entries
            .get(key)
            .filter(|e| e.expires_at.is_none_or(|x| x > now))
    }

    /// Applies one replicated effect.
    pub fn apply(&mut self, effect: &Effect) {
        match effect {
            Effect::Put { key, entry } => {
                self.entries.insert(key.clone(), entry.clone());
            }
            Effect::Del { key } => {
                self.entries.remove(key);
            }
        }
    }

    /// Empties the keyspace (restart without persistence, full resync).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Every live key at local time `now`, in key order (for comparisons and tests).
    pub fn snapshot(&mut self, now: u64) -> BTreeMap<SharedStr, Entry> {
        self.entries
            .retain(|_, e| e.expires_at.is_none_or(|x| x > now));
        self.entries.clone()
    }

    /// Stores `value` with the absolute expiry `expires_at` (from [`expiry`]).
    /// Stores `entry` under `key`, reusing the key's string when the key is there already.
    fn store(&mut self, key: &SharedStr, entry: Entry) {
        match self.entries.get_mut(key.as_str()) {
            Some(e) => *e = entry,
            None => {
                self.entries.insert(key.clone(), entry);
            }
        }
    }

    fn put(
        &mut self,
        key: &SharedStr,
        value: SharedStr,
        expires_at: Option<u64>,
        fx: &mut Vec<Effect>,
    ) {
        let entry = Entry {
            value,
            expires_at,
            count: None,
        };
        self.store(key, entry.clone());
        fx.push(Effect::Put {
            key: key.clone(),
            entry,
        });
    }

    fn del(&mut self, key: &SharedStr, now: u64, fx: &mut Vec<Effect>) -> bool {
        let existed = self.get(key, now).is_some();
        if existed {
            self.entries.remove(key.as_str());
            fx.push(Effect::Del { key: key.clone() });
        }
        existed
    }

    /// The live string at `key`: `None` when absent, WRONGTYPE for a hash.
    fn string(&mut self, key: &str, now: u64) -> Result<Option<&Entry>, Reply> {
        match self.get(key, now) {
            Some(e) if e.count.is_some() => Err(Reply::Error(WRONGTYPE.into())),
            e => Ok(e),
        }
    }

    /// Whether the string at `key` is `token` (WRONGTYPE for a hash, as the scripts' GET).
    fn holds(&mut self, key: &str, token: &str, now: u64) -> Result<bool, Reply> {
        Ok(self.string(key, now)?.is_some_and(|e| e.value == token))
    }

    /// The hold count of `token`'s field in the hash at `key` (0 when the key or the field
    /// is absent; WRONGTYPE for a string, as HEXISTS).
    fn holds_counted(&mut self, key: &str, token: &str, now: u64) -> Result<i64, Reply> {
        match self.get(key, now) {
            None => Ok(0),
            Some(Entry { count: None, .. }) => Err(Reply::Error(WRONGTYPE.into())),
            Some(e) if e.value == token => Ok(e.count.unwrap_or(0)),
            Some(_) => Ok(0),
        }
    }

    /// Writes the hash at `key` as `token`'s field holding `count`, with `expires_at` (or the
    /// key's own expiry when `keep_expiry`).
    fn put_counted(
        &mut self,
        key: &SharedStr,
        token: &SharedStr,
        count: i64,
        expires_at: Option<u64>,
        now: u64,
        fx: &mut Vec<Effect>,
    ) {
        let expires_at = match expires_at {
            Some(at) => Some(at),
            None => self.get(key, now).and_then(|e| e.expires_at),
        };
        let entry = Entry {
            value: token.clone(),
            expires_at,
            count: Some(count),
        };
        self.store(key, entry.clone());
        fx.push(Effect::Put {
            key: key.clone(),
            entry,
        });
    }

    fn incr(&mut self, key: &SharedStr, now: u64, fx: &mut Vec<Effect>) -> Result<i64, Reply> {
        let current = match self.string(key, now)? {
            None => 0,
            Some(e) => {
                parse_redis_int(&e.value).ok_or_else(|| Reply::Error(NOT_AN_INTEGER.into()))?
            }
        };
        let expires_at = self.get(key, now).and_then(|e| e.expires_at);
        let n = current
            .checked_add(1)
            .ok_or_else(|| Reply::Error("ERR increment or decrement would overflow".into()))?;
        let entry = Entry {
            value: n.to_string().into(),
            expires_at,
            count: None,
        };
        self.store(key, entry.clone());
        fx.push(Effect::Put {
            key: key.clone(),
            entry,
        });
        Ok(n)
    }

    fn pexpire(
        &mut self,
        key: &SharedStr,
        ttl_ms: u64,
        now: u64,
        fx: &mut Vec<Effect>,
    ) -> Result<bool, Reply> {
        let expires_at = expiry(now, ttl_ms, "pexpire", true)?;
        let Some(e) = self.get(key, now) else {
            return Ok(false);
        };
        let entry = Entry {
            value: e.value.clone(),
            expires_at: Some(expires_at),
            count: e.count,
        };
        self.store(key, entry.clone());
        fx.push(Effect::Put {
            key: key.clone(),
            entry,
        });
        Ok(true)
    }

    /// Executes `cmd` at local time `now`; writes append their effects to `fx`.
    /// `writable` is false on a replica. WAIT is the caller's business (it needs replicas):
    /// here it answers 0 on a primary and an error on a replica, as Redis does.
    pub fn execute(
        &mut self,
        cmd: &Command,
        now: u64,
        writable: bool,
        fx: &mut Vec<Effect>,
    ) -> Reply {
        match self.try_execute(cmd, now, writable, fx) {
            Ok(reply) | Err(reply) => reply,
        }
    }

    fn try_execute(
        &mut self,
        cmd: &Command,
        now: u64,
        writable: bool,
        fx: &mut Vec<Effect>,
    ) -> Result<Reply, Reply> {
        let readonly = || Err(Reply::Error(READONLY.into()));
        // The release and extend scripts only write when the token matches: on a replica they
        // fail at that write (Redis checks each redis.call inside a script), not before.
        let is_write = !matches!(
            cmd,
            Command::Get { .. }
                | Command::Wait { .. }
                | Command::Release { .. }
                | Command::Extend { .. }
                | Command::CountingAcquire { .. }
                | Command::CountingRelease { .. }
                | Command::CountingExtend { .. }
        );
        if is_write && !writable {
            return readonly();
        }
        let px = |ttl_ms: &Option<u64>| ttl_ms.map(|ms| expiry(now, ms, "set", false)).transpose();
        Ok(match cmd {
            Command::SetNx { key, value, ttl_ms } => {
                let expires_at = px(ttl_ms)?;
                if self.get(key, now).is_some() {
                    Reply::Nil
                } else {
                    self.put(key, value.clone(), expires_at, fx);
                    Reply::Ok
                }
            }
            Command::SetNxLegacy { key, value } => {
                if self.get(key, now).is_some() {
                    Reply::Int(0)
                } else {
                    self.put(key, value.clone(), None, fx);
                    Reply::Int(1)
                }
            }
            Command::Set { key, value, ttl_ms } => {
                let expires_at = px(ttl_ms)?;
                self.put(key, value.clone(), expires_at, fx);
                Reply::Ok
            }
            Command::PExpire { key, ttl_ms } => {
                Reply::Int(self.pexpire(key, *ttl_ms, now, fx)? as i64)
            }
            Command::Get { key } => match self.string(key, now)? {
                Some(e) => Reply::Bulk(e.value.to_string()),
                None => Reply::Nil,
            },
            Command::Del { key } => Reply::Int(self.del(key, now, fx) as i64),
            Command::Incr { key } => Reply::Int(self.incr(key, now, fx)?),
            Command::Wait { .. } if !writable => Reply::Error(WAIT_ON_REPLICA.into()),
            Command::Wait { .. } => Reply::Int(0),
            Command::Release { key, token } => {
                if !self.holds(key, token, now)? {
                    Reply::Int(0)
                } else if !writable {
                    return readonly();
                } else {
                    Reply::Int(self.del(key, now, fx) as i64)
                }
            }
            Command::Extend { key, token, ttl_ms } => {
                if !self.holds(key, token, now)? {
                    Reply::Int(0)
                } else if !writable {
                    return readonly();
                } else {
                    Reply::Int(self.pexpire(key, *ttl_ms, now, fx)? as i64)
                }
            }
            Command::FencedAcquire {
                key,
                counter_key,
                token,
                ttl_ms,
            } => {
                // The script sends a missing TTL as "0" and then SETs without PX.
                let expires_at = px(&ttl_ms.filter(|ms| *ms > 0))?;
                if self.get(key, now).is_some() {
                    return Ok(Reply::Nil);
                }
                self.put(key, token.clone(), expires_at, fx);
                Reply::Int(self.incr(counter_key, now, fx)?)
            }
            Command::CountingAcquire { key, token, ttl_ms } => {
                // `exists`, then `hexists` only for a key that is there (a string errors).
                let held = match self.get(key, now) {
                    None => 0,
                    Some(_) => self.holds_counted(key, token, now)?,
                };
                if held == 0 && self.get(key, now).is_some() {
                    return Ok(Reply::Nil);
                }
                if !writable {
                    return readonly();
                }
                let expires_at = counted_expiry(now, *ttl_ms)?;
                self.put_counted(key, token, held + 1, expires_at, now, fx);
                Reply::Int(held + 1)
            }
            Command::CountingRelease { key, token, ttl_ms } => {
                let held = self.holds_counted(key, token, now)?;
                if held == 0 {
                    return Ok(Reply::Nil);
                }
                if !writable {
                    return readonly();
                }
                if held > 1 {
                    let expires_at = counted_expiry(now, *ttl_ms)?;
                    self.put_counted(key, token, held - 1, expires_at, now, fx);
                    Reply::Int(0)
                } else {
                    self.del(key, now, fx);
                    Reply::Int(1)
                }
            }
            Command::CountingExtend { key, token, ttl_ms } => {
                if self.holds_counted(key, token, now)? == 0 {
                    Reply::Int(0)
                } else if !writable {
                    return readonly();
                } else {
                    self.pexpire(key, *ttl_ms, now, fx)?;
                    Reply::Int(1)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
