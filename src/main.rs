//! The `ignite` command: everything happens in `cli`.

// No unwrap/expect outside tests: every `cargo clippy` refuses them (CI denies warnings).
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
