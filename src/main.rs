//! The `nslat` binary: parse the command line, run one command, print errors as one clear chain.

use std::process::ExitCode;

fn main() -> ExitCode {
    nslat::cli::main()
}
