//! What the git checkout says about the build: commit, commit time, branch,
//! tags at HEAD, origin URL (without credentials), shallow and dirty. Read
//! through the `git` CLI, the same tool that made the checkout, so every
//! repository format, worktree and config it understands works here too.

use super::CiError;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The state of the checkout at `HEAD`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GitInfo {
    /// Full commit id of `HEAD`.
    pub commit: String,
    /// Committer time of `HEAD`, seconds since 1970 (what `SOURCE_DATE_EPOCH`
    /// defaults to).
    pub commit_time: i64,
    /// The branch `HEAD` is on; `None` when `HEAD` is detached (CI checkouts
    /// of tags and pull requests usually are).
    pub branch: Option<String>,
    /// Tags pointing at `HEAD`, sorted. Empty in a shallow clone fetched
    /// without tags.
    pub tags: Vec<String>,
    /// `remote.origin.url` with any user name and password removed.
    pub remote_url: Option<String>,
    /// The branch `origin/HEAD` points at, when the clone recorded it.
    pub default_branch: Option<String>,
    /// The clone is shallow: history and tags may be missing.
    pub shallow: bool,
    /// Tracked files are modified or untracked files exist (ignored files do
    /// not count).
    pub dirty: bool,
}

impl GitInfo {
    /// Reads the checkout containing `dir`.
    ///
    /// Returns `Ok(None)` when there is nothing to read, so the caller falls
    /// back to the CI environment and epoch 0:
    /// - `dir` is not inside a git work tree (or is in a bare repository);
    /// - the repository has no commit yet;
    /// - git is not installed and no `.git` exists in `dir` or above it.
    ///
    /// Any other failure (git installed but broken, a checkout owned by
    /// another user) is an error naming the command.
    pub fn discover(dir: &Path) -> Result<Option<GitInfo>, CiError> {
        Self::discover_with(Path::new("git"), dir)
    }

    /// [`GitInfo::discover`] with another git executable.
    pub(crate) fn discover_with(program: &Path, dir: &Path) -> Result<Option<GitInfo>, CiError> {
        // Outside any checkout there is nothing to ask: skip starting git,
        // which is most of the time before a small build's first layer.
        if dir.is_dir() && std::env::var_os("GIT_DIR").is_none() && !has_git_directory(dir) {
            return Ok(None);
        }
        let git = Git { program, dir };
        let inside = match git.output(&["rev-parse", "--is-inside-work-tree"]) {
            Ok(output) => output,
            Err(CiError::GitUnavailable { .. }) if !has_git_directory(dir) => return Ok(None),
            Err(error) => return Err(error),
        };
        if !inside.status.success() {
            let stderr = String::from_utf8_lossy(&inside.stderr);
            if stderr.contains("not a git repository") {
                return Ok(None);
            }
            return Err(git.failure(&["rev-parse", "--is-inside-work-tree"], &inside));
        }
        if text(&inside.stdout) != "true" {
            return Ok(None);
        }
        // `--verify --quiet` exits 1 without a message on an unborn branch.
        let head = git.output(&["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])?;
        if !head.status.success() {
            if head.status.code() == Some(1) {
                return Ok(None);
            }
            return Err(git.failure(
                &["rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
                &head,
            ));
        }
        let commit = text(&head.stdout);

        // The rest are independent: started together, so a build in a
        // checkout waits for about one git start-up instead of seven.
        const TIME: &[&str] = &["show", "-s", "--format=%ct", "HEAD"];
        const BRANCH: &[&str] = &["symbolic-ref", "--quiet", "--short", "HEAD"];
        const TAGS: &[&str] = &["tag", "--points-at", "HEAD", "--sort=refname"];
        const REMOTE: &[&str] = &["config", "--get", "remote.origin.url"];
        const DEFAULT_BRANCH: &[&str] = &[
            "symbolic-ref",
            "--quiet",
            "--short",
            "refs/remotes/origin/HEAD",
        ];
        const SHALLOW: &[&str] = &["rev-parse", "--is-shallow-repository"];
        // No optional locks: reading status must not write the index of a
        // checkout that another process may be using.
        const STATUS: &[&str] = &[
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--untracked-files=normal",
        ];
        let [time, branch, tags, remote, default_branch, shallow, status] =
            [TIME, BRANCH, TAGS, REMOTE, DEFAULT_BRANCH, SHALLOW, STATUS]
                .map(|arguments| git.start(arguments));

        let time_text = git.required(TIME, time)?;
        let commit_time = time_text.parse::<i64>().map_err(|_| CiError::GitOutput {
            command: command_line(TIME),
            output: time_text.clone(),
            expected: "a number of seconds",
        })?;
        let branch = git.optional(BRANCH, branch)?;
        let tags = git
            .required(TAGS, tags)?
            .lines()
            .map(str::to_string)
            .collect();
        let remote_url = git
            .optional(REMOTE, remote)?
            .map(|url| strip_credentials(&url));
        let default_branch = git
            .optional(DEFAULT_BRANCH, default_branch)?
            .map(|name| name.strip_prefix("origin/").unwrap_or(&name).to_string());
        let shallow = git.required(SHALLOW, shallow)? == "true";
        let dirty = !git.required(STATUS, status)?.is_empty();

        Ok(Some(GitInfo {
            commit,
            commit_time,
            branch,
            tags,
            remote_url,
            default_branch,
            shallow,
            dirty,
        }))
    }
}

struct Git<'a> {
    program: &'a Path,
    dir: &'a Path,
}

/// A git command started and not yet waited for.
type Started = Result<Child, CiError>;

impl Git<'_> {
    fn command(&self, arguments: &[&str]) -> Command {
        let mut command = Command::new(self.program);
        command
            .arg("-C")
            .arg(self.dir)
            .args(arguments)
            // Messages are matched on, so they must not be translated.
            .env("LC_ALL", "C")
            .env("LANGUAGE", "C")
            .env("GIT_TERMINAL_PROMPT", "0");
        command
    }

    fn unavailable(&self, arguments: &[&str], source: std::io::Error) -> CiError {
        CiError::GitUnavailable {
            command: command_line(arguments),
            dir: self.dir.to_path_buf(),
            source,
        }
    }

    fn output(&self, arguments: &[&str]) -> Result<Output, CiError> {
        self.finish(arguments, self.start(arguments))
    }

    /// Starts a command whose output is read later by [`Git::finish`].
    fn start(&self, arguments: &[&str]) -> Started {
        self.command(arguments)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| self.unavailable(arguments, source))
    }

    fn finish(&self, arguments: &[&str], started: Started) -> Result<Output, CiError> {
        started?
            .wait_with_output()
            .map_err(|source| self.unavailable(arguments, source))
    }

    /// The output of a started command that must succeed, trimmed.
    fn required(&self, arguments: &[&str], started: Started) -> Result<String, CiError> {
        let output = self.finish(arguments, started)?;
        if output.status.success() {
            Ok(text(&output.stdout))
        } else {
            Err(self.failure(arguments, &output))
        }
    }

    /// The output of a started command whose exit code 1 means "no value"
    /// (`symbolic-ref --quiet` on a detached HEAD, `config --get` on an
    /// unset key).
    fn optional(&self, arguments: &[&str], started: Started) -> Result<Option<String>, CiError> {
        let output = self.finish(arguments, started)?;
        if output.status.success() {
            let value = text(&output.stdout);
            Ok((!value.is_empty()).then_some(value))
        } else if output.status.code() == Some(1) && output.stderr.is_empty() {
            Ok(None)
        } else {
            Err(self.failure(arguments, &output))
        }
    }

    fn failure(&self, arguments: &[&str], output: &Output) -> CiError {
        let stderr = text(&output.stderr);
        if stderr.contains("dubious ownership") {
            return CiError::GitDubiousOwnership {
                command: command_line(arguments),
                dir: self.dir.to_path_buf(),
            };
        }
        CiError::GitCommand {
            command: format!("git -C {} {}", self.dir.display(), arguments.join(" ")),
            status: output.status.to_string(),
            stderr,
        }
    }
}

fn command_line(arguments: &[&str]) -> String {
    format!("git {}", arguments.join(" "))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// Whether `dir` or one of its parents holds a `.git` entry.
fn has_git_directory(dir: &Path) -> bool {
    let start: PathBuf = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    start
        .ancestors()
        .any(|ancestor| ancestor.join(".git").exists())
}

/// Removes credentials from a remote URL so it can go into labels and logs.
///
/// For http(s) the whole user part goes (CI tokens are often passed as the
/// user name, `https://x-access-token:TOKEN@github.com/...`); for other
/// schemes (`ssh://git@host/...`) the user name stays and only a password
/// goes. scp-like remotes (`git@host:path`) cannot carry a password and are
/// kept as they are.
pub fn strip_credentials(remote: &str) -> String {
    match url::Url::parse(remote) {
        Ok(mut parsed) => {
            if parsed.scheme() == "http" || parsed.scheme() == "https" {
                // Both fail only for URLs without a host, which have no user part.
                let _ = parsed.set_username("");
            }
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => match remote.split_once("://") {
            // Unparseable but URL-shaped: drop the user part by hand rather
            // than risk passing a token through.
            Some((scheme, rest)) => {
                let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                let (authority, path) = rest.split_at(authority_end);
                let host = authority
                    .rsplit_once('@')
                    .map_or(authority, |(_, host)| host);
                format!("{scheme}://{host}{path}")
            }
            None => remote.to_string(),
        },
    }
}

/// A browsable https URL for a remote, when it is on a web host:
/// `git@github.com:org/repo.git` and `ssh://git@github.com/org/repo.git`
/// both give `https://github.com/org/repo`. Local paths give `None`.
pub fn browse_url(remote: &str) -> Option<String> {
    let remote = strip_credentials(remote);
    let (host, path) = if let Ok(parsed) = url::Url::parse(&remote) {
        match parsed.scheme() {
            "http" | "https" | "ssh" | "git" => {
                let host = parsed.host_str()?.to_string();
                let host = match (parsed.scheme(), parsed.port()) {
                    ("http" | "https", Some(port)) => format!("{host}:{port}"),
                    _ => host,
                };
                (host, parsed.path().to_string())
            }
            _ => return None,
        }
    } else {
        // scp-like: [user@]host:path, where the host has no slash.
        let (authority, path) = remote.split_once(':')?;
        if authority.contains('/') || path.starts_with("//") {
            return None;
        }
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        (
            host.to_string(),
            format!("/{}", path.trim_start_matches('/')),
        )
    };
    if host.is_empty() {
        return None;
    }
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    Some(format!("https://{host}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_git_is_fine_only_outside_a_checkout() {
        let missing = Path::new("/nonexistent/bin/git");
        let outside = tempfile::tempdir().unwrap();
        assert_eq!(
            GitInfo::discover_with(missing, outside.path()).unwrap(),
            None
        );
        let checkout = tempfile::tempdir().unwrap();
        std::fs::create_dir(checkout.path().join(".git")).unwrap();
        let nested = checkout.path().join("src");
        std::fs::create_dir(&nested).unwrap();
        let error = GitInfo::discover_with(missing, &nested).unwrap_err();
        assert!(matches!(error, CiError::GitUnavailable { .. }), "{error}");
        assert!(error.to_string().contains("install git"), "{error}");
    }

    #[test]
    fn credentials_are_stripped() {
        let cases = [
            (
                "https://x-access-token:ghs_secret@github.com/org/repo.git",
                "https://github.com/org/repo.git",
            ),
            (
                "https://ghp_token@github.com/org/repo",
                "https://github.com/org/repo",
            ),
            (
                "http://user:pass@example.com:8080/r.git",
                "http://example.com:8080/r.git",
            ),
            (
                "ssh://git:hunter2@example.com/org/repo.git",
                "ssh://git@example.com/org/repo.git",
            ),
            (
                "ssh://git@example.com/org/repo.git",
                "ssh://git@example.com/org/repo.git",
            ),
            ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
            ("/srv/git/repo.git", "/srv/git/repo.git"),
            ("https://user:pa ss@bad host/repo", "https://bad host/repo"),
        ];
        for (remote, expected) in cases {
            assert_eq!(strip_credentials(remote), expected, "{remote}");
        }
    }

    #[test]
    fn browse_urls() {
        let cases = [
            (
                "git@github.com:org/repo.git",
                Some("https://github.com/org/repo"),
            ),
            (
                "ssh://git@gitlab.com/group/sub/repo.git",
                Some("https://gitlab.com/group/sub/repo"),
            ),
            (
                "https://token@github.com/org/repo.git",
                Some("https://github.com/org/repo"),
            ),
            (
                "https://git.example.com:8443/org/repo/",
                Some("https://git.example.com:8443/org/repo"),
            ),
            ("/srv/git/repo.git", None),
            ("file:///srv/git/repo.git", None),
        ];
        for (remote, expected) in cases {
            assert_eq!(browse_url(remote).as_deref(), expected, "{remote}");
        }
    }
}
