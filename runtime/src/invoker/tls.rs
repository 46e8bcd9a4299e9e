//! TLS material of the HTTP transport: the rustls client configuration of one endpoint.
//!
//! [`client_config`] turns an endpoint's TLS options (StateFun's names: `trust_cacerts`,
//! `client_cert`, `client_key`, `client_key_password`) into a [`rustls::ClientConfig`]:
//! - server roots: the CA certificates of the `trust_cacerts` PEM file when given, else the
//!   system roots (loaded through hyper-rustls, which uses rustls-native-certs);
//! - client authentication (mutual TLS) when `client_cert` and `client_key` are given (PEM;
//!   PKCS#8, PKCS#1 or SEC1 keys). Encrypted keys are refused with the command that decrypts them.
//!
//! The crypto provider is always rustls' `ring` provider, installed explicitly in the config
//! (no reliance on a process-wide default). Every error is a [`crate::Error::Tls`] naming the
//! field and the path.

use crate::spec::TlsSpec;
use crate::{Error, Result};
use hyper_rustls::ConfigBuilderExt as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, ConfigBuilder, RootCertStore, WantsVerifier};
use std::path::Path;
use std::sync::Arc;

/// Builds the client configuration of an endpoint.
///
/// `https` says whether the endpoint's URL uses `https://`: when it does not and no
/// `trust_cacerts` is given, a machine without system roots is not an error (the roots are
/// then empty, and only plain `http://` works). TLS files that are set are always loaded and
/// checked, so a broken setting is reported at start-up either way.
pub fn client_config(spec: &TlsSpec, https: bool) -> Result<ClientConfig> {
    if spec.client_key_password.is_some() {
        let key = spec
            .client_key
            .as_deref()
            .map(|path| path.display().to_string())
            .unwrap_or_else(|| "KEY.pem".to_string());
        return Err(encrypted_key_error(&key, "client_key_password is set"));
    }
    let client_auth = match (&spec.client_cert, &spec.client_key) {
        (Some(cert), Some(key)) => Some((load_cert_chain(cert)?, load_private_key(key)?)),
        (None, None) => None,
        (Some(cert), None) => {
            return Err(Error::Tls(format!(
                "client_cert {} is set but client_key is not: mutual TLS needs both",
                cert.display()
            )))
        }
        (None, Some(key)) => {
            return Err(Error::Tls(format!(
                "client_key {} is set but client_cert is not: mutual TLS needs both",
                key.display()
            )))
        }
    };

    let with_roots = match &spec.trust_cacerts {
        Some(path) => builder()?.with_root_certificates(load_roots(path)?),
        None => match builder()?.with_native_roots() {
            Ok(with_roots) => with_roots,
            Err(error) if https => {
                return Err(Error::Tls(format!(
                    "cannot load the system root certificates ({error}); set trust_cacerts to a \
                     PEM file of the CA certificates to trust"
                )))
            }
            Err(error) => {
                tracing::debug!(%error, "no system root certificates; plain http only");
                builder()?.with_root_certificates(RootCertStore::empty())
            }
        },
    };

    match client_auth {
        None => Ok(with_roots.with_no_client_auth()),
        Some((certs, key)) => with_roots
            .with_client_auth_cert(certs, key)
            .map_err(|error| {
                Error::Tls(format!(
                    "client_cert {} / client_key {}: unusable certificate or key: {error}",
                    path_of(&spec.client_cert),
                    path_of(&spec.client_key)
                ))
            }),
    }
}

/// A config builder with the ring provider and rustls' safe protocol versions.
fn builder() -> Result<ConfigBuilder<ClientConfig, WantsVerifier>> {
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::Tls(format!("cannot set up the ring crypto provider: {error}")))
}

fn path_of(path: &Option<std::path::PathBuf>) -> String {
    path.as_deref()
        .map(|path| path.display().to_string())
        .unwrap_or_default()
}

fn encrypted_key_error(key: &str, why: &str) -> Error {
    Error::Tls(format!(
        "client_key {key}: encrypted client keys are not supported ({why}): decrypt the key with \
         `openssl pkcs8 -in {key} -out {key}.decrypted.pem` (it asks for the password), point \
         client_key at the decrypted file and remove client_key_password"
    ))
}

/// Reads a PEM file of `field`; missing, unreadable and empty files are errors.
fn read_pem(field: &str, path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|error| {
        Error::Tls(format!(
            "{field} {}: cannot read the file: {error}",
            path.display()
        ))
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::Tls(format!(
            "{field} {}: the file is empty",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Every certificate of a PEM file of `field`; at least one.
fn load_certs(field: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read_pem(field, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| {
            Error::Tls(format!(
                "{field} {}: invalid PEM certificate: {error}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "{field} {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
            path.display()
        )));
    }
    Ok(certs)
}

/// The trusted CA certificates of `trust_cacerts`.
fn load_roots(path: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for (index, cert) in load_certs("trust_cacerts", path)?.into_iter().enumerate() {
        roots.add(cert).map_err(|error| {
            Error::Tls(format!(
                "trust_cacerts {}: certificate {}: not a usable CA certificate: {error}",
                path.display(),
                index + 1
            ))
        })?;
    }
    Ok(roots)
}

/// The certificate chain of `client_cert`.
fn load_cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    load_certs("client_cert", path)
}

/// The private key of `client_key` (PKCS#8, PKCS#1 or SEC1; not encrypted).
fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = read_pem("client_key", path)?;
    if contains(&pem, b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || contains(&pem, b"Proc-Type: 4,ENCRYPTED")
    {
        return Err(encrypted_key_error(
            &path.display().to_string(),
            "the PEM key is encrypted",
        ));
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|error| {
        let detail = match error {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY) in the file"
                    .to_string()
            }
            other => format!("invalid PEM private key: {other}"),
        };
        Error::Tls(format!("client_key {}: {detail}", path.display()))
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/invoker/testdata")
            .join(name)
    }

    fn tls_error(result: Result<ClientConfig>) -> String {
        match result {
            Err(Error::Tls(message)) => message,
            Err(other) => panic!("expected a tls error, got {other}"),
            Ok(_) => panic!("expected a tls error, got a config"),
        }
    }

    fn scratch_file(name: &str, contents: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("eddy-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("write scratch file");
        path
    }

    #[test]
    fn trust_cacerts_and_client_auth_load() {
        let spec = TlsSpec {
            trust_cacerts: Some(fixture("ca.pem")),
            client_cert: Some(fixture("client.pem")),
            client_key: Some(fixture("client-key.pem")),
            client_key_password: None,
        };
        let config = client_config(&spec, true).expect("config");
        assert!(config.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn no_tls_settings_give_a_config() {
        let config = client_config(&TlsSpec::default(), false).expect("config");
        assert!(!config.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn missing_file_names_field_and_path() {
        let spec = TlsSpec {
            trust_cacerts: Some(fixture("does-not-exist.pem")),
            ..TlsSpec::default()
        };
        let message = tls_error(client_config(&spec, true));
        assert!(message.contains("trust_cacerts"), "{message}");
        assert!(message.contains("does-not-exist.pem"), "{message}");
        assert!(message.contains("cannot read"), "{message}");
    }

    #[test]
    fn empty_file_is_an_error() {
        let empty = scratch_file("empty.pem", b"\n");
        let spec = TlsSpec {
            trust_cacerts: Some(fixture("ca.pem")),
            client_cert: Some(empty.clone()),
            client_key: Some(fixture("client-key.pem")),
            client_key_password: None,
        };
        let message = tls_error(client_config(&spec, true));
        assert!(message.contains("client_cert"), "{message}");
        assert!(message.contains("empty"), "{message}");
        assert!(message.contains(&empty.display().to_string()), "{message}");
    }

    #[test]
    fn file_without_certificates_is_an_error() {
        let spec = TlsSpec {
            // A key file holds no certificate.
            trust_cacerts: Some(fixture("client-key.pem")),
            ..TlsSpec::default()
        };
        let message = tls_error(client_config(&spec, true));
        assert!(message.contains("trust_cacerts"), "{message}");
        assert!(message.contains("no PEM certificate"), "{message}");
    }

    #[test]
    fn file_without_key_is_an_error() {
        let spec = TlsSpec {
            trust_cacerts: Some(fixture("ca.pem")),
            client_cert: Some(fixture("client.pem")),
            client_key: Some(fixture("client.pem")),
            client_key_password: None,
        };
        let message = tls_error(client_config(&spec, true));
        assert!(message.starts_with("client_key"), "{message}");
        assert!(message.contains("no PEM private key"), "{message}");
    }

    #[test]
    fn key_password_is_refused() {
        let spec = TlsSpec {
            trust_cacerts: Some(fixture("ca.pem")),
            client_cert: Some(fixture("client.pem")),
            client_key: Some(fixture("client-key-encrypted.pem")),
            client_key_password: Some("secret".into()),
        };
        let message = tls_error(client_config(&spec, true));
        assert!(
            message.contains("encrypted client keys are not supported"),
            "{message}"
        );
        assert!(message.contains("openssl pkcs8"), "{message}");
        assert!(message.contains("client-key-encrypted.pem"), "{message}");
    }

    #[test]
    fn encrypted_key_without_password_is_refused() {
        let spec = TlsSpec {
            trust_cacerts: Some(fixture("ca.pem")),
            client_cert: Some(fixture("client.pem")),
            client_key: Some(fixture("client-key-encrypted.pem")),
            client_key_password: None,
        };
        let message = tls_error(client_config(&spec, true));
        assert!(
            message.contains("encrypted client keys are not supported"),
            "{message}"
        );
    }

    #[test]
    fn cert_without_key_is_an_error() {
        let spec = TlsSpec {
            client_cert: Some(fixture("client.pem")),
            ..TlsSpec::default()
        };
        let message = tls_error(client_config(&spec, true));
        assert!(message.contains("client_key is not"), "{message}");
    }

    #[test]
    fn mismatched_cert_and_key_are_an_error() {
        let spec = TlsSpec {
            trust_cacerts: Some(fixture("ca.pem")),
            client_cert: Some(fixture("client.pem")),
            client_key: Some(fixture("server-key.pem")),
            client_key_password: None,
        };
        let message = tls_error(client_config(&spec, true));
        assert!(message.contains("unusable certificate or key"), "{message}");
    }
}
