//! The terminal's width, for reports on stdout and status lines on stderr.

use std::io::IsTerminal;
use std::os::fd::AsFd;

/// The width in columns of the terminal on `fd` (`COLUMNS` overrides it: also off a terminal
/// when `columns_anywhere`), or `None` when `fd` is not a terminal.
fn width_of(fd: impl AsFd, columns_anywhere: bool) -> Option<u16> {
    let terminal = fd.as_fd().is_terminal();
    if !terminal && !columns_anywhere {
        return None;
    }
    if let Some(c) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|&c| c >= 40)
    {
        return Some(c);
    }
    if !terminal {
        return None;
    }
    let (terminal_size::Width(cols), _) = terminal_size::terminal_size_of(fd)?;
    (cols >= 40).then_some(cols)
}

/// The width of the terminal stdout writes to (reports), `None` off a terminal.
pub(crate) fn terminal_width() -> Option<u16> {
    width_of(std::io::stdout(), true)
}

/// A status line for stderr, broken at spaces to the width of the terminal stderr writes to
/// (unchanged off a terminal: logs keep one line per message).
pub(crate) fn wrap_for_stderr(line: &str) -> String {
    crate::report::table::wrap(line, width_of(std::io::stderr(), false), "", "  ")
}
