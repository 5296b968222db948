//! The protected resource: records writes and, when asked to, rejects stale fencing tokens.
use checker::SharedStr;

/// The resource's acceptance state.
#[derive(Debug, Clone, Default)]
pub struct Resource {
    checks_fencing: bool,
    /// The highest fencing token accepted so far, and who wrote it.
    max: Option<(u64, SharedStr)>,
}

impl Resource {
    /// A resource that checks fencing tokens or accepts everything.
    pub fn new(checks_fencing: bool) -> Resource {
        Resource {
            checks_fencing,
            max: None,
        }
    }

    /// Decides whether `client`'s write carrying `fencing` is accepted.
    ///
    /// With checking on, a token is accepted when it is above every token seen, or equal to
    /// the highest one from the same writer (its later writes in the same lease). An equal
    /// token from another writer means two leases share a number — the resource cannot order
    /// them, so it keeps the first. Writes without a token are accepted (nothing to check).
    pub fn write(&mut self, client: &SharedStr, fencing: Option<u64>) -> bool {
        let (true, Some(t)) = (self.checks_fencing, fencing) else {
            return true;
        };
        let accepted = match &self.max {
            Some((max, by)) => t > *max || (t == *max && by == client),
            None => true,
        };
        if accepted && self.max.as_ref().is_none_or(|(max, _)| t > *max) {
            self.max = Some((t, client.clone()));
        }
        accepted
    }

    /// Takes `client`'s write carrying `fencing` ([`Resource::write`]) and returns the history
    /// record of it, which every backend appends as it is.
    pub fn take_write(&mut self, client: &SharedStr, fencing: Option<u64>) -> checker::Event {
        checker::Event::Write {
            client: client.clone(),
            fencing_token: fencing,
            accepted: self.write(client, fencing),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_and_duplicate_tokens_are_rejected() {
        let mut r = Resource::new(true);
        assert!(r.write(&"A".into(), Some(33)));
        assert!(r.write(&"B".into(), Some(34)));
        assert!(!r.write(&"A".into(), Some(33)), "stale");
        assert!(r.write(&"B".into(), Some(34)), "same lease, same writer");
        assert!(
            !r.write(&"C".into(), Some(34)),
            "same token, another writer"
        );
        assert!(r.write(&"C".into(), None), "no token: nothing to check");
    }

    #[test]
    fn without_checking_everything_is_accepted() {
        let mut r = Resource::new(false);
        assert!(r.write(&"A".into(), Some(5)));
        assert!(r.write(&"B".into(), Some(1)));
    }
}
