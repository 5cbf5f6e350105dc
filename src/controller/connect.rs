//! From a LyncDeployment's `spec.connection` to the backend the engine drives: `lyncdr sim
//! serve` over HTTP (transport Simulator) or the PowerShell driver over WinRM, with the
//! credentials of the Secret the connection names. A connection is kept per deployment and
//! made again when what it was made from changes (the URL, the endpoints, or the Secret's
//! resourceVersion: a rotated password is picked up by the next reconcile). The Secret's values
//! never appear in errors, logs or status.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

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

/// A connection per deployment, with what it was made from.
type ConnectionCache = std::sync::Mutex<HashMap<String, (String, Arc<dyn Lync>)>>;

/// The operator's connector: Simulator over HTTP, WinRM with a Secret read through `client`.
#[derive(Default)]
pub struct DefaultConnector {
    client: Option<Client>,
    cache: ConnectionCache,
}

impl DefaultConnector {
    pub fn new(client: Client) -> DefaultConnector {
        DefaultConnector { client: Some(client), cache: ConnectionCache::default() }
    }

    fn cached(&self, key: &str, made_from: &str) -> Option<Arc<dyn Lync>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(key).filter(|(from, _)| from == made_from).map(|(_, l)| l.clone())
    }

    fn keep(&self, key: &str, made_from: String, lync: Arc<dyn Lync>) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_string(), (made_from, lync));
    }

    /// The account and password of the Secret (keys `username` and `password`), and its
    /// resourceVersion.
    async fn credentials(&self, namespace: &str, name: &str) -> Result<(Credentials, String), ConnectError> {
        let fail = |detail: String| ConnectError::Secret { namespace: namespace.to_string(), name: name.to_string(), detail };
        let client = self.client.clone().ok_or_else(|| fail("this connector has no Kubernetes client".into()))?;
        let secret = Api::<Secret>::namespaced(client, namespace).get(name).await.map_err(|e| fail(e.to_string()))?;
        let value = |k: &str| -> Result<String, ConnectError> {
            let bytes = secret.data.as_ref().and_then(|d| d.get(k)).map(|b| b.0.clone());
            let bytes = bytes.or_else(|| secret.string_data.as_ref().and_then(|d| d.get(k)).map(|s| s.clone().into_bytes()));
            let bytes = bytes.ok_or_else(|| fail(format!("has no key {k:?}; it needs username and password")))?;
            String::from_utf8(bytes).map_err(|_| fail(format!("the value of {k:?} is not UTF-8 text")))
        };
        let credentials = Credentials::new(&value("username")?, value("password")?)
            .map_err(|_| fail("the value of \"username\" is not an account name (DOMAIN\\user, user@REALM or user)".into()))?;
        Ok((credentials, secret.metadata.resource_version.unwrap_or_default()))
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
}
