//! Which labs exist on this machine, who owns them, and whether their owner is still alive.
//!
//! A lab built by `nslat lab up` is kept until `nslat lab down`. A lab `nslat compare` builds for
//! itself is named `cmp<PID>` after the compare's process ([`compare_lab_name`]) and lives as long
//! as that process: when the process is gone (kill -9, a crash), the lab is stale and the next
//! compare removes it ([`remove_stale_compare_labs`]). A lab whose `up` never finished is stale
//! when its builder is gone. Reads state files and /proc only; removing goes through [`super::down`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{DownReport, LabError, LabState};

/// The name `nslat compare` gives the lab it builds for itself.
pub fn compare_lab_name(pid: u32) -> String {
    format!("cmp{pid}")
}

/// The compare process a lab named by [`compare_lab_name`] belongs to.
pub fn compare_lab_owner(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("cmp")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether a lab's owner still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The owning process (a compare, or a `lab up` still building) is running.
    Alive,
    /// The owning process is gone: nothing will remove the lab but `nslat lab down` (or, for a
    /// compare's own lab, the next compare).
    Stale,
    /// Built by `nslat lab up` (or kept with `compare --keep-lab`): kept until `nslat lab down`.
    Kept,
}

impl Liveness {
    /// The word `nslat lab list` prints.
    pub fn name(self) -> &'static str {
        match self {
            Liveness::Alive => "alive",
            Liveness::Stale => "stale",
            Liveness::Kept => "kept",
        }
    }
}

impl std::fmt::Display for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One lab on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabEntry {
    pub name: String,
    /// The process whose lifetime the lab shares (a compare's, or the builder of an unfinished
    /// lab); `None` for kept labs.
    pub owner: Option<u32>,
    pub liveness: Liveness,
    /// Since the lab was built (`None`: unknown, e.g. a state file from an older nslat).
    pub age: Option<Duration>,
    /// Whether `lab up` finished.
    pub complete: bool,
    /// The modes asked for.
    pub modes: Vec<String>,
}

impl LabEntry {
    /// Whether this is a compare's own lab whose compare is gone (the next compare removes it).
    pub fn is_stale_compare_lab(&self) -> bool {
        self.liveness == Liveness::Stale && compare_lab_owner(&self.name) == self.owner
    }
}

/// Seconds since the epoch, now.
pub(super) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// When process `pid` started (seconds since the epoch), or `None` if it does not exist.
fn process_start_unix(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime, in clock ticks since boot) counts from after the command name,
    // which is in parentheses and may contain spaces.
    let after = stat.rsplit_once(')')?.1;
    let start_ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let btime: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    Some(btime + start_ticks / hz)
}

/// Whether `pid` runs and is the process that built a lab at `created` (a PID reused by a
/// process started later is not the owner).
fn owner_alive(pid: u32, created: u64) -> bool {
    match process_start_unix(pid) {
        None => false,
        Some(_) if created == 0 => true,
        // Start times are rounded to the second, boot time too: allow a little.
        Some(start) => start <= created + 2,
    }
}

/// What one state file says about its lab.
pub fn entry(state: &LabState) -> LabEntry {
    let owner = if !state.complete {
        Some(state.pid)
    } else if state.kept {
        None
    } else {
        compare_lab_owner(&state.name).filter(|&pid| pid == state.pid)
    };
    let liveness = match owner {
        None => Liveness::Kept,
        Some(pid) if owner_alive(pid, state.created_unix) => Liveness::Alive,
        Some(_) => Liveness::Stale,
    };
    let age = (state.created_unix > 0)
        .then(|| Duration::from_secs(now_unix().saturating_sub(state.created_unix)));
    LabEntry {
        name: state.name.clone(),
        owner,
        liveness,
        age,
        complete: state.complete,
        modes: state
            .modes
            .iter()
            .map(|(m, _)| m.name().to_string())
            .collect(),
    }
}

/// Every lab with a state file, by name. Unreadable state files are returned as errors.
pub fn list() -> Vec<Result<LabEntry, (String, LabError)>> {
    super::list()
        .into_iter()
        .filter_map(|name| match LabState::load(&name) {
            Ok(Some(state)) => Some(Ok(entry(&state))),
            Ok(None) => None,
            Err(e) => Some(Err((name, e))),
        })
        .collect()
}

/// Removes every compare lab whose compare is gone; returns what was removed (or failed).
pub fn remove_stale_compare_labs() -> Vec<(LabEntry, Result<DownReport, LabError>)> {
    list()
        .into_iter()
        .flatten()
        .filter(LabEntry::is_stale_compare_lab)
        .map(|e| {
            let r = super::down(&e.name);
            (e, r)
        })
        .collect()
}

/// Marks a compare's lab as kept (`--keep-lab`): no later compare removes it.
pub fn keep(name: &str) -> Result<(), LabError> {
    match LabState::load(name)? {
        Some(mut s) => {
            s.kept = true;
            s.save()
        }
        None => Err(LabError::NotFound(name.to_string())),
    }
}

/// An age for people: "42 s", "7 min", "3 h", "2 d".
pub fn human_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::NatLevel;

    fn state(name: &str, pid: u32, complete: bool, kept: bool, created: u64) -> LabState {
        LabState {
            version: 1,
            name: name.into(),
            ipv6: false,
            host_shim: false,
            namespaces: vec![],
            modes: vec![],
            nat: NatLevel::None,
            complete,
            pid,
            created_unix: created,
            kept,
        }
    }

    #[test]
    fn compare_lab_names() {
        assert_eq!(compare_lab_owner(&compare_lab_name(4242)), Some(4242));
        for other in ["cmp", "cmpx1", "default", "cmp12a", "t123cmp4"] {
            assert_eq!(compare_lab_owner(other), None, "{other}");
        }
    }

    #[test]
    fn owners_alive_stale_and_kept() {
        let me = std::process::id();
        let now = now_unix();
        // A compare lab of this (running) process.
        let e = entry(&state(&compare_lab_name(me), me, true, false, now));
        assert_eq!((e.owner, e.liveness), (Some(me), Liveness::Alive));
        assert!(!e.is_stale_compare_lab());
        // A compare lab whose process is gone (PIDs above pid_max never exist).
        let gone = 999_999_999;
        let e = entry(&state(&compare_lab_name(gone), gone, true, false, now));
        assert_eq!(e.liveness, Liveness::Stale);
        assert!(e.is_stale_compare_lab());
        // Our PID, but the lab is older than this process: the PID was reused.
        let e = entry(&state(&compare_lab_name(me), me, true, false, 1000));
        assert_eq!(e.liveness, Liveness::Stale);
        // Kept: `lab up`, or --keep-lab.
        let e = entry(&state("default", gone, true, false, now));
        assert_eq!((e.owner, e.liveness), (None, Liveness::Kept));
        let e = entry(&state(&compare_lab_name(gone), gone, true, true, now));
        assert_eq!(e.liveness, Liveness::Kept);
        assert!(!e.is_stale_compare_lab());
        // An unfinished `up` whose builder is gone is stale, but not a compare's to remove.
        let e = entry(&state("demo", gone, false, false, now));
        assert_eq!((e.owner, e.liveness), (Some(gone), Liveness::Stale));
        assert!(!e.is_stale_compare_lab());
    }

    #[test]
    fn ages() {
        assert_eq!(human_age(Duration::from_secs(42)), "42 s");
        assert_eq!(human_age(Duration::from_secs(600)), "10 min");
        assert_eq!(human_age(Duration::from_secs(3 * 3600)), "3 h");
        assert_eq!(human_age(Duration::from_secs(3 * 86_400)), "3 d");
    }
}
