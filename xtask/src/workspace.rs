//! Finding the workspace to work on, at run time.
//!
//! The root is not baked in at compile time (`env!("CARGO_MANIFEST_DIR")`): with a shared
//! `CARGO_TARGET_DIR`, a second clone reuses the binary built in the first, and a path
//! compiled into it names the first clone.

use std::fs;
use std::path::{Path, PathBuf};

/// The workspace root of the checkout this process was started for.
///
/// `cargo run` (which `cargo xtask` is) sets `CARGO_MANIFEST_DIR` in the environment of
/// the program to the directory of the xtask package it resolved, in the checkout it was
/// run from; without it (the binary run by hand), the search starts from the current
/// directory.
///
/// # Errors
///
/// A message if the current directory cannot be read or no workspace encloses the start.
pub fn current_root() -> Result<PathBuf, String> {
    let start = match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::current_dir()
            .map_err(|e| format!("cannot read the current directory: {e}"))?,
    };
    find_root(&start)
}

/// The nearest directory from `start` upwards (`start` included) whose `Cargo.toml`
/// declares a `[workspace]`.
///
/// # Errors
///
/// A message naming `start` if no directory up to the filesystem root has one.
pub fn find_root(start: &Path) -> Result<PathBuf, String> {
    start
        .ancestors()
        .find(|dir| declares_workspace(&dir.join("Cargo.toml")))
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            format!("no Cargo.toml with a [workspace] in {} or above it", start.display())
        })
}

/// Whether the manifest at `path` exists and has a `[workspace]` table (a
/// `[workspace.*]` header defines it too). A member's `edition.workspace = true` is a key,
/// not a header, and does not count.
fn declares_workspace(path: &Path) -> bool {
    let Ok(manifest) = fs::read_to_string(path) else { return false };
    manifest.lines().map(str::trim).any(|line| {
        line.strip_prefix("[workspace")
            .is_some_and(|rest| rest.starts_with(']') || rest.starts_with('.'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("xtask-workspace-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("create the scratch directory");
            Self(dir)
        }

        /// Writes `text` to `relative`, creating its directories.
        fn write(&self, relative: &str, text: &str) -> PathBuf {
            let path = self.0.join(relative);
            fs::create_dir_all(path.parent().expect("a file has a parent"))
                .expect("create directories");
            fs::write(&path, text).expect("write the file");
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A workspace root with a member crate `xtask` and a nested directory in it.
    fn workspace(name: &str) -> Scratch {
        let scratch = Scratch::new(name);
        scratch.write("Cargo.toml", "[workspace]\nmembers = [\"xtask\"]\n");
        scratch.write(
            "xtask/Cargo.toml",
            "[package]\nname = \"xtask\"\nedition.workspace = true\n\n[dependencies]\n",
        );
        scratch.write("xtask/src/deep/mod.rs", "");
        scratch
    }

    #[test]
    fn a_nested_directory_finds_the_root_past_its_member_manifest() {
        let scratch = workspace("nested");
        let start = scratch.0.join("xtask/src/deep");
        assert_eq!(find_root(&start), Ok(scratch.0.clone()));
        assert_eq!(find_root(&scratch.0.join("xtask")), Ok(scratch.0.clone()));
    }

    #[test]
    fn the_root_finds_itself() {
        let scratch = workspace("itself");
        assert_eq!(find_root(&scratch.0), Ok(scratch.0.clone()));
    }

    #[test]
    fn a_workspace_package_header_declares_a_workspace() {
        let scratch = Scratch::new("package-header");
        scratch.write("Cargo.toml", "[workspace.package]\nversion = \"0.1.0\"\n");
        assert_eq!(find_root(&scratch.0), Ok(scratch.0.clone()));
    }

    #[test]
    fn outside_any_workspace_is_an_error() {
        let scratch = Scratch::new("outside");
        scratch.write("crate/Cargo.toml", "[package]\nname = \"alone\"\n");
        let start = scratch.0.join("crate");
        // Assumes the system's temporary directory is not itself inside a Cargo workspace.
        let found = find_root(&start);
        assert!(found.is_err(), "found {found:?}");
        assert!(found.unwrap_err().contains("no Cargo.toml with a [workspace]"));
    }
}
