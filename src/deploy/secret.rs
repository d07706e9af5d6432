//! The Secret with the token of the cluster's `nslat serve` DaemonSets and pair Jobs: 32 bytes
//! from /dev/urandom as 64 hex digits, made when it is rendered (never committed, never the same
//! twice). The DaemonSets and the Job mount it as a file (`--token-file`).

use std::collections::BTreeMap;
use std::io::Read;

use super::job::{TOKEN_KEY, TOKEN_SECRET};
use super::kube::{ObjectMeta, Secret};
use super::DeployError;

/// A fresh token: 32 random bytes as 64 lowercase hex digits.
pub fn fresh_token() -> Result<String, DeployError> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(DeployError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The Secret object holding `token` in `namespace`.
pub fn manifest(namespace: &str, token: &str) -> Secret {
    let labels = [("app.kubernetes.io/name", "nslat")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Secret {
        api_version: "v1".into(),
        kind: "Secret".into(),
        metadata: ObjectMeta {
            name: Some(TOKEN_SECRET.into()),
            namespace: Some(namespace.into()),
            labels,
            annotations: BTreeMap::new(),
        },
        kind_of_secret: "Opaque".into(),
        string_data: [(TOKEN_KEY.to_string(), token.to_string())].into(),
    }
}

/// The Secret as YAML, with a fresh token.
pub fn render(namespace: &str) -> Result<String, DeployError> {
    let secret = manifest(namespace, &fresh_token()?);
    let yaml = super::yaml::to_yaml(&secret).map_err(DeployError::Encode)?;
    Ok(format!(
        "# nslat's server token (rendered by `nslat deploy secret`; fresh each time: applying it again\n\
         # changes the token, then `kubectl -n {namespace} rollout restart daemonset`)\n{yaml}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_hex() {
        let (a, b) = (fresh_token().unwrap(), fresh_token().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        let y = render("nslat").unwrap();
        assert!(
            y.contains("kind: Secret") && y.contains("name: nslat-token"),
            "{y}"
        );
    }
}
