//! Self-check of the entrypoint before it starts the program: the sandbox must hold no
//! capability in any set, have no_new_privs set, not run as root, and hold no supplementary
//! group (rootless runc, for one, leaves the invoking user's groups on the container's process). A misconfigured OCI
//! runtime (or a spec edited by hand) is refused here, from inside, whatever the host said.

use caps::CapSet;

/// What is wrong with the current process's confinement; empty when it is as promised.
pub fn violations() -> Vec<String> {
    let mut found = Vec::new();
    for (set, name) in [
        (CapSet::Bounding, "bounding"),
        (CapSet::Effective, "effective"),
        (CapSet::Permitted, "permitted"),
        (CapSet::Inheritable, "inheritable"),
        (CapSet::Ambient, "ambient"),
    ] {
        match caps::read(None, set) {
            Ok(held) if held.is_empty() => {}
            Ok(held) => {
                let mut names: Vec<String> = held.iter().map(|c| c.to_string()).collect();
                names.sort();
                found.push(format!("{name} capabilities: {}", names.join(", ")));
            }
            Err(e) => found.push(format!("cannot read the {name} capability set: {e}")),
        }
    }
    match nix::sys::prctl::get_no_new_privs() {
        Ok(true) => {}
        Ok(false) => found.push("no_new_privs is not set".to_string()),
        Err(e) => found.push(format!("cannot read no_new_privs: {e}")),
    }
    if nix::unistd::getuid().is_root() || nix::unistd::geteuid().is_root() {
        found.push("running as root".to_string());
    }
    found.extend(foreign_groups(nix::unistd::getegid().as_raw(), nix::unistd::getgroups()));
    found
}

/// Supplementary groups other than the process's own gid: group access to files it must not
/// have (another user's groups, seen inside as whatever they map to).
fn foreign_groups(gid: u32, groups: nix::Result<Vec<nix::unistd::Gid>>) -> Option<String> {
    match groups {
        Ok(groups) => {
            let foreign: Vec<String> =
                groups.iter().map(|g| g.as_raw()).filter(|&g| g != gid).map(|g| g.to_string()).collect();
            (!foreign.is_empty()).then(|| format!("supplementary groups: {}", foreign.join(", ")))
        }
        Err(e) => Some(format!("cannot read the supplementary groups: {e}")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unconfined_process_is_reported() {
        // The test process is not sandboxed: the check must say so (proving it can fail).
        let v = super::violations();
        assert!(!v.is_empty());
        if nix::unistd::geteuid().is_root() {
            assert!(v.iter().any(|s| s.contains("running as root")), "{v:?}");
            assert!(v.iter().any(|s| s.starts_with("bounding capabilities:")), "{v:?}");
        }
        assert!(v.iter().any(|s| s.contains("no_new_privs")), "{v:?}");
    }

    #[test]
    fn supplementary_groups_other_than_the_own_gid_are_reported() {
        use nix::unistd::Gid;
        assert_eq!(super::foreign_groups(200_123, Ok(vec![])), None);
        assert_eq!(super::foreign_groups(200_123, Ok(vec![Gid::from_raw(200_123)])), None);
        assert_eq!(
            super::foreign_groups(200_123, Ok(vec![Gid::from_raw(0), Gid::from_raw(200_123), Gid::from_raw(27)])),
            Some("supplementary groups: 0, 27".to_string())
        );
        assert!(super::foreign_groups(1, Err(nix::errno::Errno::EFAULT)).is_some());
    }
}
