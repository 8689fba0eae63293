//! The Mogplex home: where `auth.json`, logs and cached state live.
//!
//! `$MOGPLEX_HOME`, else `$CODEX_HOME` (deprecated, honoured with a warning), else `~/.mogplex`.
//! Directories this module creates are mode 0700 whatever the umask.

use crate::env::Env;
use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HomeSource {
    MogplexHome,
    /// `$CODEX_HOME`, deprecated.
    CodexHome,
    Default,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MogplexHome {
    path: PathBuf,
    source: HomeSource,
}

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("cannot find the Mogplex home: neither MOGPLEX_HOME nor HOME is set")]
    NoHome,
    #[error("cannot create {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} exists but is not a directory")]
    NotADirectory { path: PathBuf },
}

impl HomeError {
    pub fn hint(&self) -> Option<String> {
        match self {
            HomeError::NoHome => Some("set MOGPLEX_HOME to a directory mogplex may use".into()),
            HomeError::Create { path, .. } => Some(format!(
                "check that the parent of {} exists and is writable, or set MOGPLEX_HOME",
                path.display()
            )),
            HomeError::NotADirectory { path } => Some(format!(
                "move {} aside, or set MOGPLEX_HOME to another directory",
                path.display()
            )),
        }
    }
}

impl MogplexHome {
    /// Finds the home from the environment. Does not touch the file system.
    pub fn from_env(env: &dyn Env) -> Result<Self, HomeError> {
        let cwd_relative = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        if let Some(p) = env.var_os("MOGPLEX_HOME") {
            return Ok(Self {
                path: cwd_relative(p.into()),
                source: HomeSource::MogplexHome,
            });
        }
        if let Some(p) = env.var_os("CODEX_HOME") {
            return Ok(Self {
                path: cwd_relative(p.into()),
                source: HomeSource::CodexHome,
            });
        }
        let home = env.var_os("HOME").ok_or(HomeError::NoHome)?;
        Ok(Self {
            path: PathBuf::from(home).join(".mogplex"),
            source: HomeSource::Default,
        })
    }

    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            source: HomeSource::MogplexHome,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn source(&self) -> HomeSource {
        self.source
    }

    /// The one-line warning to print when the home came from the deprecated `CODEX_HOME`.
    pub fn deprecation_warning(&self) -> Option<String> {
        (self.source == HomeSource::CodexHome).then(|| {
            format!(
                "warning: CODEX_HOME is deprecated for mogplex; set MOGPLEX_HOME instead (using {})",
                self.path.display()
            )
        })
    }

    pub fn auth_file(&self) -> PathBuf {
        self.path.join("auth.json")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.path.join("logs")
    }

    pub fn state_file(&self) -> PathBuf {
        self.path.join("state.json")
    }

    /// Creates the home (and its parents) if missing; a directory created here is 0700.
    pub fn ensure(&self) -> Result<(), HomeError> {
        ensure_private_dir(&self.path)
    }

    /// Creates a directory under the home, 0700.
    pub fn ensure_subdir(&self, name: &str) -> Result<PathBuf, HomeError> {
        self.ensure()?;
        let dir = self.path.join(name);
        ensure_private_dir(&dir)?;
        Ok(dir)
    }
}

/// Creates `path` and any missing parents. Each directory created here gets mode 0700 (set
/// explicitly after creation, so the umask cannot widen or narrow it). Existing directories are
/// left as they are.
pub fn ensure_private_dir(path: &Path) -> Result<(), HomeError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(HomeError::NotADirectory {
                path: path.to_owned(),
            });
        }
        Err(_) => {}
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        ensure_private_dir(parent)?;
    }
    let create = |e| HomeError::Create {
        path: path.to_owned(),
        source: e,
    };
    match DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(create)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(create(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MapEnv;

    #[test]
    fn precedence_and_empty_values() {
        let env = MapEnv::new([("MOGPLEX_HOME", "/a"), ("CODEX_HOME", "/b"), ("HOME", "/h")]);
        assert_eq!(MogplexHome::from_env(&env).unwrap().path(), Path::new("/a"));
        let env = MapEnv::new([("MOGPLEX_HOME", ""), ("CODEX_HOME", "/b"), ("HOME", "/h")]);
        let home = MogplexHome::from_env(&env).unwrap();
        assert_eq!(home.path(), Path::new("/b"));
        assert!(home.deprecation_warning().unwrap().contains("MOGPLEX_HOME"));
        let env = MapEnv::new([("HOME", "/h")]);
        assert_eq!(
            MogplexHome::from_env(&env).unwrap().path(),
            Path::new("/h/.mogplex")
        );
        assert!(matches!(
            MogplexHome::from_env(&MapEnv::default()),
            Err(HomeError::NoHome)
        ));
    }
}
