//! Tags, branches and Call-IDs: unique and unguessable (RFC 3261 §19.3
//! wants at least 32 random bits), yet cheap on the hot path: a random
//! per-process prefix and a counter.

use super::super::message::BRANCH_MAGIC;

pub struct IdGenerator {
    prefix: String,
    counter: u64,
}

impl IdGenerator {
    pub fn new() -> Self {
        IdGenerator {
            prefix: format!("{:016x}", rand::random::<u64>()),
            counter: 0,
        }
    }

    fn next(&mut self) -> String {
        self.counter += 1;
        // Mixing the counter with a random word keeps consecutive ids from
        // being predictable from one another.
        format!(
            "{}{:x}{:08x}",
            &self.prefix[..8],
            self.counter,
            rand::random::<u32>()
        )
    }

    pub fn tag(&mut self) -> String {
        self.next()
    }

    pub fn branch(&mut self) -> String {
        format!("{BRANCH_MAGIC}{}", self.next())
    }

    pub fn call_id(&mut self, domain: &str) -> String {
        let unique = self.next();
        format!("{}{unique}@{domain}", &self.prefix[8..])
    }
}
