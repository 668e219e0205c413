//! An OCI registry on 127.0.0.1 with the token flow, serving one
//! multi-platform image built on the spot.

use std::sync::Arc;

use crate::http::{respond, TestServer};
use crate::kernels::fake_bzimage;
use crate::packages::build_layer;
use crate::sha256_hex;

/// What the test registry serves, and the digests a test checks.
pub struct Registry {
    pub server: TestServer,
    /// `127.0.0.1:PORT/<repo>:<tag>`.
    pub reference: String,
    /// sha256 of the index the tag points at.
    pub index_digest: String,
}

/// An OCI registry on 127.0.0.1 serving `repo:tag` as a multi-platform index:
/// an arm64 decoy (whose kernel is different) first, then linux/amd64, whose
/// image has `kernel` at `boot/vmlinuz` in a layer compressed with
/// `compression`, after a layer of modules. Everything but the token
/// endpoint answers 401 with a Bearer challenge unless asked with the token.
pub fn oci_registry(repo: &str, tag: &str, kernel: &[u8], compression: &str) -> Registry {
    oci_registry_with_tags(repo, &[tag], kernel, compression)
}

/// [`oci_registry`] with every one of `tags` pointing at the image (the
/// reference names the first), and the repository's tags list (a page of
/// two tags at a time, linked by `Link: <…>; rel="next"`, as registries
/// page long lists).
pub fn oci_registry_with_tags(
    repo: &str,
    tags: &[&str],
    kernel: &[u8],
    compression: &str,
) -> Registry {
    let tag = tags[0];
    let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    let mut blobs: Vec<(String, Vec<u8>, &'static str)> = Vec::new();
    let mut add = |bytes: Vec<u8>, media: &'static str| {
        let digest = sha256_hex(&bytes);
        blobs.push((digest.clone(), bytes, media));
        digest
    };
    let layer_type = match compression {
        ".gz" => "application/vnd.oci.image.layer.v1.tar+gzip",
        ".zst" => "application/vnd.oci.image.layer.v1.tar+zstd",
        _ => "application/vnd.oci.image.layer.v1.tar",
    };
    let descriptor = |media: &str, digest: &str, size: usize| {
        format!(r#"{{"mediaType":"{media}","digest":"sha256:{digest}","size":{size}}}"#)
    };
    let mut image = |kernel: &[u8], arch: &str| {
        let modules = build_layer(
            compression,
            &[(
                "usr/lib/modules/6.1.0/extra/bpf_testmod.ko",
                b"\x7fELF module",
            )],
        );
        let boot = build_layer(
            compression,
            &[("boot/vmlinuz", kernel), ("boot/config", b"CONFIG_BPF=y\n")],
        );
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        );
        let (ml, bl, cl) = (modules.len(), boot.len(), config.len());
        let m = add(modules, layer_type);
        let b = add(boot, layer_type);
        let c = add(
            config.into_bytes(),
            "application/vnd.oci.image.config.v1+json",
        );
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[{},{}]}}"#,
            descriptor("application/vnd.oci.image.config.v1+json", &c, cl),
            descriptor(layer_type, &m, ml),
            descriptor(layer_type, &b, bl)
        );
        let len = manifest.len();
        (
            add(
                manifest.into_bytes(),
                "application/vnd.oci.image.manifest.v1+json",
            ),
            len,
        )
    };
    let (arm, arm_len) = image(&fake_bzimage(b"an arm64 decoy"), "arm64");
    let (amd, amd_len) = image(kernel, "amd64");
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{arm}","size":{arm_len},"platform":{{"architecture":"arm64","os":"linux"}}}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{amd}","size":{amd_len},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
    );
    let index_digest = add(
        index.into_bytes(),
        "application/vnd.oci.image.index.v1+json",
    );
    let (repo_owned, index_for_tag) = (repo.to_owned(), index_digest.clone());
    let server = TestServer::with_handler(Arc::new(move |req, _, stream| {
        if req.target.starts_with("/token?") {
            return respond(stream, 200, &[], br#"{"token":"letmein"}"#);
        }
        if req.header("authorization") != Some("Bearer letmein") {
            let host = req.header("host").unwrap_or_default();
            let challenge = format!(
                r#"Bearer realm="http://{host}/token",service="test-registry",scope="repository:{repo_owned}:pull""#
            );
            return respond(stream, 401, &[("WWW-Authenticate", challenge)], b"{}");
        }
        let prefix = format!("/v2/{repo_owned}/");
        let Some(rest) = req.target.strip_prefix(&prefix) else {
            return respond(stream, 404, &[], b"");
        };
        if let Some(query) = rest.strip_prefix("tags/list") {
            let last = query
                .split("last=")
                .nth(1)
                .map(|l| l.split('&').next().unwrap_or(l));
            let from = last.map_or(0, |l| tags.iter().position(|t| t == l).map_or(0, |p| p + 1));
            let page: Vec<&String> = tags.iter().skip(from).take(2).collect();
            let body = format!(
                r#"{{"name":"{repo_owned}","tags":{}}}"#,
                serde_json::to_string(&page).unwrap()
            );
            let mut headers = Vec::new();
            if from + 2 < tags.len() {
                let next = format!(
                    "</v2/{repo_owned}/tags/list?n=2&last={}>; rel=\"next\"",
                    page[1]
                );
                headers.push(("Link", next));
            }
            return respond(stream, 200, &headers, body.as_bytes());
        }
        let wanted = match rest.split_once('/') {
            Some(("manifests", r)) if tags.iter().any(|t| t == r) => index_for_tag.clone(),
            Some(("manifests" | "blobs", r)) => r.trim_start_matches("sha256:").to_owned(),
            _ => return respond(stream, 404, &[], b""),
        };
        match blobs.iter().find(|(d, _, _)| *d == wanted) {
            Some((_, bytes, media)) => {
                respond(stream, 200, &[("Content-Type", media.to_string())], bytes)
            }
            None => respond(stream, 404, &[], b""),
        }
    }));
    Registry {
        reference: format!("{}/{repo}:{tag}", server.addr()),
        server,
        index_digest,
    }
}
