use std::process::ExitCode;

fn main() -> ExitCode {
    ironcast::cli::main()
}
