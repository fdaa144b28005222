//! What a replica does with the hosts after reading etcd, decided apart from doing it.

use std::collections::{BTreeMap, BTreeSet};

use super::rendezvous::{Assignment, Declined};
use super::view::{Owner, View};

/// The hosts to act on, by URI.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Collected here while their key is not on this lease (it expired, or was deleted by
    /// hand): stopped at once, as another replica may hold them now.
    pub lost: Vec<String>,
    /// Collected here and assigned elsewhere: stopped, then their key given up.
    pub moving: Vec<String>,
    /// Assigned here and held by nobody: their key taken, then collected.
    pub take: Vec<String>,
    /// Assigned here with their key on this lease already (a take whose answer was lost):
    /// collected.
    pub resume: Vec<String>,
}

/// Where this replica stands with `hosts`.
pub struct Holdings<'a> {
    pub member: &'a str,
    pub lease: i64,
    /// Collected here.
    pub running: &'a BTreeSet<String>,
    /// Stopped here, their key not given up yet: left alone until it is.
    pub releasing: &'a BTreeSet<String>,
}

/// The members the hosts are spread over: those not draining (all, if every one is); and the
/// hosts each declines.
pub fn spread_over(view: &View) -> (Vec<String>, Declined) {
    let active: Vec<String> = (view.members.iter())
        .filter(|(_, record)| !record.draining)
        .map(|(name, _)| name.clone())
        .collect();
    let members = match active.is_empty() {
        true => view.members.keys().cloned().collect(),
        false => active,
    };
    let declined = (view.members.iter())
        .map(|(name, record)| (name.clone(), record.declined.clone()))
        .collect();
    (members, declined)
}

pub fn plan<'h>(
    hosts: impl Iterator<Item = &'h str>,
    assignment: &Assignment,
    owners: &BTreeMap<String, Owner>,
    here: &Holdings,
) -> Plan {
    let mut plan = Plan::default();
    for host in hosts {
        let ours = owners.get(host).is_some_and(|o| o.lease == here.lease);
        let assigned_here = assignment.of(host) == Some(here.member);
        if here.running.contains(host) {
            if !ours {
                plan.lost.push(host.to_owned());
            } else if !assigned_here {
                plan.moving.push(host.to_owned());
            }
        } else if assigned_here && !here.releasing.contains(host) {
            match owners.get(host) {
                None => plan.take.push(host.to_owned()),
                Some(_) if ours => plan.resume.push(host.to_owned()),
                // Its owner gives it up once it has stopped collecting it.
                Some(_) => {}
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(member: &str, lease: i64) -> Owner {
        Owner {
            member: member.to_owned(),
            lease,
        }
    }

    fn set(hosts: &[&str]) -> BTreeSet<String> {
        hosts.iter().map(|h| h.to_string()).collect()
    }

    #[test]
    fn each_host_is_taken_kept_handed_over_or_left_to_its_owner() {
        let hosts = ["h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7"];
        let members = vec!["a".to_owned(), "b".to_owned()];
        let mut assignment = Assignment::default();
        assignment.update(hosts.iter().copied(), &members, &Default::default());
        let mine: Vec<&str> = hosts
            .iter()
            .copied()
            .filter(|h| assignment.of(h) == Some("a"))
            .collect();
        let theirs: Vec<&str> = hosts
            .iter()
            .copied()
            .filter(|h| assignment.of(h) == Some("b"))
            .collect();
        assert!(mine.len() >= 2 && theirs.len() >= 2, "{mine:?} {theirs:?}");
        let mut owners = BTreeMap::new();
        // mine[0]: nobody holds it; mine[1]: b still does (it hands it over).
        owners.insert(mine[1].to_owned(), owner("b", 2));
        // theirs[0]: a holds it and runs it: it moves; theirs[1]: a runs it, but its key is
        // on b's lease: lost.
        owners.insert(theirs[0].to_owned(), owner("a", 1));
        owners.insert(theirs[1].to_owned(), owner("b", 2));
        let running = set(&[theirs[0], theirs[1]]);
        let releasing = set(&[]);
        let here = Holdings {
            member: "a",
            lease: 1,
            running: &running,
            releasing: &releasing,
        };
        let plan = plan(hosts.iter().copied(), &assignment, &owners, &here);
        assert_eq!(plan.lost, vec![theirs[1].to_owned()]);
        assert_eq!(plan.moving, vec![theirs[0].to_owned()]);
        let expected_take: Vec<String> = mine
            .iter()
            .filter(|h| **h != mine[1])
            .map(|h| h.to_string())
            .collect();
        assert_eq!(plan.take, expected_take);
        assert!(plan.resume.is_empty());
    }

    #[test]
    fn a_key_already_on_this_lease_is_resumed_and_a_release_in_progress_waits() {
        let members = vec!["a".to_owned()];
        let mut assignment = Assignment::default();
        assignment.update(["h0", "h1"].into_iter(), &members, &Default::default());
        let owners = BTreeMap::from([
            ("h0".to_owned(), owner("a", 7)),
            ("h1".to_owned(), owner("a", 7)),
        ]);
        let (running, releasing) = (set(&[]), set(&["h1"]));
        let here = Holdings {
            member: "a",
            lease: 7,
            running: &running,
            releasing: &releasing,
        };
        let plan = plan(["h0", "h1"].into_iter(), &assignment, &owners, &here);
        assert_eq!(plan.resume, vec!["h0".to_owned()]);
        assert!(plan.take.is_empty() && plan.lost.is_empty() && plan.moving.is_empty());
    }
}
