//! The dependency install step's spec: a run's spec with exactly three changes — a writable
//! scratch directory at `/tmp`, a generated `/etc/resolv.conf`, and a network namespace ignite
//! created (user-mode networking, never the host's) — and the validator that accepts those
//! three and nothing else.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use super::build::{Allowances, SpecError, SpecInput, build, validate_with};
use super::network::NetworkAttach;

/// Where the scratch directory appears inside the install sandbox (also `HOME`).
pub const INSTALL_SCRATCH_DIR: &str = "/tmp";
/// The install's working directory: package.json and the lockfile, and node_modules once installed.
pub const INSTALL_WORKDIR: &str = "/tmp/app";
/// What the install sandbox gets beyond a run's sandbox.
#[derive(Debug, Clone)]
pub struct InstallSandbox {
    /// Host directory (a size-capped tmpfs that only ignite can reach) bound read-write at `/tmp`.
    pub scratch: PathBuf,
    /// Whether files in the scratch directory may be executed (lifecycle scripts opted in);
    /// otherwise it is `noexec` like a run's `/tmp`.
    pub exec: bool,
    /// The user-mode network ignite set up for the install.
    pub network: NetworkAttach,
}

/// Builds the install spec from an ordinary [`SpecInput`] (whose `app_dir` is not mounted:
/// the install never sees the service directory, only the copies in its scratch dir).
pub fn build_install(input: &SpecInput, sandbox: &InstallSandbox) -> Result<Spec, SpecError> {
    let mut input = input.clone();
    input.network = Some(sandbox.network.clone());
    let mut spec = build(&input)?;
    let mut mounts: Vec<_> = spec
        .mounts()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| {
            m.destination() != Path::new(INSTALL_SCRATCH_DIR)
                && m.destination() != Path::new(crate::data::runtime::APP_DIR)
        })
        .collect();
    let mut scratch_opts = vec!["bind", "rw", "nosuid", "nodev"];
    if !sandbox.exec {
        scratch_opts.push("noexec");
    }
    mounts.push(super::build::mount(INSTALL_SCRATCH_DIR, "bind", &sandbox.scratch.to_string_lossy(), &scratch_opts)?);
    spec.set_mounts(Some(mounts));

    if let Some(process) = spec.process_mut().as_mut() {
        process.set_cwd(INSTALL_WORKDIR.into());
    }
    Ok(spec)
}

/// Everything [`validate`](super::validate) checks, except that the network namespace joins
/// exactly the granted one — which must not be the host's — and `/tmp` is exactly the scratch
/// directory, read-write but still nosuid and nodev.
pub fn validate_install(spec: &Spec, sandbox: &InstallSandbox) -> Result<(), SpecError> {
    validate_with(
        spec,
        &Allowances {
            netns: Some(&sandbox.network.netns),
            writable_tmp: Some(&sandbox.scratch),
            workspace: None,
            writable_root: None,
            out: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::spec::fixtures::{self, mount_opts, netns_path};
    use crate::sandbox::spec::{Limits, NetnsGrant, NsId, RESOLV_CONF, validate};
    use oci_spec::runtime::LinuxNamespaceType;

    const HOST: NsId = NsId { dev: 4, ino: 4026531833 };
    const OURS: NsId = NsId { dev: 4, ino: 4026532177 };

    /// The install step's input: the run fixture with the installer's command, limits and
    /// no spawn restriction.
    fn input() -> SpecInput {
        SpecInput {
            app_dir: "/srv/svc".into(),
            input_dir: None,
            out_dir: None,
            user: crate::sandbox::spec::RunUser {
                uid: 201_000,
                gid: 201_000,
                passwd: "/run/ignite/uids/201000.passwd".into(),
                group: "/run/ignite/uids/201000.group".into(),
            },
            argv: vec!["/usr/local/bin/bun".into(), "install".into()],
            limits: Limits::new(1024, 2.0),
            hostname: "svc".into(),
            cgroups_path: "/ignite/ig-2".into(),
            kill_after_ms: 300_000,
            spawn: crate::sandbox::spawn_guard::SpawnRule::Any,
            ..fixtures::input()
        }
    }

    fn sandbox() -> InstallSandbox {
        InstallSandbox {
            scratch: "/run/ignite/installs/ig-2/scratch".into(),
            exec: false,
            network: NetworkAttach {
                netns: NetnsGrant { path: "/proc/77/task/78/ns/net".into(), id: OURS, host: vec![HOST], userns: None },
                resolv_conf: "/run/ignite/installs/ig-2/resolv.conf".into(),
            },
        }
    }

    #[test]
    fn install_spec_validates_and_has_exactly_its_three_changes() {
        let sb = sandbox();
        let spec = build_install(&input(), &sb).unwrap();
        validate_install(&spec, &sb).unwrap();
        assert_eq!(netns_path(&spec).as_deref(), Some(Path::new("/proc/77/task/78/ns/net")));
        let tmp = mount_opts(&spec, "/tmp").unwrap();
        for want in ["bind", "rw", "nosuid", "nodev", "noexec"] {
            assert!(tmp.iter().any(|o| o == want), "{want} missing: {tmp:?}");
        }
        let resolv = mount_opts(&spec, RESOLV_CONF).unwrap();
        assert!(resolv.iter().any(|o| o == "ro"), "{resolv:?}");
        // The service directory is not mounted: the install sees only ignite's copies.
        assert!(mount_opts(&spec, "/app").is_none());
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.cwd(), Path::new(INSTALL_WORKDIR));
        assert_eq!(p.user().uid(), 201_000);
        // Everything else is the run's spec: the ordinary validator objects only to the two
        // departures it was not told about.
        let err = validate(&spec).unwrap_err().to_string();
        assert!(err.contains("joins an existing namespace"), "{err}");
    }

    #[test]
    fn scripts_opt_in_only_lifts_noexec() {
        let mut sb = sandbox();
        sb.exec = true;
        let spec = build_install(&input(), &sb).unwrap();
        validate_install(&spec, &sb).unwrap();
        let tmp = mount_opts(&spec, "/tmp").unwrap();
        assert!(!tmp.iter().any(|o| o == "noexec"), "{tmp:?}");
        assert!(tmp.iter().any(|o| o == "nosuid") && tmp.iter().any(|o| o == "nodev"), "{tmp:?}");
    }

    #[test]
    fn a_run_spec_may_never_join_a_namespace() {
        // The ordinary validator refuses the install's network namespace, and any other.
        let mut spec = crate::sandbox::spec::build(&input()).unwrap();
        let linux = spec.linux_mut().as_mut().unwrap();
        let mut ns = linux.namespaces().clone().unwrap();
        for n in &mut ns {
            if n.typ() == LinuxNamespaceType::Network {
                n.set_path(Some("/proc/77/task/78/ns/net".into()));
            }
        }
        linux.set_namespaces(Some(ns));
        assert!(validate(&spec).unwrap_err().to_string().contains("joins an existing namespace"));
    }

    #[test]
    fn install_validator_refuses_the_host_and_anything_not_granted() {
        let sb = sandbox();
        let good = build_install(&input(), &sb).unwrap();

        // The grant names the host's namespace (by identity, whatever the path says).
        let mut host_grant = sb.clone();
        host_grant.network.netns.id = HOST;
        let e = validate_install(&good, &host_grant).unwrap_err().to_string();
        assert!(e.contains("is the host's"), "{e}");

        // The host's namespace is unknown: nothing to compare against, so nothing is granted.
        let mut unknown = sb.clone();
        unknown.network.netns.host.clear();
        assert!(validate_install(&good, &unknown).is_err());

        // The spec joins a namespace other than the granted one (e.g. the host's, by path).
        for other in ["/proc/1/ns/net", "/proc/self/ns/net", "/run/netns/x"] {
            let mut spec = good.clone();
            let linux = spec.linux_mut().as_mut().unwrap();
            let mut ns = linux.namespaces().clone().unwrap();
            for n in &mut ns {
                if n.typ() == LinuxNamespaceType::Network {
                    n.set_path(Some(other.into()));
                }
            }
            linux.set_namespaces(Some(ns));
            let e = validate_install(&spec, &sb).unwrap_err().to_string();
            assert!(e.contains("joins an existing namespace"), "{other}: {e}");
        }

        // No network namespace path at all would be the run's loopback-only namespace: the
        // install must use the one ignite set up.
        let mut spec = good.clone();
        let linux = spec.linux_mut().as_mut().unwrap();
        let mut ns = linux.namespaces().clone().unwrap();
        for n in &mut ns {
            n.set_path(None);
        }
        linux.set_namespaces(Some(ns));
        let e = validate_install(&spec, &sb).unwrap_err().to_string();
        assert!(e.contains("not the one ignite created"), "{e}");

        // Another namespace type joining the granted path is still refused.
        let mut spec = good.clone();
        let linux = spec.linux_mut().as_mut().unwrap();
        let mut ns = linux.namespaces().clone().unwrap();
        for n in &mut ns {
            if n.typ() == LinuxNamespaceType::Pid {
                n.set_path(Some(sb.network.netns.path.clone()));
            }
        }
        linux.set_namespaces(Some(ns));
        let e = validate_install(&spec, &sb).unwrap_err().to_string();
        assert!(e.contains("Pid namespace joins"), "{e}");
    }

    #[test]
    fn install_validator_allows_only_the_scratch_dir_writable() {
        let sb = sandbox();
        let good = build_install(&input(), &sb).unwrap();
        let edit = |f: &dyn Fn(&mut oci_spec::runtime::Mount)| {
            let mut spec = good.clone();
            for m in spec.mounts_mut().as_mut().unwrap() {
                f(m);
            }
            spec
        };
        // The scratch dir without nosuid.
        let spec = edit(&|m| {
            if m.destination() == Path::new("/tmp") {
                m.set_options(Some(vec!["bind".into(), "rw".into(), "nodev".into()]));
            }
        });
        assert!(validate_install(&spec, &sb).unwrap_err().to_string().contains("/tmp"));
        // Some other host directory at /tmp, writable.
        let spec = edit(&|m| {
            if m.destination() == Path::new("/tmp") {
                m.set_source(Some("/home/user".into()));
            }
        });
        assert!(validate_install(&spec, &sb).unwrap_err().to_string().contains("/tmp"));
        // Another bind mount made writable.
        let spec = edit(&|m| {
            if m.destination() == Path::new(RESOLV_CONF) {
                m.set_options(Some(vec!["bind".into(), "nosuid".into(), "nodev".into()]));
            }
        });
        assert!(validate_install(&spec, &sb).unwrap_err().to_string().contains(RESOLV_CONF));
    }
}
