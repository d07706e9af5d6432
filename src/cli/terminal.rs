//! The terminal's width, for reports on stdout and status lines on stderr.

/// The width in columns of the terminal on `fd` (`COLUMNS` overrides it: also off a terminal
/// when `columns_anywhere`), or `None` when `fd` is not a terminal.
fn width_of(fd: std::os::fd::RawFd, columns_anywhere: bool) -> Option<u16> {
    use std::io::IsTerminal;
    // SAFETY: the fd is borrowed only for the check; it is stdout or stderr, open for the
    // whole process.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let terminal = borrowed.is_terminal();
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
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we pass.
    let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col >= 40).then_some(ws.ws_col)
}

/// The width of the terminal stdout writes to (reports), `None` off a terminal.
pub(crate) fn terminal_width() -> Option<u16> {
    width_of(libc::STDOUT_FILENO, true)
}

/// A status line for stderr, broken at spaces to the width of the terminal stderr writes to
/// (unchanged off a terminal: logs keep one line per message).
pub(crate) fn wrap_for_stderr(line: &str) -> String {
    crate::report::table::wrap(line, width_of(libc::STDERR_FILENO, false), "", "  ")
}
