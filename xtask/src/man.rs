//! `cargo xtask man [DIR]`: the man pages, generated from the same clap definition the binary
//! parses (so they cannot drift from `--help`): `mogplex.1` and one page per subcommand
//! (`mogplex-login.1`, …), written to DIR (default `target/man`).

use std::path::{Path, PathBuf};

pub fn run(dir: Option<&str>) -> Result<(), String> {
    let dir = dir.map_or_else(
        || xtask_lite::workspace_root().join("target/man"),
        PathBuf::from,
    );
    write(&dir)?;
    println!(
        "man pages in {} (read one with `man {}/mogplex.1`)",
        dir.display(),
        dir.display()
    );
    Ok(())
}

/// Renders every page into `dir`, creating it.
pub fn write(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let cmd = <mogplex_cli::args::Cli as clap::CommandFactory>::command();
    clap_mangen::generate_to(cmd, dir).map_err(|e| format!("writing man pages: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    #[test]
    fn pages_cover_every_subcommand_and_the_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        super::write(dir.path()).unwrap();
        let main = std::fs::read_to_string(dir.path().join("mogplex.1")).unwrap();
        assert!(
            main.starts_with(".ie"),
            "roff: {}",
            &main[..80.min(main.len())]
        );
        assert!(main.contains("Exit codes"), "{main}");
        let cmd = <mogplex_cli::args::Cli as clap::CommandFactory>::command();
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let page = dir.path().join(format!("mogplex-{}.1", sub.get_name()));
            let text = std::fs::read_to_string(&page)
                .unwrap_or_else(|e| panic!("{}: {e}", page.display()));
            assert!(text.contains(sub.get_name()), "{text}");
        }
    }
}
