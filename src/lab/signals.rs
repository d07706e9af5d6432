//! SIGINT/SIGTERM/SIGHUP during `Lab::up`: set a flag the builder checks after every step (it then
//! removes what it built and returns [`super::LabError::Interrupted`]). Outside `up`, the signals
//! keep their default action unless a caller opts out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// The signals after which nslat cleans up before exiting: Ctrl-C, kill, and a closed terminal.
pub const STOP_SIGNALS: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

struct Flags {
    interrupted: Arc<AtomicBool>,
    default_outside: Arc<AtomicBool>,
    want_default: AtomicBool,
    active: Mutex<u32>,
}

fn flags() -> &'static Flags {
    static FLAGS: OnceLock<Flags> = OnceLock::new();
    FLAGS.get_or_init(|| {
        let f = Flags {
            interrupted: Arc::new(AtomicBool::new(false)),
            default_outside: Arc::new(AtomicBool::new(true)),
            want_default: AtomicBool::new(true),
            active: Mutex::new(0),
        };
        for sig in STOP_SIGNALS {
            // Order matters: the conditional default runs first and terminates when no `up` runs.
            let _ = signal_hook::flag::register_conditional_default(sig, f.default_outside.clone());
            let _ = signal_hook::flag::register(sig, f.interrupted.clone());
        }
        f
    })
}

/// Held while an `up` runs.
pub struct UpGuard(());

impl UpGuard {
    pub fn enter() -> UpGuard {
        let f = flags();
        let mut active = f.active.lock().unwrap_or_else(|e| e.into_inner());
        if *active == 0 {
            f.interrupted.store(false, Ordering::SeqCst);
        }
        *active += 1;
        f.default_outside.store(false, Ordering::SeqCst);
        UpGuard(())
    }

    /// Whether SIGINT or SIGTERM arrived since the first active `up` began.
    pub fn interrupted(&self) -> bool {
        flags().interrupted.load(Ordering::SeqCst)
    }
}

impl Drop for UpGuard {
    fn drop(&mut self) {
        let f = flags();
        let mut active = f.active.lock().unwrap_or_else(|e| e.into_inner());
        *active -= 1;
        if *active == 0 {
            f.default_outside
                .store(f.want_default.load(Ordering::SeqCst), Ordering::SeqCst);
        }
    }
}

pub fn set_default_outside_up(on: bool) {
    let f = flags();
    f.want_default.store(on, Ordering::SeqCst);
    let active = f.active.lock().unwrap_or_else(|e| e.into_inner());
    if *active == 0 {
        f.default_outside.store(on, Ordering::SeqCst);
    }
}
