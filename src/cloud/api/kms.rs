//! KMS Secrets Manager (2016-01-20): where a rotated key is handed to its workload.

use secrecy::{ExposeSecret, SecretString};

use crate::cloud::parse::{items, text};
use crate::cloud::product::Product;
use crate::cloud::{Called, CloudClient, CloudError, Request};

/// A stored secret version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretVersion {
    pub secret_name: String,
    pub version_id: String,
    pub stages: Vec<String>,
}

impl CloudClient {
    /// Creates a generic text secret holding `data` as its first version.
    pub async fn create_secret(
        &self,
        name: &str,
        version_id: &str,
        data: &SecretString,
        description: &str,
    ) -> Result<Called<SecretVersion>, CloudError> {
        let request = Request::new(Product::Kms, "CreateSecret")
            .param("SecretName", name)
            .param("VersionId", version_id)
            .param("SecretData", data.expose_secret())
            .param("SecretDataType", "text")
            .param("Description", description);
        let called = self.call(request).await?;
        let version = SecretVersion {
            secret_name: text(&called.value, &["SecretName"]).unwrap_or_else(|| name.to_owned()),
            version_id: text(&called.value, &["VersionId"])
                .unwrap_or_else(|| version_id.to_owned()),
            stages: vec!["ACSCurrent".to_owned()],
        };
        Ok(called.map(|_| version))
    }

    /// Stores `data` as version `version_id`, which becomes current. The version id makes a
    /// repeated call store nothing twice.
    pub async fn put_secret_value(
        &self,
        name: &str,
        version_id: &str,
        data: &SecretString,
    ) -> Result<Called<SecretVersion>, CloudError> {
        let request = Request::new(Product::Kms, "PutSecretValue")
            .param("SecretName", name)
            .param("VersionId", version_id)
            .param("SecretData", data.expose_secret())
            .param("SecretDataType", "text");
        let called = self.call(request).await?;
        let version = SecretVersion {
            secret_name: text(&called.value, &["SecretName"]).unwrap_or_else(|| name.to_owned()),
            version_id: text(&called.value, &["VersionId"])
                .unwrap_or_else(|| version_id.to_owned()),
            stages: items(&called.value, "VersionStages", "VersionStage")
                .into_iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
        };
        Ok(called.map(|_| version))
    }

    /// The AccessKeyId stored in version `version_id` of secret `name`, to learn whether a
    /// key was delivered; `None` when the secret has no such version. The secret's data is
    /// dropped unread beyond that id.
    pub async fn secret_access_key_id(
        &self,
        name: &str,
        version_id: &str,
    ) -> Result<Called<Option<String>>, CloudError> {
        let request = Request::new(Product::Kms, "GetSecretValue")
            .param("SecretName", name)
            .param("VersionId", version_id);
        let called = self.optional(request, "Forbidden.ResourceNotFound").await?;
        Ok(called.map(|value| {
            let data = text(value.as_ref()?, &["SecretData"])?;
            let stored: serde_json::Value = serde_json::from_str(&data).ok()?;
            stored["AccessKeyId"].as_str().map(str::to_owned)
        }))
    }
}
