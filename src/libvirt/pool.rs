//! The helper connections a small host's seed-only cycle is spread over, kept open between cycles.

use virt::connect::Connect;

use super::connection::{Connector, close};
use super::seed;

pub struct Helpers {
    connections: Vec<Connect>,
    /// At most this many connections to a cycle, the main one included (`seed_connections`).
    most: usize,
    /// A helper failed to open, and that was logged: not again until one opens.
    failure_logged: bool,
}

impl Helpers {
    pub fn new(most: usize) -> Self {
        Helpers {
            connections: Vec::new(),
            most,
            failure_logged: false,
        }
    }

    /// The helpers for a cycle of about `domains` domains (`seed::connections_for`), alive: dead
    /// ones closed, missing ones opened (one that cannot be opened leaves the cycle on fewer, and
    /// is tried again next cycle). They come back with `put_back`.
    pub fn take(&mut self, domains: usize, connector: &Connector) -> Vec<Connect> {
        let count = seed::connections_for(domains, self.most) - 1;
        let mut kept = Vec::with_capacity(count);
        for helper in std::mem::take(&mut self.connections) {
            match kept.len() < count && connector.is_alive(&helper) {
                true => kept.push(helper),
                false => close(helper),
            }
        }
        while kept.len() < count {
            match connector.connect() {
                Ok(helper) => {
                    self.failure_logged = false;
                    kept.push(helper);
                }
                Err(e) => {
                    if !std::mem::replace(&mut self.failure_logged, true) {
                        tracing::warn!(uri = %connector.uri(), error = %e, "the seed cycle stays on fewer connections");
                    }
                    break;
                }
            }
        }
        kept
    }

    /// Keeps `helpers` for the next cycle but those at the indexes `failed`, which are closed.
    pub fn put_back(&mut self, helpers: Vec<Connect>, failed: &[usize]) {
        for (index, helper) in helpers.into_iter().enumerate() {
            match failed.contains(&index) {
                true => close(helper),
                false => self.connections.push(helper),
            }
        }
    }

    pub fn close_all(&mut self) {
        self.connections.drain(..).for_each(close);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.connections.len()
    }

    #[cfg(test)]
    pub fn failure_logged(&self) -> bool {
        self.failure_logged
    }
}
