//! What rootless mode (ignite run by a normal user, see [`crate::sandbox::userns`]) does not
//! give yet, each refused before anything is set up, with the reason — never a run that is
//! silently weaker than it asked for. Each of these rests on a mount ignite makes on the host
//! (a size-capped tmpfs or an overlay handed to the run's uid), which a normal user cannot make.
//! `ignite doctor` lists them on a rootless host. The list itself is
//! [`crate::sandbox::userns::ALL`] (the bundle store refuses a build from there too).

use crate::data::policy::Policy;

pub use crate::sandbox::userns::{ALL, SESSIONS, Unsupported, WRITABLE_ROOT};

/// The first thing a job (its policy, whether it runs in a session's workspace) asks for that
/// rootless mode refuses. A network (`security.network.enabled: true`), dependency installs and
/// output files are given rootless: see [`crate::sandbox::netns`], [`crate::engine::install`]
/// and [`crate::sandbox::grants::out`].
pub fn check_job(policy: &Policy, in_session: bool) -> Result<(), Unsupported> {
    if !policy.read_only {
        return Err(WRITABLE_ROOT);
    }
    if in_session {
        return Err(SESSIONS);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_says_what_and_why_and_the_way_out() {
        for u in ALL {
            let text = u.to_string();
            assert!(
                text.contains(" is not available rootless: ") && text.ends_with("; run ignite as root for it"),
                "{text}"
            );
            assert!(u.why.contains("normal user") || u.why.contains("network"), "{text}");
        }
    }
}
