//! Which member collects which host: rendezvous (highest-random-weight) hashing. Each host goes
//! to the member with the highest weight for that pair, so a member joining takes only the hosts
//! it now weighs most for, and a member leaving gives up only its own: every other host stays.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sha2::{Digest, Sha256};

/// A host's weight for a member: the same on every replica and every build (a std hasher may
/// change between Rust releases, and replicas of two releases must agree).
fn weight(member: &str, host: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(member.as_bytes())
        .chain_update([0u8])
        .chain_update(host.as_bytes())
        .finalize();
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The member that collects `host`; None without members. Ties (practically never) go to the
/// name that sorts first, so every replica picks the same.
pub fn owner<'m>(host: &str, members: impl IntoIterator<Item = &'m String>) -> Option<&'m str> {
    members
        .into_iter()
        .map(|member| (weight(member, host), member))
        .max_by(|(a, m), (b, n)| a.cmp(b).then_with(|| n.cmp(m)))
        .map(|(_, member)| member.as_str())
}

/// The hosts each member declines (handed over by hand), by member name.
pub type Declined = BTreeMap<String, BTreeSet<String>>;

/// The assignment of every host, computed again only when the members or the hosts they decline
/// change (at 10,000 hosts × 30 members, 300,000 digests).
#[derive(Debug, Default)]
pub struct Assignment {
    members: Vec<String>,
    declined: Declined,
    owners: HashMap<String, String>,
}

impl Assignment {
    /// Assigns `hosts` over `members` (sorted), each host skipping the members that decline it
    /// (unless all do); true when that changed the assignment.
    pub fn update<'h>(
        &mut self,
        hosts: impl Iterator<Item = &'h str>,
        members: &[String],
        declined: &Declined,
    ) -> bool {
        if self.members == members && &self.declined == declined && !self.owners.is_empty() {
            return false;
        }
        let declines = |member: &String, host: &str| {
            declined
                .get(member)
                .is_some_and(|hosts| hosts.contains(host))
        };
        let owners: HashMap<String, String> = hosts
            .filter_map(|host| {
                let willing = members.iter().filter(|m| !declines(m, host));
                let chosen = owner(host, willing).or_else(|| owner(host, members))?;
                Some((host.to_owned(), chosen.to_owned()))
            })
            .collect();
        let changed = owners != self.owners;
        self.members = members.to_vec();
        self.declined = declined.clone();
        self.owners = owners;
        changed
    }

    pub fn of(&self, host: &str) -> Option<&str> {
        self.owners.get(host).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("replica-{i}")).collect()
    }

    fn hosts(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("qemu+ssh://kvm{i}/system"))
            .collect()
    }

    fn assign(hosts: &[String], members: &[String]) -> Vec<String> {
        hosts
            .iter()
            .map(|h| owner(h, members).unwrap().to_owned())
            .collect()
    }

    #[test]
    fn every_member_gets_about_its_share() {
        let members = names(3);
        let all = assign(&hosts(3000), &members);
        for member in &members {
            let share = all.iter().filter(|m| *m == member).count();
            assert!((850..=1150).contains(&share), "{member}: {share} of 3000");
        }
        assert_eq!(owner("h", &[]), None);
    }

    #[test]
    fn a_member_leaving_moves_only_its_own_hosts() {
        let hosts = hosts(1000);
        let before = assign(&hosts, &names(4));
        let mut fewer = names(4);
        fewer.remove(2);
        let after = assign(&hosts, &fewer);
        for (b, a) in before.iter().zip(&after) {
            if b != "replica-2" {
                assert_eq!(a, b, "a host of a member that stayed moved");
            } else {
                assert_ne!(a, "replica-2");
            }
        }
    }

    #[test]
    fn a_member_joining_takes_only_hosts_it_now_owns() {
        let hosts = hosts(1000);
        let before = assign(&hosts, &names(3));
        let after = assign(&hosts, &names(4));
        let mut moved = 0;
        for (b, a) in before.iter().zip(&after) {
            if a != b {
                assert_eq!(a, "replica-3", "a host moved between members that stayed");
                moved += 1;
            }
        }
        // About a quarter moves to the newcomer, nothing else.
        assert!((200..=300).contains(&moved), "{moved} of 1000 moved");
    }

    #[test]
    fn every_replica_computes_the_same_assignment_in_any_order() {
        let hosts = hosts(50);
        let mut members = names(5);
        let first = assign(&hosts, &members);
        members.reverse();
        assert_eq!(assign(&hosts, &members), first);
        // Fixed across builds: a digest, not a std hasher.
        assert_eq!(weight("a", "b"), weight("a", "b"));
        assert_ne!(weight("a", "b"), weight("b", "a"));
    }

    #[test]
    fn the_assignment_is_computed_again_only_when_members_change() {
        let hosts = hosts(10);
        let none = Declined::new();
        let mut assignment = Assignment::default();
        assert!(assignment.update(hosts.iter().map(String::as_str), &names(2), &none));
        assert!(!assignment.update(hosts.iter().map(String::as_str), &names(2), &none));
        assert!(assignment.update(hosts.iter().map(String::as_str), &names(3), &none));
        let host = hosts[0].as_str();
        assert_eq!(assignment.of(host), owner(host, &names(3)));
    }

    #[test]
    fn a_declined_host_goes_to_the_next_member_and_only_it_moves() {
        let hosts = hosts(20);
        let members = names(3);
        let mut assignment = Assignment::default();
        assignment.update(hosts.iter().map(String::as_str), &members, &Declined::new());
        let before: Vec<String> = (hosts.iter())
            .map(|h| assignment.of(h).unwrap().to_owned())
            .collect();
        let (host, holder) = (&hosts[0], before[0].clone());
        let declined = Declined::from([(holder.clone(), BTreeSet::from([host.clone()]))]);
        assert!(assignment.update(hosts.iter().map(String::as_str), &members, &declined));
        let others: Vec<String> = members.iter().filter(|m| **m != holder).cloned().collect();
        assert_eq!(assignment.of(host), owner(host, &others));
        for (h, b) in hosts.iter().zip(&before).skip(1) {
            assert_eq!(assignment.of(h), Some(b.as_str()), "{h} moved");
        }
        // Declined by every member: it stays assigned (to its rendezvous owner).
        let everyone: Declined = (members.iter())
            .map(|m| (m.clone(), BTreeSet::from([host.clone()])))
            .collect();
        assignment.update(hosts.iter().map(String::as_str), &members, &everyone);
        assert_eq!(assignment.of(host), Some(holder.as_str()));
    }
}
