//! From a LyncDeployment's `spec.connection` to the backend the engine drives, for every front
//! end: `lyncdr sim serve` over HTTP (transport Simulator) or the PowerShell driver over WinRM.
//! A WinRM connection's account and password come from a [`CredentialSource`]: a Kubernetes
//! Secret in the operator (`controller::connect`), or the files of a mounted Secret under
//! `--secrets-dir` in the standalone front end ([`SecretsDir`]). A connection is kept per
//! deployment and made again when what it was made from changes (the URL, the endpoints, or the
//! secret's version: a rotated password is picked up by the next round). Secret values never
//! appear in errors, logs or status.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::api::{Connection, Transport};
use crate::backend::{HttpSim, Lync, LyncError};
use crate::driver::winrm::{WinRmConfig, WinRmLync};
use crate::model::Fqdn;
use crate::winrm::auth::Credentials;

/// The WS-Man endpoint of a server when the connection names none: HTTPS on 5986.
pub const DEFAULT_ENDPOINT_TEMPLATE: &str = "https://{server}:5986/wsman";

/// Longest a script may run (a failback of many users).
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(3 * 3600);

/// Why a LyncDeployment's connection gives no backend; the cause is kept.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("spec.connection.simulatorUrl is required for transport Simulator")]
    NoSimulatorUrl,
    #[error("spec.connection.{field} is required for transport WinRM: {fix}")]
    WinRmField { field: &'static str, fix: &'static str },
    #[error("spec.connection.endpoints[{index}]: {source}")]
    BadEndpoint {
        index: usize,
        #[source]
        source: crate::model::FqdnError,
    },
    #[error("spec.connection.authentication: {0}")]
    Authentication(String),
    /// The credentials Secret cannot be read or lacks a key (never its values).
    #[error("credentials Secret {namespace}/{name}: {detail}")]
    Secret { namespace: String, name: String, detail: String },
    /// The backend refused or could not be reached (its message never carries a secret).
    #[error(transparent)]
    Backend(#[from] LyncError),
}

/// The client's scheme for `spec.connection.authentication`: Negotiate and NTLM are NTLM with
/// message encryption (Negotiate falls back to it against Windows without Kerberos); Basic
/// needs HTTPS. Kerberos and CredSSP are refused by name rather than silently replaced.
pub fn auth_method(name: Option<&str>) -> Result<crate::winrm::auth::AuthMethod, ConnectError> {
    use crate::winrm::auth::AuthMethod;
    match name.map(str::to_ascii_lowercase).as_deref() {
        None | Some("negotiate") | Some("ntlm") => Ok(AuthMethod::Ntlm),
        Some("basic") => Ok(AuthMethod::Basic),
        Some("kerberos") | Some("credssp") => Err(ConnectError::Authentication(format!(
            "{} is not supported by this version; use Negotiate (NTLM with message encryption) and, for the double hop, spec.connection.runAsTask",
            name.unwrap_or_default()
        ))),
        Some(_) => Err(ConnectError::Authentication(format!(
            "{} is not a WinRM authentication; use Negotiate, Ntlm or Basic",
            crate::model::text::shown(name.unwrap_or_default())
        ))),
    }
}

/// Creates the backend for a LyncDeployment's connection (`key` is `namespace/name`).
pub trait Connector: Send + Sync {
    fn connect<'a>(&'a self, key: &'a str, conn: &'a Connection) -> BoxFuture<'a, Result<Arc<dyn Lync>, ConnectError>>;
    fn forget(&self, _key: &str) {}
}

/// Where a WinRM connection's account and password come from.
pub trait CredentialSource: Send + Sync {
    /// The account and password of secret `name` in `namespace` (keys `username` and
    /// `password`), and a version that changes when they do.
    fn credentials<'a>(&'a self, namespace: &'a str, name: &'a str) -> BoxFuture<'a, Result<(Credentials, String), ConnectError>>;
}

/// The account and password from a secret's two values, each named in errors by key only.
pub fn credentials_from(username: Vec<u8>, password: Vec<u8>, fail: impl Fn(String) -> ConnectError) -> Result<Credentials, ConnectError> {
    let text = |k: &str, b: Vec<u8>| String::from_utf8(b).map_err(|_| fail(format!("the value of {k:?} is not UTF-8 text")));
    let (username, password) = (text("username", username)?, text("password", password)?);
    Credentials::new(&username, password)
        .map_err(|_| fail("the value of \"username\" is not an account name (DOMAIN\\user, user@REALM or user)".into()))
}

/// A connection per deployment, with what it was made from.
type ConnectionCache = std::sync::Mutex<HashMap<String, (String, Arc<dyn Lync>)>>;

/// The connector of both front ends: Simulator over HTTP, WinRM with credentials from `source`.
pub struct DefaultConnector {
    source: Option<Arc<dyn CredentialSource>>,
    cache: ConnectionCache,
}

impl Default for DefaultConnector {
    /// A connector without credentials: WinRM connections fail naming their secret.
    fn default() -> Self {
        DefaultConnector { source: None, cache: ConnectionCache::default() }
    }
}

impl DefaultConnector {
    pub fn new(source: Arc<dyn CredentialSource>) -> DefaultConnector {
        DefaultConnector { source: Some(source), cache: ConnectionCache::default() }
    }

    fn cached(&self, key: &str, made_from: &str) -> Option<Arc<dyn Lync>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(key).filter(|(from, _)| from == made_from).map(|(_, l)| l.clone())
    }

    fn keep(&self, key: &str, made_from: String, lync: Arc<dyn Lync>) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_string(), (made_from, lync));
    }

    async fn credentials(&self, namespace: &str, name: &str) -> Result<(Credentials, String), ConnectError> {
        match &self.source {
            Some(s) => s.credentials(namespace, name).await,
            None => Err(ConnectError::Secret {
                namespace: namespace.to_string(),
                name: name.to_string(),
                detail: "this connector has no source of credentials".into(),
            }),
        }
    }
}

impl Connector for DefaultConnector {
    fn connect<'a>(&'a self, key: &'a str, conn: &'a Connection) -> BoxFuture<'a, Result<Arc<dyn Lync>, ConnectError>> {
        Box::pin(async move {
            match conn.transport {
                Transport::Simulator => {
                    let url = conn.simulator_url.clone().ok_or(ConnectError::NoSimulatorUrl)?;
                    if let Some(l) = self.cached(key, &url) {
                        return Ok(l);
                    }
                    let l: Arc<dyn Lync> = Arc::new(HttpSim::connect(&url).await?);
                    self.keep(key, url, l.clone());
                    Ok(l)
                }
                Transport::WinRM => {
                    let servers = conn.endpoints.clone().unwrap_or_default();
                    if servers.is_empty() {
                        return Err(ConnectError::WinRmField {
                            field: "endpoints",
                            fix: "list the Front End servers (FQDNs) lyncdr may run site-independent cmdlets on, at least one per site",
                        });
                    }
                    let management_servers = servers
                        .iter()
                        .enumerate()
                        .map(|(index, s)| Fqdn::parse(s).map_err(|source| ConnectError::BadEndpoint { index, source }))
                        .collect::<Result<Vec<_>, _>>()?;
                    let secret = conn.credentials_secret.clone().ok_or(ConnectError::WinRmField {
                        field: "credentialsSecret",
                        fix: "name a Secret of this namespace with keys username and password (a member of RTCUniversalServerAdmins)",
                    })?;
                    let namespace = key.split_once('/').map(|(ns, _)| ns).unwrap_or_default();
                    let (credentials, version) = self.credentials(namespace, &secret).await?;
                    let endpoint = conn.endpoint_template.clone().unwrap_or_else(|| DEFAULT_ENDPOINT_TEMPLATE.to_string());
                    let auth = auth_method(conn.authentication.as_deref())?;
                    let run_as = conn.run_as_task.as_ref().map(|t| t.task());
                    let made_from = format!("winrm|{endpoint}|{}|{secret}@{version}|{auth:?}|{run_as:?}", servers.join(","));
                    if let Some(l) = self.cached(key, &made_from) {
                        return Ok(l);
                    }
                    let cfg = WinRmConfig { endpoint, credentials, management_servers, script_timeout: SCRIPT_TIMEOUT, auth, run_as };
                    let l: Arc<dyn Lync> = Arc::new(WinRmLync::connect(cfg).await?);
                    self.keep(key, made_from, l.clone());
                    Ok(l)
                }
            }
        })
    }

    fn forget(&self, key: &str) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// The standalone front end's credentials: the files of a Secret as Kubernetes mounts it (one
/// file per key), under `<root>/<namespace>/<name>/` or `<root>/<name>/`: `username` and
/// `password`. One trailing newline of each file is not part of the value (`echo` adds one).
pub struct SecretsDir {
    pub root: PathBuf,
}

impl SecretsDir {
    /// The directory holding secret `name` of `namespace`, if either layout has it.
    fn dir(&self, namespace: &str, name: &str) -> Option<PathBuf> {
        [self.root.join(namespace).join(name), self.root.join(name)].into_iter().find(|d| d.join("password").is_file())
    }
}

/// A file's bytes without one trailing newline (`\n` or `\r\n`).
fn read_value(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut b = std::fs::read(path)?;
    if b.last() == Some(&b'\n') {
        b.pop();
        if b.last() == Some(&b'\r') {
            b.pop();
        }
    }
    Ok(b)
}

impl CredentialSource for SecretsDir {
    fn credentials<'a>(&'a self, namespace: &'a str, name: &'a str) -> BoxFuture<'a, Result<(Credentials, String), ConnectError>> {
        Box::pin(async move {
            let fail = |detail: String| ConnectError::Secret { namespace: namespace.to_string(), name: name.to_string(), detail };
            let Some(dir) = self.dir(namespace, name) else {
                return Err(fail(format!(
                    "no file {} or {} (--secrets-dir): write the account to username and the password to password there, readable only by lyncdr",
                    self.root.join(namespace).join(name).join("password").display(),
                    self.root.join(name).join("password").display()
                )));
            };
            // A value and its version: when the file changed and its size, never its content.
            let read = |key: &str| -> Result<(Vec<u8>, String), ConnectError> {
                let path = dir.join(key);
                let unreadable = |e: std::io::Error| fail(format!("cannot read {}: {}", path.display(), e.kind()));
                let value = read_value(&path).map_err(unreadable)?;
                let meta = std::fs::metadata(&path).map_err(unreadable)?;
                let modified = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).unwrap_or_default();
                Ok((value, format!("{key}:{}.{}:{};", modified.as_secs(), modified.subsec_nanos(), meta.len())))
            };
            let (username, user_version) = read("username")?;
            let (password, password_version) = read("password")?;
            let version = user_version + &password_version;
            Ok((credentials_from(username, password, fail)?, version))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::winrm::auth::AuthMethod;

    #[test]
    fn authentication_names_map_to_a_scheme_or_a_message_naming_the_field() {
        for (name, want) in [
            (None, AuthMethod::Ntlm),
            (Some("Negotiate"), AuthMethod::Ntlm),
            (Some("NTLM"), AuthMethod::Ntlm),
            (Some("Basic"), AuthMethod::Basic),
        ] {
            assert_eq!(auth_method(name).ok(), Some(want), "{name:?}");
        }
        for name in ["Kerberos", "CredSSP", "Digest\u{1b}[31m"] {
            let e = auth_method(Some(name)).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.starts_with("spec.connection.authentication: "), "{e}");
            assert!(!e.contains('\u{1b}'), "escaped: {e}");
        }
    }

    fn read(source: &SecretsDir, namespace: &str, name: &str) -> Result<(Credentials, String), ConnectError> {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(source.credentials(namespace, name))
    }

    #[test]
    fn a_secrets_directory_reads_both_layouts_without_a_trailing_newline_and_versions_by_metadata() {
        let root = tempfile::tempdir().expect("tempdir");
        let source = SecretsDir { root: root.path().to_path_buf() };
        let plain = root.path().join("lync-winrm");
        std::fs::create_dir_all(&plain).expect("mkdir");
        std::fs::write(plain.join("username"), "LAB\\lyncdr\n").expect("write");
        std::fs::write(plain.join("password"), "Pa55 word\r\n").expect("write");
        let (c, v1) = read(&source, "lync", "lync-winrm").expect("the plain layout");
        assert_eq!(c.account.to_string(), "LAB\\lyncdr");
        assert_eq!(c.password.expose(), "Pa55 word", "one trailing newline is not part of the value");
        assert!(!v1.contains("Pa55"), "the version never carries the value: {v1}");

        // A rotated password (longer) is a new version.
        std::fs::write(plain.join("password"), "Rotated-Pa55word").expect("write");
        let (c, v2) = read(&source, "lync", "lync-winrm").expect("rotated");
        assert_eq!(c.password.expose(), "Rotated-Pa55word");
        assert_ne!(v1, v2);

        // The namespaced layout comes first.
        let namespaced = root.path().join("lync").join("lync-winrm");
        std::fs::create_dir_all(&namespaced).expect("mkdir");
        std::fs::write(namespaced.join("username"), "lyncdr@LAB.EXAMPLE").expect("write");
        std::fs::write(namespaced.join("password"), "Other").expect("write");
        let (c, _) = read(&source, "lync", "lync-winrm").expect("the namespaced layout");
        assert_eq!(c.password.expose(), "Other");
    }

    #[test]
    fn a_secrets_directory_names_the_files_it_lacks_and_never_a_value() {
        let root = tempfile::tempdir().expect("tempdir");
        let source = SecretsDir { root: root.path().to_path_buf() };
        let e = read(&source, "lync", "absent").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.starts_with("credentials Secret lync/absent: no file "), "{e}");
        assert!(e.contains("absent/password") && e.contains("--secrets-dir"), "{e}");

        let dir = root.path().join("broken");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("password"), "Secret-Value-1").expect("write");
        let e = read(&source, "lync", "broken").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("username") && e.contains("cannot read"), "{e}");
        std::fs::write(dir.join("username"), b"\xff\xfe").expect("write");
        let e = read(&source, "lync", "broken").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("\"username\" is not UTF-8"), "{e}");
        std::fs::write(dir.join("username"), "DOM\\").expect("write");
        let e = read(&source, "lync", "broken").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("not an account name"), "{e}");
        assert!(!e.contains("Secret-Value-1"));
    }
}
