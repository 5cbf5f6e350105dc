//! The `lyncdr` binary.

fn main() -> std::process::ExitCode {
    lyncdr::cli::main()
}
