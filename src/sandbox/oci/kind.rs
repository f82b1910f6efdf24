//! Which OCI runtime a binary is (runc, crun, youki), told by its `--version` output, and the
//! places where the three read the same spec differently, so that one policy means one thing.

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompArgBuilder, LinuxSeccompOperator};

use crate::sandbox::spec::seccomp::SeccompError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OciKind {
    Runc,
    Crun,
    Youki,
}

impl OciKind {
    pub const ALL: [OciKind; 3] = [OciKind::Runc, OciKind::Crun, OciKind::Youki];

    pub fn as_str(self) -> &'static str {
        match self {
            OciKind::Runc => "runc",
            OciKind::Crun => "crun",
            OciKind::Youki => "youki",
        }
    }

    /// Whether this runtime, run by a normal user, leaves the program no group but its own.
    /// Only crun: it writes the gid map with newgidmap, so `setgroups` stays allowed in the
    /// sandbox's user namespace, and drops the user's supplementary groups. runc (1.1) skips
    /// `setgroups` whenever its own euid is not 0, and youki (0.7) writes `deny` to
    /// `/proc/<pid>/setgroups` before the maps and then cannot call it: under either, the
    /// program would keep the user's groups (and their access to group-readable files).
    pub fn sets_groups_rootless(self) -> bool {
        self == OciKind::Crun
    }

    /// Reads the kind from what a binary prints for `--version`: the first word of its first
    /// non-empty line (`runc version 1.1.5+ds1`, `crun version 1.8.1`, `youki version: 0.7.0`).
    /// The file name says nothing: a wrapper script or a renamed copy is judged by its output.
    pub fn from_version_output(output: &str) -> Option<OciKind> {
        let line = output.lines().map(str::trim).find(|l| !l.is_empty())?;
        let mut words = line.split_whitespace();
        let name = words.next()?;
        // The word after the name must be `version` (youki adds a colon), so that a usage text
        // or an error that merely starts with the name is not taken for a version.
        if words.next()?.trim_end_matches(':') != "version" {
            return None;
        }
        OciKind::from_name(name)
    }

    /// The kind [`OciKind::as_str`] names.
    pub fn from_name(name: &str) -> Option<OciKind> {
        OciKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Rewrites a seccomp section built in libseccomp's operand order (what runc and crun
    /// read) into this runtime's dialect.
    ///
    /// youki reads `SCMP_CMP_MASKED_EQ` the other way round: it takes `valueTwo` as the mask
    /// and `value` as the expected value (youki 0.7.0, libcontainer/src/seccomp: it passes
    /// `MaskedEqual(value_two)` with datum `value`), where runc and crun take `value` as the
    /// mask. Unswapped, the profile's `clone` rules (mask = namespace flags, value = 0) would
    /// compare `arg & 0 == flags`, never true, and every fork would be denied.
    pub fn adapt_seccomp(self, mut seccomp: LinuxSeccomp) -> Result<LinuxSeccomp, SeccompError> {
        if self != OciKind::Youki {
            return Ok(seccomp);
        }
        if let Some(mut syscalls) = seccomp.syscalls().clone() {
            for syscall in syscalls.iter_mut() {
                let Some(mut args) = syscall.args().clone() else { continue };
                for arg in args.iter_mut().filter(|a| a.op() == LinuxSeccompOperator::ScmpCmpMaskedEq) {
                    *arg = LinuxSeccompArgBuilder::default()
                        .index(arg.index())
                        .op(arg.op())
                        .value(arg.value_two().unwrap_or(0))
                        .value_two(arg.value())
                        .build()
                        .map_err(|error| SeccompError::Oci {
                            origin: "the profile in youki's operand order".into(),
                            error,
                        })?;
                }
                syscall.set_args(Some(args));
            }
            seccomp.set_syscalls(Some(syscalls));
        }
        Ok(seccomp)
    }
}

impl std::fmt::Display for OciKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscallBuilder,
    };

    #[test]
    fn kind_comes_from_the_version_output() {
        let runc =
            "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\ngo: go1.19.8\nlibseccomp: 2.5.4\n";
        let crun = "crun version 1.8.1\ncommit: f8a096be060b22ccd3d5f3ebe44108517fbf6c30\nrundir: /run/crun\nspec: 1.0.0\n+SYSTEMD +SELINUX +APPARMOR +CAP +SECCOMP +EBPF +YAJL\n";
        let youki = "youki version: 0.7.0\ncommit: 0.7.0-0-abc\nspec: 1.2.1\n";
        assert_eq!(OciKind::from_version_output(runc), Some(OciKind::Runc));
        assert_eq!(OciKind::from_version_output(crun), Some(OciKind::Crun));
        assert_eq!(OciKind::from_version_output(youki), Some(OciKind::Youki));
        assert_eq!(OciKind::from_version_output("\n  youki version 0.5.7\n"), Some(OciKind::Youki));
        // Unknown runtimes, usage texts and errors are not a kind.
        assert_eq!(OciKind::from_version_output("runsc version release-20240101.0\n"), None);
        assert_eq!(OciKind::from_version_output("kata-runtime  : 3.2.0\n"), None);
        assert_eq!(OciKind::from_version_output("runc: unknown flag --version\n"), None);
        assert_eq!(OciKind::from_version_output("usage: runc [options]\n"), None);
        assert_eq!(OciKind::from_version_output(""), None);
    }

    fn masked(mask: u64, value: u64) -> LinuxSeccomp {
        let arg = LinuxSeccompArgBuilder::default()
            .index(0usize)
            .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
            .value(mask)
            .value_two(value)
            .build()
            .unwrap();
        let eq = LinuxSeccompArgBuilder::default()
            .index(1usize)
            .op(LinuxSeccompOperator::ScmpCmpEq)
            .value(7u64)
            .build()
            .unwrap();
        let syscall = LinuxSyscallBuilder::default()
            .names(vec!["clone".to_string()])
            .action(LinuxSeccompAction::ScmpActAllow)
            .args(vec![arg, eq])
            .build()
            .unwrap();
        LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActErrno)
            .syscalls(vec![syscall])
            .build()
            .unwrap()
    }

    fn operands(s: &LinuxSeccomp) -> Vec<(u64, Option<u64>)> {
        s.syscalls().as_ref().unwrap()[0].args().as_ref().unwrap().iter().map(|a| (a.value(), a.value_two())).collect()
    }

    #[test]
    fn youki_gets_masked_eq_operands_swapped_and_nothing_else_changes() {
        let original = masked(0x7e03_0000, 0x1_0000);
        assert_eq!(OciKind::Runc.adapt_seccomp(original.clone()).unwrap(), original);
        assert_eq!(OciKind::Crun.adapt_seccomp(original.clone()).unwrap(), original);
        let youki = OciKind::Youki.adapt_seccomp(original.clone()).unwrap();
        assert_eq!(operands(&youki), vec![(0x1_0000, Some(0x7e03_0000)), (7, None)]);
        // Swapping twice is the identity: nothing but the two operands moved.
        assert_eq!(OciKind::Youki.adapt_seccomp(youki).unwrap(), original);
    }

    #[test]
    fn youki_swap_keeps_the_builtin_profile_meaning() {
        let profile = crate::sandbox::spec::seccomp::SeccompProfile::builtin().unwrap().to_oci().unwrap();
        let youki = OciKind::Youki.adapt_seccomp(profile.clone()).unwrap();
        let pairs = |s: &LinuxSeccomp| {
            s.syscalls()
                .iter()
                .flatten()
                .flat_map(|c| c.args().clone().unwrap_or_default())
                .filter(|a| a.op() == LinuxSeccompOperator::ScmpCmpMaskedEq)
                .map(|a| (a.value(), a.value_two()))
                .collect::<Vec<_>>()
        };
        let (before, after) = (pairs(&profile), pairs(&youki));
        assert!(!before.is_empty(), "the built-in profile has masked_eq rules");
        for ((mask, value), (y_value, y_mask)) in before.iter().zip(&after) {
            assert_eq!((Some(*y_value), *y_mask), (*value, Some(*mask)));
        }
    }
}
