//! `--target NAME=SPEC`: what the user named, parsed and checked, before anything is looked up.

use std::fmt;
use std::str::FromStr;

use super::TargetError;

/// Where a target's network namespace comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `netns:NAME|PATH`: an `ip netns` name or any nsfs path (e.g. a CNI-made `/var/run/netns/cni-…`).
    Netns(String),
    /// `pid:N`: the namespace of process N.
    Pid(u32),
    /// `docker:CONTAINER`: `docker inspect`'s State.Pid (or NetworkSettings.SandboxKey).
    Docker(String),
    /// `podman:CONTAINER`: `podman inspect`'s State.Pid (or NetworkSettings.SandboxKey).
    Podman(String),
    /// `cri:POD`: `crictl inspectp`'s runtime spec network namespace (or the sandbox's pid).
    Cri(String),
}

impl Source {
    /// The spec's scheme, e.g. `docker`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Source::Netns(_) => "netns",
            Source::Pid(_) => "pid",
            Source::Docker(_) => "docker",
            Source::Podman(_) => "podman",
            Source::Cri(_) => "cri",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Netns(s) | Source::Docker(s) | Source::Podman(s) | Source::Cri(s) => {
                write!(f, "{}:{s}", self.scheme())
            }
            Source::Pid(p) => write!(f, "pid:{p}"),
        }
    }
}

impl FromStr for Source {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, TargetError> {
        let bad = |why: &str| TargetError::BadSpec {
            spec: s.to_string(),
            why: why.to_string(),
        };
        let (scheme, rest) = s.split_once(':').ok_or_else(|| {
            bad("give SCHEME:VALUE with SCHEME netns, pid, docker, podman or cri")
        })?;
        if rest.is_empty() {
            return Err(bad("the part after ':' is empty"));
        }
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("no spaces or control characters"));
        }
        let container = |rest: &str| -> Result<String, TargetError> {
            // Names and ids of containers and pods: what Docker, Podman and CRI accept.
            let ok = rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if ok && !rest.starts_with('-') {
                Ok(rest.to_string())
            } else {
                Err(bad(
                    "a container or pod name or id has letters, digits, '-', '_' or '.'",
                ))
            }
        };
        match scheme {
            "netns" => Ok(Source::Netns(rest.to_string())),
            "pid" => match rest.parse::<u32>() {
                Ok(p) if p > 0 => Ok(Source::Pid(p)),
                _ => Err(bad("give a process id (a positive number)")),
            },
            "docker" => container(rest).map(Source::Docker),
            "podman" => container(rest).map(Source::Podman),
            "cri" => container(rest).map(Source::Cri),
            _ => Err(bad(
                "unknown scheme: use netns:, pid:, docker:, podman: or cri:",
            )),
        }
    }
}

/// One `--target NAME=SPEC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// The report's row name for this target.
    pub name: String,
    pub source: Source,
}

impl TargetSpec {
    /// The SPEC part as the user wrote it (normalized), e.g. `docker:web`.
    pub fn spec(&self) -> String {
        self.source.to_string()
    }
}

/// Names a target row may not take: the baseline and the lab's own rows.
fn reserved(name: &str) -> bool {
    name == crate::compare::BASELINE || name.starts_with("lab/")
}

impl FromStr for TargetSpec {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, TargetError> {
        let (name, spec) = s.split_once('=').ok_or_else(|| TargetError::BadSpec {
            spec: s.to_string(),
            why: "give NAME=SPEC, e.g. web=docker:web".into(),
        })?;
        let name_ok = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(TargetError::BadName(name.to_string()));
        }
        if reserved(name) || crate::lab::Mode::from_str(name).is_ok() {
            return Err(TargetError::ReservedName(name.to_string()));
        }
        Ok(TargetSpec {
            name: name.to_string(),
            source: spec.parse()?,
        })
    }
}

/// Checks a list of targets has no name twice.
pub fn check_unique(targets: &[TargetSpec]) -> Result<(), TargetError> {
    for (i, t) in targets.iter().enumerate() {
        if targets[..i].iter().any(|o| o.name == t.name) {
            return Err(TargetError::DuplicateName(t.name.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_parses() {
        let t: TargetSpec = "web=docker:web-1".parse().unwrap();
        assert_eq!(t.name, "web");
        assert_eq!(t.source, Source::Docker("web-1".into()));
        assert_eq!(t.spec(), "docker:web-1");
        assert_eq!(
            "a=netns:/var/run/netns/cni-1234"
                .parse::<TargetSpec>()
                .unwrap()
                .source,
            Source::Netns("/var/run/netns/cni-1234".into())
        );
        assert_eq!(
            "a=netns:blue".parse::<TargetSpec>().unwrap().source,
            Source::Netns("blue".into())
        );
        assert_eq!(
            "init=pid:1".parse::<TargetSpec>().unwrap().source,
            Source::Pid(1)
        );
        assert_eq!(
            "p=podman:db".parse::<TargetSpec>().unwrap().source,
            Source::Podman("db".into())
        );
        assert_eq!(
            "k=cri:web-7d9c5b7f4-x2kqp"
                .parse::<TargetSpec>()
                .unwrap()
                .source,
            Source::Cri("web-7d9c5b7f4-x2kqp".into())
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (bad, needle) in [
            ("web", "NAME=SPEC"),
            ("web=docker", "SCHEME:VALUE"),
            ("web=docker:", "empty"),
            ("web=pid:0", "process id"),
            ("web=pid:-4", "process id"),
            ("web=pid:abc", "process id"),
            ("web=lxc:foo", "unknown scheme"),
            ("web=docker:a/b", "container or pod name"),
            ("web=docker:-rm", "container or pod name"),
            ("web=netns:a b", "spaces"),
        ] {
            let e = bad.parse::<TargetSpec>().unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        assert!(matches!(
            "=docker:web".parse::<TargetSpec>(),
            Err(TargetError::BadName(_))
        ));
        assert!(matches!(
            "host=pid:1".parse::<TargetSpec>(),
            Err(TargetError::ReservedName(_))
        ));
        assert!(matches!(
            "bridge=docker:x".parse::<TargetSpec>(),
            Err(TargetError::ReservedName(_))
        ));
    }

    #[test]
    fn names_are_unique() {
        let a: TargetSpec = "a=pid:1".parse().unwrap();
        let b: TargetSpec = "b=pid:1".parse().unwrap();
        assert!(check_unique(&[a.clone(), b]).is_ok());
        assert!(matches!(
            check_unique(&[a.clone(), a]),
            Err(TargetError::DuplicateName(_))
        ));
    }
}
