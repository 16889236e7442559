//! Prerequisites: things outside the workspace that steps need (rustup
//! targets, toolchains, system tools). Each is a [`Requirement`]: how to
//! check for it, how to install it, and what to tell a human if that fails.
//!
//! Adding one is a constant here plus a mention in the step that needs it;
//! for example a system package:
//!
//! ```text
//! pub const QEMU: Requirement = Requirement {
//!     name: "QEMU (qemu-system-x86_64)",
//!     check: Check::Succeeds(&["qemu-system-x86_64", "--version"]),
//!     install: Install::AsRoot(&[
//!         &["apt-get", "update"],
//!         &["apt-get", "install", "-y", "qemu-system-x86"],
//!     ]),
//!     hint: "install the `qemu-system-x86` package, e.g. `sudo apt-get install qemu-system-x86`",
//! };
//! ```

use std::path::Path;

use crate::cmd::Cmd;

/// Something a step needs that may have to be installed first.
#[derive(Debug, Clone, Copy)]
pub struct Requirement {
    /// What is needed, as shown to the user.
    pub name: &'static str,
    /// How to tell whether it is present.
    pub check: Check,
    /// How to install it when it is not.
    pub install: Install,
    /// How a human can install it when automatic installation fails.
    pub hint: &'static str,
}

/// A command line: the program (looked up in `PATH`), then its arguments.
pub type Argv = &'static [&'static str];

/// How to tell whether a [`Requirement`] is present.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// The command succeeds.
    Succeeds(Argv),
    /// The command succeeds and one line of its stdout, trimmed, is exactly
    /// this string.
    PrintsLine(Argv, &'static str),
}

/// How to install a missing [`Requirement`].
#[derive(Debug, Clone, Copy)]
pub enum Install {
    /// Run these commands in order.
    Run(&'static [Argv]),
    /// Run these commands in order, but only when running as root (for
    /// system package managers); otherwise give up with the hint.
    AsRoot(&'static [Argv]),
}

/// The bare-metal target the `no_std` crates are built for.
pub const TARGET_X86_64_NONE: Requirement = Requirement {
    name: "rustup target x86_64-unknown-none",
    check: Check::PrintsLine(&["rustup", "target", "list", "--installed"], "x86_64-unknown-none"),
    install: Install::Run(&[&["rustup", "target", "add", "x86_64-unknown-none"]]),
    hint: "install it with `rustup target add x86_64-unknown-none` \
           (rustup itself: https://rustup.rs)",
};

impl Check {
    /// `Ok` if the requirement is present, else why not.
    fn run(self, dir: &Path) -> Result<(), String> {
        match self {
            Self::Succeeds(argv) => Cmd::new(argv).output(dir).map(drop),
            Self::PrintsLine(argv, line) => {
                let stdout = Cmd::new(argv).output(dir)?;
                if stdout.lines().any(|l| l.trim() == line) {
                    Ok(())
                } else {
                    Err(format!("`{}` does not list `{line}`", Cmd::new(argv)))
                }
            }
        }
    }
}

impl Install {
    fn run(self, dir: &Path) -> Result<(), String> {
        let commands = match self {
            Self::Run(commands) => commands,
            Self::AsRoot(commands) => {
                if !is_root() {
                    return Err("installing it needs root".to_owned());
                }
                commands
            }
        };
        commands.iter().try_for_each(|argv| Cmd::new(argv).run(dir))
    }
}

impl Requirement {
    /// Checks for the requirement and installs it if missing.
    ///
    /// # Errors
    ///
    /// A message naming what is missing, why it could not be installed, and
    /// how to install it by hand.
    pub fn ensure(&self, dir: &Path) -> Result<(), String> {
        let Err(why) = self.check.run(dir) else {
            println!("ok: {}", self.name);
            return Ok(());
        };
        println!("missing: {} ({why}); installing it", self.name);
        let failed = |reason: String| {
            format!("missing {}: could not install it ({reason}); {}", self.name, self.hint)
        };
        self.install.run(dir).map_err(failed)?;
        self.check
            .run(dir)
            .map_err(|why| failed(format!("still missing after installing: {why}")))?;
        println!("installed: {}", self.name);
        Ok(())
    }
}

/// Ensures every requirement, reporting all that are missing, not just the
/// first.
///
/// # Errors
///
/// The messages of those that are missing and could not be installed, one a
/// line.
pub fn ensure_all(requirements: &[Requirement], dir: &Path) -> Result<(), String> {
    let errors: Vec<String> = requirements.iter().filter_map(|r| r.ensure(dir).err()).collect();
    if errors.is_empty() { Ok(()) } else { Err(errors.join("\n")) }
}

/// Whether this process runs as root (effective uid 0).
fn is_root() -> bool {
    Cmd::new(&["id", "-u"]).output(Path::new("/")).is_ok_and(|uid| uid.trim() == "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = "/";

    #[test]
    fn present_requirement_is_ok() {
        let r = Requirement {
            name: "sh",
            check: Check::PrintsLine(&["sh", "-c", "echo a; echo ' b '"], "b"),
            install: Install::Run(&[&["false"]]),
            hint: "",
        };
        assert_eq!(r.ensure(Path::new(DIR)), Ok(()));
    }

    #[test]
    fn failed_install_names_requirement_and_hint() {
        let r = Requirement {
            name: "a thing",
            check: Check::Succeeds(&["xtask-test-no-such-program"]),
            install: Install::Run(&[&["xtask-test-no-such-installer"]]),
            hint: "get it from the shop",
        };
        let err = ensure_all(&[r], Path::new(DIR)).unwrap_err();
        assert!(err.starts_with("missing a thing: could not install it"), "{err}");
        assert!(err.contains("xtask-test-no-such-installer"), "{err}");
        assert!(err.ends_with("get it from the shop"), "{err}");
    }
}
