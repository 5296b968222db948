//! The client protocol's lines (docs/client-protocol.md): what an external program prints on
//! stdout, read one line at a time into history records, with the order of lines checked so
//! that a broken adapter is named rather than judged.

use checker::{Event as H, SectionEnd};
use serde::Deserialize;

/// One line of the protocol as a program prints it.
#[derive(Debug, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Line {
    Acquiring {},
    Acquired {
        #[serde(default)]
        fencing_token: Option<u64>,
        #[serde(default)]
        token: Option<String>,
    },
    Failed {
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        attempts: Option<u32>,
    },
    Lost {
        #[serde(default)]
        reason: Option<String>,
    },
    Releasing {},
    Released {
        ok: bool,
        #[serde(default)]
        error: Option<String>,
    },
    Log {
        message: String,
    },
}

/// Where a program is in its loop, as its lines tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between iterations.
    Idle,
    /// After `acquiring`.
    Acquiring,
    /// After `acquired`: the critical section.
    Holding,
    /// After `lost` in a section: the program may still release.
    LostHeld,
    /// After `releasing`.
    Releasing,
}

/// One program's reading of the protocol: turns its lines into history records and checks
/// that they come in an order the protocol allows.
#[derive(Debug)]
pub(crate) struct Session {
    client: String,
    phase: Phase,
    acquires: u32,
    lines: u64,
}

impl Session {
    /// A session for the client named `client`.
    pub(crate) fn new(client: &str) -> Session {
        Session {
            client: client.to_string(),
            phase: Phase::Idle,
            acquires: 0,
            lines: 0,
        }
    }

    /// How many acquisitions the program began (its iterations so far).
    pub(crate) fn acquires(&self) -> u32 {
        self.acquires
    }

    /// How many lines the program printed.
    pub(crate) fn lines(&self) -> u64 {
        self.lines
    }

    /// Whether the program is inside a critical section (after `acquired`, before
    /// `releasing` or `lost`).
    pub(crate) fn holding(&self) -> bool {
        self.phase == Phase::Holding
    }

    /// Reads one line: the records it stands for, or why it is not the protocol.
    pub(crate) fn read(&mut self, text: &str) -> Result<Vec<H>, String> {
        self.lines += 1;
        let line: Line = serde_json::from_str(text).map_err(|e| {
            format!("not a protocol line ({e}); lines are JSON objects with an `event` field: acquiring, acquired, failed, lost, releasing, released, log")
        })?;
        let client = self.client.clone();
        let (next, records) = match (self.phase, line) {
            (_, Line::Log { message }) => (
                self.phase,
                vec![H::ClientSaid {
                    client: client.into(),
                    message,
                }],
            ),
            (Phase::Idle, Line::Acquiring {}) => {
                self.acquires += 1;
                (
                    Phase::Acquiring,
                    vec![H::AcquireStarted {
                        client: client.into(),
                    }],
                )
            }
            (
                Phase::Acquiring,
                Line::Acquired {
                    fencing_token,
                    token,
                },
            ) => (
                Phase::Holding,
                vec![H::Acquired {
                    client: client.into(),
                    token: token.unwrap_or_default().into(),
                    fencing_token,
                    valid_for_us: None,
                }],
            ),
            (Phase::Acquiring, Line::Failed { reason, attempts }) => (
                Phase::Idle,
                vec![H::AcquireFailed {
                    client: client.into(),
                    attempts: attempts.unwrap_or(1),
                    reason: reason.unwrap_or_else(|| "the library gave up".into()),
                }],
            ),
            (Phase::Holding, Line::Lost { reason }) => (
                Phase::LostHeld,
                vec![
                    H::Lost {
                        client: client.clone().into(),
                        reason: reason.unwrap_or_else(|| "the library said so".into()),
                    },
                    H::SectionEnded {
                        client: client.into(),
                        why: SectionEnd::Lost,
                    },
                ],
            ),
            (Phase::Holding, Line::Releasing {}) => (
                Phase::Releasing,
                vec![H::SectionEnded {
                    client: client.into(),
                    why: SectionEnd::Done,
                }],
            ),
            (Phase::LostHeld, Line::Releasing {}) => (Phase::Releasing, vec![]),
            (Phase::LostHeld, Line::Acquiring {}) => {
                self.acquires += 1;
                (
                    Phase::Acquiring,
                    vec![H::AcquireStarted {
                        client: client.into(),
                    }],
                )
            }
            (Phase::Releasing, Line::Released { ok, error }) => (
                Phase::Idle,
                vec![H::Released {
                    client: client.into(),
                    confirmed: usize::from(ok),
                    error,
                }],
            ),
            (phase, line) => return Err(out_of_order(phase, &line)),
        };
        self.phase = next;
        Ok(records)
    }
}

/// Why `line` cannot come in `phase`, and what the protocol wants there.
fn out_of_order(phase: Phase, line: &Line) -> String {
    let what = match line {
        Line::Acquiring {} => "acquiring",
        Line::Acquired { .. } => "acquired",
        Line::Failed { .. } => "failed",
        Line::Lost { .. } => "lost",
        Line::Releasing {} => "releasing",
        Line::Released { .. } => "released",
        Line::Log { .. } => "log",
    };
    let wanted = match phase {
        Phase::Idle => "`acquiring` (or `log`)",
        Phase::Acquiring => "`acquired` or `failed`",
        Phase::Holding => "`releasing` before the release call, or `lost`",
        Phase::LostHeld => "`releasing` or the next `acquiring`",
        Phase::Releasing => "`released` once the release call returned",
    };
    format!("`{what}` cannot come here: after the lines so far the protocol expects {wanted}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(lines: &[&str]) -> Result<Vec<H>, String> {
        let mut s = Session::new("A");
        let mut out = Vec::new();
        for l in lines {
            out.extend(s.read(l)?);
        }
        Ok(out)
    }

    #[test]
    fn a_whole_iteration_becomes_the_records_the_checker_reads() {
        let got = read_all(&[
            r#"{"event":"acquiring"}"#,
            r#"{"event":"acquired","fencing_token":7}"#,
            r#"{"event":"releasing"}"#,
            r#"{"event":"released","ok":false,"error":"LockNotOwnedError: gone"}"#,
        ])
        .unwrap();
        assert!(matches!(
            &got[1],
            H::Acquired {
                fencing_token: Some(7),
                ..
            }
        ));
        assert!(matches!(
            &got[2],
            H::SectionEnded {
                why: SectionEnd::Done,
                ..
            }
        ));
        match &got[3] {
            H::Released {
                confirmed, error, ..
            } => {
                assert_eq!(*confirmed, 0);
                assert_eq!(error.as_deref(), Some("LockNotOwnedError: gone"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_lost_lock_ends_the_section_and_may_still_be_released() {
        let got = read_all(&[
            r#"{"event":"acquiring"}"#,
            r#"{"event":"acquired"}"#,
            r#"{"event":"lost","reason":"renewal failed"}"#,
            r#"{"event":"releasing"}"#,
            r#"{"event":"released","ok":true}"#,
        ])
        .unwrap();
        let ended = got
            .iter()
            .filter(|e| matches!(e, H::SectionEnded { .. }))
            .count();
        assert_eq!(ended, 1);
    }

    #[test]
    fn lines_out_of_order_or_not_json_are_refused_with_what_was_expected() {
        let e = read_all(&[r#"{"event":"acquired"}"#]).unwrap_err();
        assert!(e.contains("expects `acquiring`"), "{e}");
        let e = read_all(&[
            r#"{"event":"acquiring"}"#,
            r#"{"event":"acquired"}"#,
            r#"{"event":"released","ok":true}"#,
        ])
        .unwrap_err();
        assert!(e.contains("`releasing` before the release call"), "{e}");
        let e = read_all(&["hello"]).unwrap_err();
        assert!(e.starts_with("not a protocol line"), "{e}");
        let e = read_all(&[r#"{"event":"grabbed"}"#]).unwrap_err();
        assert!(e.contains("unknown variant"), "{e}");
    }
}
