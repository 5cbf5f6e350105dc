//! The operator's source of WinRM credentials: the Kubernetes Secret a LyncDeployment's
//! `spec.connection.credentialsSecret` names, in its namespace (keys `username` and
//! `password`), versioned by its resourceVersion so a rotated password is picked up by the next
//! reconcile. Building the backend from the connection is shared with the standalone front end
//! ([`crate::connection`]). The Secret's values never appear in errors, logs or status.

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

pub use crate::connection::{ConnectError, Connector, DefaultConnector};
use crate::connection::{CredentialSource, credentials_from};
use crate::winrm::auth::Credentials;

/// Secrets read through the Kubernetes API.
pub struct KubeSecrets {
    client: Client,
}

impl KubeSecrets {
    /// The operator's connector: WinRM credentials from Secrets read through `client`.
    pub fn connector(client: Client) -> DefaultConnector {
        DefaultConnector::new(Arc::new(KubeSecrets { client }))
    }
}

impl CredentialSource for KubeSecrets {
    fn credentials<'a>(&'a self, namespace: &'a str, name: &'a str) -> BoxFuture<'a, Result<(Credentials, String), ConnectError>> {
        Box::pin(async move {
            let fail = |detail: String| ConnectError::Secret { namespace: namespace.to_string(), name: name.to_string(), detail };
            let secret = Api::<Secret>::namespaced(self.client.clone(), namespace).get(name).await.map_err(|e| fail(e.to_string()))?;
            let value = |k: &str| -> Result<Vec<u8>, ConnectError> {
                let bytes = secret.data.as_ref().and_then(|d| d.get(k)).map(|b| b.0.clone());
                let bytes = bytes.or_else(|| secret.string_data.as_ref().and_then(|d| d.get(k)).map(|s| s.clone().into_bytes()));
                bytes.ok_or_else(|| fail(format!("has no key {k:?}; it needs username and password")))
            };
            let credentials = credentials_from(value("username")?, value("password")?, fail)?;
            Ok((credentials, secret.metadata.resource_version.unwrap_or_default()))
        })
    }
}
