//! Running external commands: the shared context (workspace root, cargo
//! binary) and a small command description that prints itself before it runs.

use std::ffi::OsString;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::workspace;

/// What every step needs to know about its environment.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The workspace root; every command runs from here.
    pub root: PathBuf,
    /// The cargo binary: `$CARGO` if set (it is under `cargo run`), else `cargo`.
    pub cargo: OsString,
}

impl Ctx {
    /// The context of this process: the workspace it was run for (found at run time,
    /// see [`workspace::current_root`]) and the cargo that (probably) started us.
    ///
    /// # Errors
    ///
    /// A message if no workspace encloses the checkout.
    pub fn from_env() -> Result<Self, String> {
        let root = workspace::current_root()?;
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        Ok(Self { root, cargo })
    }

    /// A cargo invocation with the given arguments.
    pub fn cargo(&self, args: &[&str]) -> Cmd {
        Cmd {
            program: self.cargo.clone(),
            display_program: "cargo".into(),
            args: args.iter().map(|&a| a.to_owned()).collect(),
            env: Vec::new(),
        }
    }
}

/// A command to run, with the environment variables it adds.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    /// How the program is shown when the command is printed.
    display_program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Cmd {
    /// `argv[0]` run with arguments `argv[1..]`, looked up in `PATH`.
    ///
    /// # Panics
    ///
    /// If `argv` is empty.
    pub fn new(argv: &[&str]) -> Self {
        let (program, args) = argv.split_first().expect("a command needs a program");
        Self {
            program: program.into(),
            display_program: (*program).to_owned(),
            args: args.iter().map(|&a| a.to_owned()).collect(),
            env: Vec::new(),
        }
    }

    /// Sets an environment variable for the command.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    fn command(&self, dir: &Path) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args).current_dir(dir);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// Prints the command, then runs it from `dir` with inherited stdio.
    ///
    /// # Errors
    ///
    /// A message if it could not be started or did not exit successfully.
    pub fn run(&self, dir: &Path) -> Result<(), String> {
        println!("$ {self}");
        // Our output and the child's share the terminal: keep them in order.
        let _ = std::io::stdout().flush();
        let status = self
            .command(dir)
            .status()
            .map_err(|e| format!("could not run `{}`: {e}", self.display_program))?;
        if status.success() { Ok(()) } else { Err(format!("`{self}` failed ({status})")) }
    }

    /// Prints the command, then starts it from `dir` with its stderr piped to the caller
    /// (stdout inherited).
    ///
    /// # Errors
    ///
    /// A message if it could not be started.
    pub fn spawn_reading_stderr(&self, dir: &Path) -> Result<std::process::Child, String> {
        println!("$ {self}");
        let _ = std::io::stdout().flush();
        self.command(dir)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not run `{}`: {e}", self.display_program))
    }

    /// Runs the command quietly from `dir` and returns its stdout.
    ///
    /// # Errors
    ///
    /// A message if it could not be started or did not exit successfully.
    pub fn output(&self, dir: &Path) -> Result<String, String> {
        let output = self
            .command(dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("could not run `{}`: {e}", self.display_program))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let stderr = stderr.trim();
            let mut msg = format!("`{self}` failed ({})", output.status);
            if !stderr.is_empty() {
                msg.push_str(": ");
                msg.push_str(stderr);
            }
            Err(msg)
        }
    }
}

/// Shell-like rendering, e.g. `RUSTDOCFLAGS="-D warnings" cargo doc`.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value) in &self.env {
            write!(f, "{key}={} ", quote(value))?;
        }
        f.write_str(&quote(&self.display_program))?;
        for arg in &self.args {
            write!(f, " {}", quote(arg))?;
        }
        Ok(())
    }
}

/// Quotes `s` if a shell would split or expand it.
fn quote(s: &str) -> String {
    let plain =
        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./,:=+@%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_env_and_args() {
        let cmd =
            Cmd::new(&["cargo", "doc", "--features", "a/x,b/y"]).env("RUSTDOCFLAGS", "-D warnings");
        assert_eq!(cmd.to_string(), r#"RUSTDOCFLAGS="-D warnings" cargo doc --features a/x,b/y"#);
    }

    #[test]
    fn cargo_is_displayed_as_cargo() {
        let ctx = Ctx { root: PathBuf::from("/"), cargo: "/some/toolchain/bin/cargo".into() };
        assert_eq!(ctx.cargo(&["fmt", "--all"]).to_string(), "cargo fmt --all");
    }
}
