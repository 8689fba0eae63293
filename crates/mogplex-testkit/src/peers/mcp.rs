//! The MCP reference server's command line ([`McpEverything`]).

use super::*;

/// The command line of `@modelcontextprotocol/server-everything` over stdio: what an MCP
/// definition's `command` and `args` should say.
#[derive(Debug, Clone)]
pub struct McpEverything {
    node: PathBuf,
    script: PathBuf,
}

impl McpEverything {
    /// Locates the installed server (installing the peers first if needed).
    pub fn locate() -> Self {
        let peers = Peers::get();
        Self {
            node: peers.node().to_owned(),
            script: peers.package_file("@modelcontextprotocol/server-everything", "dist/index.js"),
        }
    }

    /// The absolute path of `node`.
    pub fn program(&self) -> &Path {
        &self.node
    }

    /// The arguments after the program: the server's script and `stdio`.
    pub fn args(&self) -> Vec<String> {
        vec![self.script.display().to_string(), "stdio".into()]
    }

    /// A ready-to-spawn command (stdin, stdout and stderr left to the caller).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.node);
        cmd.args(self.args());
        cmd
    }
}
