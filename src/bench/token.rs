//! The shared secret of `nslat serve` and its clients: where a token comes from (a file, the
//! environment, or, visible to every user of the machine, the command line) and how the server
//! compares it (in time that does not depend on the token's bytes). It does not print: warning
//! about a token on the command line is the CLI's job.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The environment variable a token may come from.
pub const ENV: &str = "NSLAT_TOKEN";
/// The largest token file read (a token is a line, not a document).
pub const MAX_TOKEN_FILE: u64 = 4096;

/// Why no token could be read; each is one line saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the token file {}: {error}", path.display())]
    Unreadable { path: PathBuf, error: io::Error },
    #[error("the token file {} is empty: put the server's token in it", path.display())]
    EmptyFile { path: PathBuf },
    #[error("the token file {} is larger than {MAX_TOKEN_FILE} bytes: it should hold only the token", path.display())]
    TooLarge { path: PathBuf },
    #[error("the token file {} is not text (UTF-8): it should hold only the token", path.display())]
    NotText { path: PathBuf },
    #[error("{ENV} is set but empty: set it to the server's token, or unset it")]
    EmptyEnv,
    #[error("{ENV} is not text (UTF-8): set it to the server's token, or unset it")]
    EnvNotText,
}

/// Where a token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `--token SECRET`: in `/proc/PID/cmdline` and `ps` for every user of the machine.
    CommandLine,
    File(PathBuf),
    Env,
}

/// Reads a token file: the token is its content without leading and trailing whitespace (so a
/// file written by `echo` works). At most [`MAX_TOKEN_FILE`] bytes are read.
pub fn read_file(path: &Path) -> Result<String, TokenError> {
    let unreadable = |error| TokenError::Unreadable {
        path: path.to_path_buf(),
        error,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TOKEN_FILE + 1).read_to_end(&mut bytes))
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_TOKEN_FILE {
        return Err(TokenError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| TokenError::NotText {
        path: path.to_path_buf(),
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(TokenError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(token.to_string())
}

/// The token to use: `--token` (`flag`), else `--token-file` (`file`), else [`ENV`], else none.
pub fn resolve(
    flag: Option<String>,
    file: Option<&Path>,
) -> Result<Option<(String, TokenSource)>, TokenError> {
    if let Some(t) = flag {
        return Ok(Some((t, TokenSource::CommandLine)));
    }
    if let Some(path) = file {
        return read_file(path).map(|t| Some((t, TokenSource::File(path.to_path_buf()))));
    }
    match std::env::var(ENV) {
        Ok(t) if t.trim().is_empty() => Err(TokenError::EmptyEnv),
        Ok(t) => Ok(Some((t.trim().to_string(), TokenSource::Env))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(TokenError::EnvNotText),
    }
}

/// Whether `given` is the `expected` token. The time taken depends on the length of `expected`
/// (the server's own, fixed) and of `given` (the client's, known to it), never on where the bytes
/// differ: every byte of `expected` is compared, the differences are OR-ed, and the result goes
/// through `black_box` so that the compiler cannot turn the fold into an early exit. A plain
/// fold rather than the `subtle` crate: the same technique, with no dependency for a few lines
/// (subtle's slice comparison also returns early on a length mismatch).
pub fn matches(expected: &str, given: Option<&str>) -> bool {
    let Some(given) = given else { return false };
    let (e, g) = (expected.as_bytes(), given.as_bytes());
    let mut diff = (e.len() != g.len()) as u8;
    for (i, x) in e.iter().enumerate() {
        diff |= x ^ g.get(i).copied().unwrap_or(!x);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        assert!(matches("abc", Some("abc")));
        assert!(!matches("abc", Some("abd")));
        assert!(!matches("abc", Some("xbc")));
        assert!(!matches("abc", Some("abcd")));
        assert!(!matches("abc", Some("ab")));
        assert!(!matches("abc", Some("")));
        assert!(!matches("abc", None));
        // A shorter given token whose missing bytes would "match" zero bytes still fails.
        assert!(!matches("a\0", Some("a")));
    }

    #[test]
    fn token_files_are_trimmed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "  s3cret\n").unwrap();
        assert_eq!(read_file(&f).unwrap(), "s3cret");
        std::fs::write(&f, "\n \n").unwrap();
        assert!(matches!(read_file(&f), Err(TokenError::EmptyFile { .. })));
        std::fs::write(&f, vec![b'a'; MAX_TOKEN_FILE as usize + 1]).unwrap();
        assert!(matches!(read_file(&f), Err(TokenError::TooLarge { .. })));
        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        assert!(matches!(read_file(&f), Err(TokenError::NotText { .. })));
        let missing = dir.path().join("missing");
        let e = read_file(&missing).unwrap_err();
        assert!(matches!(e, TokenError::Unreadable { .. }));
        assert!(e.to_string().contains("missing") && !e.to_string().contains('\n'));
        assert!(matches!(
            read_file(dir.path()),
            Err(TokenError::Unreadable { .. })
        ));
    }

    #[test]
    fn the_flag_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "from-file\n").unwrap();
        let (t, s) = resolve(Some("flag".into()), Some(&f)).unwrap().unwrap();
        assert_eq!((t.as_str(), s), ("flag", TokenSource::CommandLine));
        let (t, s) = resolve(None, Some(&f)).unwrap().unwrap();
        assert_eq!((t.as_str(), s), ("from-file", TokenSource::File(f.clone())));
    }
}
