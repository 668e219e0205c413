//! Kernels from OCI images (e.g. `ghcr.io/cilium/ci-kernels:6.1`), through the
//! OCI distribution API.
//!
//! A reference resolves to a manifest or an index (OCI or Docker v2 media
//! types); from an index the `linux/amd64` manifest is taken. Its layers
//! (tar, gzip or zstd, recognised by content) are downloaded into the cache as
//! blobs verified by their digests and read in order; the kernel image is
//! taken from `boot/vmlinuz` or the other usual places. Registries are spoken
//! to anonymously: a 401 with a `Bearer` challenge is answered with a token
//! from the challenge's realm. Registries on `localhost`/`127.0.0.1` are
//! spoken to over plain HTTP, all others over HTTPS.
//!
//! The image's digest (of what the reference points at) is the source digest:
//! its extraction is recorded under it, and `parts/<digest>` lists the blobs
//! the image consists of, so `prune` keeps them.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use serde::Deserialize;

use super::cache::{self, KernelCache};
use super::compress::Compression;
use super::error::KernelError;
use super::extract::{self, Got, Want};
use super::fetch::{self, ProgressFn};
use super::hash::{is_digest, sha256_hex};
use super::options::Options;
use super::pick::Layout;
use super::sniff;
use super::source::SourceFormat;
use super::tarball;

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
/// Manifests are a few KB; this bounds what a misbehaving registry can send.
const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// `registry/repository[:tag][@sha256:hex]`, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Host and port, as spoken to (Docker Hub's `docker.io` becomes its API host).
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    /// Lowercase hex of the sha256 digest.
    pub digest: Option<String>,
}

impl Reference {
    pub fn parse(text: &str) -> Result<Reference, String> {
        let bad = |why: &str| {
            format!("{text:?} is not an image reference like ghcr.io/cilium/ci-kernels:6.1 ({why})")
        };
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                let hex = digest
                    .strip_prefix("sha256:")
                    .ok_or_else(|| bad("only sha256 digests are supported"))?;
                if !is_digest(hex) {
                    return Err(bad("the digest is not 64 lowercase hex digits"));
                }
                (rest, Some(hex.to_owned()))
            }
            None => (text, None),
        };
        let (name, tag) = match rest.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, Some(tag.to_owned())),
            _ => (rest, None),
        };
        let (first, path) = name.split_once('/').unwrap_or(("", name));
        let (registry, repository) = if first.contains(['.', ':']) || first == "localhost" {
            (first.to_owned(), path.to_owned())
        } else if name.contains('/') {
            ("registry-1.docker.io".to_owned(), name.to_owned())
        } else {
            ("registry-1.docker.io".to_owned(), format!("library/{name}"))
        };
        let registry = if registry == "docker.io" {
            "registry-1.docker.io".to_owned()
        } else {
            registry
        };
        let ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
        };
        if !ok(&repository) || repository.contains("//") {
            return Err(bad(
                "the repository must be lowercase letters, digits, . _ - and /",
            ));
        }
        if let Some(tag) = &tag {
            if tag.is_empty()
                || tag.len() > 128
                || !tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                return Err(bad("a tag is up to 128 letters, digits, . _ -"));
            }
        }
        if tag.is_none() && digest.is_none() {
            return Err(bad("give a tag (:6.1) or a digest (@sha256:...)"));
        }
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `http://` for a registry on this machine, `https://` for every other.
    fn base_url(&self) -> String {
        let host = match self.registry.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => &self.registry,
        };
        let scheme = if matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}/v2/{}", self.registry, self.repository)
    }
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    architecture: String,
    os: String,
}

/// Resolve an image to what `want` asks for. `pin` is the digest the
/// reference or the lock file gives.
pub(crate) fn resolve(
    cache: &KernelCache,
    opts: &Options,
    origin: &str,
    reference: &str,
    pin: Option<&str>,
    want: Want<'_>,
) -> Result<Got, KernelError> {
    let reference = Reference::parse(reference).map_err(|detail| KernelError::Oci {
        origin: origin.to_owned(),
        detail,
    })?;
    cache.prepare()?;
    let mut image = Image {
        cache,
        opts,
        origin,
        reference,
        want,
        client: None,
    };
    if let Some(digest) = pin {
        return image.resolve_pinned(digest);
    }
    // Held while the tag is being resolved: a concurrent run waits, then
    // finds what this one remembered.
    let key = cache::name_key(origin);
    let _lock = cache.lock(&key)?;
    if !opts.fresh {
        if let Some(digest) = cache.read_name(&key) {
            let offline = Options {
                offline: true,
                ..opts.clone()
            };
            let mut cached = Image {
                opts: &offline,
                ..image.clone_parts()
            };
            match cached.resolve_pinned(&digest) {
                Err(KernelError::NotCached { .. }) => {}
                done => return done,
            }
        }
    }
    let tag = image
        .reference
        .tag
        .clone()
        .expect("an unpinned reference has a tag");
    let manifest = image.client()?.manifest(&tag)?;
    let digest = sha256_hex(&manifest);
    image.store_manifest(&digest, &manifest)?;
    let kernel = image.resolve_pinned(&digest)?;
    cache.write_name(&key, &digest)?;
    Ok(kernel)
}

/// The digest the reference's tag (or digest) points at now, from one
/// manifest request and no blob: for `bpfcompat kernels verify --remote`.
pub(crate) fn remote_digest(
    origin: &str,
    reference: &str,
    limits: &fetch::Limits,
) -> Result<String, KernelError> {
    let parsed = Reference::parse(reference).map_err(|detail| KernelError::Oci {
        origin: origin.to_owned(),
        detail,
    })?;
    let wanted = match (&parsed.tag, &parsed.digest) {
        (_, Some(digest)) => format!("sha256:{digest}"),
        (Some(tag), None) => tag.clone(),
        (None, None) => unreachable!("a parsed reference has a tag or a digest"),
    };
    let manifest = Client::new(origin, &parsed, limits.clone()).manifest(&wanted)?;
    let digest = sha256_hex(&manifest);
    match parsed.digest {
        Some(expected) if expected != digest => Err(KernelError::Sha256Mismatch {
            origin: origin.to_owned(),
            expected,
            actual: digest,
        }),
        _ => Ok(digest),
    }
}

/// Every tag of `repository` (a reference without tag: `host/path`), from
/// the registry's tags list, page by page (`Link: <…>; rel="next"`).
pub(crate) fn tags(
    origin: &str,
    repository: &str,
    limits: &fetch::Limits,
) -> Result<Vec<String>, KernelError> {
    let oci_err = |detail: String| KernelError::Oci {
        origin: origin.to_owned(),
        detail,
    };
    if Reference::parse(repository).is_ok() {
        return Err(oci_err(format!(
            "{repository} names a tag or digest; a sweep takes the repository alone (its tags \
             are the releases)"
        )));
    }
    // Any tag: only the registry and repository are used.
    let parsed = Reference::parse(&format!("{repository}:latest")).map_err(oci_err)?;
    let mut client = Client::new(origin, &parsed, limits.clone());
    let mut url = format!("{}/tags/list?n=1000", client.base);
    let mut tags = Vec::new();
    // A registry pages a long list; a hundred pages is not a kernel repository.
    for _ in 0..100 {
        let (page, next) = client.tags_page(&url)?;
        tags.extend(page);
        match next {
            Some(next) => url = next,
            None => return Ok(tags),
        }
    }
    Err(client.err(format!("{repository} has more than 100 pages of tags")))
}

struct Image<'a> {
    cache: &'a KernelCache,
    opts: &'a Options,
    origin: &'a str,
    reference: Reference,
    want: Want<'a>,
    /// Made on first use: a fully cached image makes no request at all.
    client: Option<Client>,
}

impl<'a> Image<'a> {
    fn clone_parts(&self) -> Image<'a> {
        Image {
            cache: self.cache,
            opts: self.opts,
            origin: self.origin,
            reference: self.reference.clone(),
            want: self.want,
            client: None,
        }
    }

    fn err(&self, detail: String) -> KernelError {
        KernelError::Oci {
            origin: self.origin.to_owned(),
            detail,
        }
    }

    fn client(&mut self) -> Result<&mut Client, KernelError> {
        if self.opts.offline {
            return Err(KernelError::NotCached {
                origin: self.origin.to_owned(),
            });
        }
        let (origin, reference, limits) = (self.origin, &self.reference, &self.opts.limits);
        Ok(self
            .client
            .get_or_insert_with(|| Client::new(origin, reference, limits.clone())))
    }

    fn resolve_pinned(&mut self, digest: &str) -> Result<Got, KernelError> {
        let _lock = self.cache.lock(digest)?;
        if let Some(got) = extract::cached_extraction(self.cache, digest, self.want)? {
            return Ok(got);
        }
        let mut parts = vec![digest.to_owned()];
        let mut manifest = self.manifest(digest)?;
        if let Some(entries) = &manifest.manifests {
            let chosen = self.select_platform(entries)?;
            parts.push(chosen.clone());
            manifest = self.manifest(&chosen)?;
        }
        let Some(layers) = manifest.layers else {
            return Err(self.err(format!(
                "the manifest sha256:{digest} has neither layers nor manifests (media type {:?})",
                manifest.media_type.unwrap_or_default()
            )));
        };
        let mut blobs: Vec<(String, PathBuf)> = Vec::new();
        for layer in &layers {
            let digest = self.digest_of(layer)?;
            let path = self.layer(&digest)?;
            blobs.push((digest, path));
        }
        let mut contents = extract::contents_for(self.cache, self.origin, Layout::Oci, self.want)?;
        for (digest, path) in &blobs {
            let read_err = |err| KernelError::cache("read", path.clone(), err);
            let mut file = File::open(path).map_err(read_err)?;
            let head = sniff::read_head(&mut file).map_err(read_err)?;
            let file = File::open(path).map_err(read_err)?;
            let name = format!("layer sha256:{}", &digest[..12]);
            tarball::scan_tar(
                file,
                Compression::sniff(&head),
                self.origin,
                &name,
                Some(&mut contents),
            )?;
            parts.push(digest.clone());
        }
        let taken = contents.finish("the image's layers")?;
        self.cache.write_parts(digest, &parts)?;
        extract::store_extracted(
            self.cache,
            self.origin,
            digest,
            self.want,
            SourceFormat::Oci,
            taken,
        )
    }

    fn digest_of(&self, d: &Descriptor) -> Result<String, KernelError> {
        match d.digest.strip_prefix("sha256:") {
            Some(hex) if is_digest(hex) => Ok(hex.to_owned()),
            _ => Err(self.err(format!(
                "unsupported digest {:?} in a manifest (only sha256 is supported)",
                d.digest
            ))),
        }
    }

    fn select_platform(&self, entries: &[Descriptor]) -> Result<String, KernelError> {
        let arch = self.opts.arch.oci();
        let wanted = entries.iter().find(|e| {
            e.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == arch)
        });
        match wanted {
            Some(entry) => self.digest_of(entry),
            None => {
                let found: Vec<String> = entries
                    .iter()
                    .map(|e| match &e.platform {
                        Some(p) => format!("{}/{}", p.os, p.architecture),
                        None => "(no platform)".to_owned(),
                    })
                    .collect();
                Err(self.err(format!(
                    "the image has no linux/{arch} variant (it has: {}); set the kernel's `arch:` to one of them",
                    found.join(", ")
                )))
            }
        }
    }

    /// A manifest or index by digest: from the cache, else the mirror, else
    /// the registry; verified and kept in the cache.
    fn manifest(&mut self, digest: &str) -> Result<Manifest, KernelError> {
        let bytes = match self.cache.verified_blob(digest)? {
            Some(path) => {
                std::fs::read(&path).map_err(|err| KernelError::cache("read", path, err))?
            }
            None => {
                let bytes = match self.try_mirror(digest)? {
                    Some(path) => {
                        std::fs::read(&path).map_err(|err| KernelError::cache("read", path, err))?
                    }
                    None => self.client()?.manifest(&format!("sha256:{digest}"))?,
                };
                let actual = sha256_hex(&bytes);
                if actual != digest {
                    return Err(KernelError::Sha256Mismatch {
                        origin: self.origin.to_owned(),
                        expected: digest.to_owned(),
                        actual,
                    });
                }
                self.store_manifest(digest, &bytes)?;
                bytes
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            self.err(format!(
                "the manifest sha256:{digest} is not a valid manifest: {e}"
            ))
        })
    }

    fn store_manifest(&self, digest: &str, bytes: &[u8]) -> Result<(), KernelError> {
        let mut tmp = self.cache.temp_file()?;
        std::io::Write::write_all(tmp.as_file_mut(), bytes)
            .map_err(|err| KernelError::cache("write", tmp.path().to_owned(), err))?;
        if self.cache.verified_blob(digest)?.is_none() {
            self.cache.store_blob(tmp, digest)?;
        }
        Ok(())
    }

    /// What the mirror has for `digest`, stored in the cache.
    fn try_mirror(&self, digest: &str) -> Result<Option<PathBuf>, KernelError> {
        let Some(mirror) = &self.opts.mirror else {
            return Ok(None);
        };
        if self.opts.offline && !mirror.is_local() {
            return Ok(None);
        }
        let mut tmp = self.cache.temp_file()?;
        let progress = self.opts.progress.as_ref();
        match mirror.fetch(
            self.origin,
            Some(digest),
            None,
            &mut tmp,
            &self.opts.limits,
            progress,
        )? {
            Some(_) => Ok(Some(self.cache.store_blob(tmp, digest)?)),
            None => Ok(None),
        }
    }

    /// A layer blob, verified, in the cache.
    fn layer(&mut self, digest: &str) -> Result<PathBuf, KernelError> {
        let _lock = self.cache.lock(digest)?;
        if let Some(path) = self.cache.verified_blob(digest)? {
            return Ok(path);
        }
        if let Some(path) = self.try_mirror(digest)? {
            return Ok(path);
        }
        let (origin, opts) = (self.origin, self.opts);
        let mut tmp = self.cache.temp_file()?;
        let actual = self
            .client()?
            .blob(origin, digest, &mut tmp, opts.progress.as_ref())?;
        if actual != digest {
            return Err(KernelError::Sha256Mismatch {
                origin: origin.to_owned(),
                expected: digest.to_owned(),
                actual,
            });
        }
        self.cache.store_blob(tmp, digest)
    }
}

/// Talks to one repository of one registry, with the token once it has one.
struct Client {
    origin: String,
    base: String,
    repository: String,
    agent: ureq::Agent,
    limits: fetch::Limits,
    /// `Bearer <token>`, after the registry asked for one.
    authorization: Option<String>,
}

impl Client {
    fn new(origin: &str, reference: &Reference, limits: fetch::Limits) -> Client {
        Client {
            origin: origin.to_owned(),
            base: reference.base_url(),
            repository: reference.repository.clone(),
            agent: fetch::agent(&limits),
            limits,
            authorization: None,
        }
    }

    fn err(&self, detail: String) -> KernelError {
        KernelError::Oci {
            origin: self.origin.clone(),
            detail,
        }
    }

    /// GET a manifest by tag or `sha256:` digest, answering a token challenge.
    fn manifest(&mut self, reference: &str) -> Result<Vec<u8>, KernelError> {
        let url = format!("{}/manifests/{reference}", self.base);
        let accept = [INDEX_TYPES, MANIFEST_TYPES].concat().join(", ");
        let response = self.get(&url, &[("Accept", accept.as_str())])?;
        if response.status().as_u16() == 404 {
            return Err(self.err(format!(
                "{url}: no such image or tag (HTTP 404); check the reference"
            )));
        }
        let response = self.success(&url, response)?;
        self.read_small(&url, response)
    }

    /// One page of the tags list, and the URL of the next one.
    fn tags_page(&mut self, url: &str) -> Result<(Vec<String>, Option<String>), KernelError> {
        let response = self.get(url, &[])?;
        let response = self.success(url, response)?;
        let next = response
            .headers()
            .get("link")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.split_once('<'))
            .and_then(|(_, rest)| rest.split_once('>'))
            .map(|(path, _)| match path.starts_with('/') {
                true => format!("{}{path}", self.origin_root()),
                false => path.to_owned(),
            });
        #[derive(Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let body = self.read_small(url, response)?;
        let list: TagList = serde_json::from_slice(&body)
            .map_err(|e| self.err(format!("the tags list {url} is not JSON: {e}")))?;
        Ok((list.tags.unwrap_or_default(), next))
    }

    /// GET `url` with `headers`, answering the registry's bearer challenge
    /// once with a token: the first answer that is not that challenge (a
    /// 401 with the token is an answer).
    fn get(
        &mut self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<ureq::http::Response<ureq::Body>, KernelError> {
        for _ in 0..2 {
            let authorization = self.authorization.clone();
            let mut all = headers.to_vec();
            if let Some(auth) = &authorization {
                all.push(("Authorization", auth));
            }
            let response = self.call(url, &all)?;
            if response.status().as_u16() == 401 && authorization.is_none() {
                self.authenticate(&challenge(&response))?;
                continue;
            }
            return Ok(response);
        }
        Err(self.err(format!(
            "{url} still answers 401 with a token; the image is not public (bpfcompat pulls anonymously)"
        )))
    }

    /// `response` when it is a success, else the status as the error.
    fn success(
        &self,
        url: &str,
        response: ureq::http::Response<ureq::Body>,
    ) -> Result<ureq::http::Response<ureq::Body>, KernelError> {
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(KernelError::HttpStatus {
                origin: self.origin.clone(),
                url: url.to_owned(),
                status,
            });
        }
        Ok(response)
    }

    /// `scheme://host` of the registry, for the paths a Link header gives.
    fn origin_root(&self) -> &str {
        let after_scheme = self.base.find("://").map_or(0, |i| i + 3);
        let end = self.base[after_scheme..]
            .find('/')
            .map_or(self.base.len(), |i| after_scheme + i);
        &self.base[..end]
    }

    /// GET `url` with `headers`, retried like a download on transient
    /// failures (a broken connection, a timeout, a 5xx or 429).
    fn call(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<ureq::http::Response<ureq::Body>, KernelError> {
        let mut last = String::new();
        for attempt in 1..=self.limits.attempts {
            if attempt > 1 {
                std::thread::sleep(self.limits.backoff * 2u32.pow(attempt - 2));
            }
            let mut request = self.agent.get(url);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            match request.call() {
                Ok(r) if r.status().as_u16() >= 500 || r.status().as_u16() == 429 => {
                    last = format!("HTTP {}", r.status().as_u16());
                }
                Ok(r) => return Ok(r),
                Err(e) if fetch::is_transient(&e) => last = e.to_string(),
                Err(e) => {
                    return Err(KernelError::Download {
                        origin: self.origin.clone(),
                        url: url.to_owned(),
                        attempts: attempt,
                        detail: e.to_string(),
                    })
                }
            }
        }
        Err(KernelError::Download {
            origin: self.origin.clone(),
            url: url.to_owned(),
            attempts: self.limits.attempts,
            detail: last,
        })
    }

    fn read_small(
        &self,
        url: &str,
        response: ureq::http::Response<ureq::Body>,
    ) -> Result<Vec<u8>, KernelError> {
        let mut bytes = Vec::new();
        response
            .into_body()
            .into_reader()
            .take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| KernelError::Download {
                origin: self.origin.clone(),
                url: url.to_owned(),
                attempts: 1,
                detail: format!("reading the body: {e}"),
            })?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(self.err(format!(
                "{url} sent more than {MAX_MANIFEST_BYTES} bytes for a manifest or token"
            )));
        }
        Ok(bytes)
    }

    /// Answer `WWW-Authenticate: Bearer realm="...",service="...",scope="..."`
    /// with an anonymous token.
    fn authenticate(&mut self, challenge: &str) -> Result<(), KernelError> {
        let Some(params) = challenge
            .strip_prefix("Bearer ")
            .or_else(|| challenge.strip_prefix("bearer "))
        else {
            return Err(self.err(format!(
                "the registry wants credentials ({challenge:?}); only public images pulled anonymously with a bearer token are supported"
            )));
        };
        let params = parse_challenge(params);
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let realm = get("realm").ok_or_else(|| {
            self.err(format!(
                "the registry's challenge {challenge:?} names no realm"
            ))
        })?;
        let default_scope = format!("repository:{}:pull", self.repository);
        let mut query = vec![("scope", get("scope").unwrap_or(&default_scope))];
        if let Some(service) = get("service") {
            query.push(("service", service));
        }
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        let sep = if realm.contains('?') { '&' } else { '?' };
        let url = format!("{realm}{sep}{}", query.join("&"));
        let response = self.call(&url, &[])?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(KernelError::HttpStatus {
                origin: self.origin.clone(),
                url,
                status,
            });
        }
        #[derive(Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = self.read_small(&url, response)?;
        let token: Token = serde_json::from_slice(&body)
            .map_err(|e| self.err(format!("the token from {url} is not JSON: {e}")))?;
        let token = token
            .token
            .or(token.access_token)
            .ok_or_else(|| self.err(format!("the answer of {url} has no token")))?;
        self.authorization = Some(format!("Bearer {token}"));
        Ok(())
    }

    /// Download a blob into `out`; returns its sha256.
    fn blob(
        &mut self,
        origin: &str,
        digest: &str,
        out: &mut tempfile::NamedTempFile,
        progress: Option<&ProgressFn>,
    ) -> Result<String, KernelError> {
        let url = format!("{}/blobs/sha256:{digest}", self.base);
        let first = fetch::download_authorized(
            origin,
            &url,
            self.authorization.as_deref(),
            out,
            &self.limits,
            progress,
        );
        match first {
            // Blobs may need a token when the manifest came from the cache
            // and no request has been challenged yet.
            Err(KernelError::HttpStatus { status: 401, .. }) if self.authorization.is_none() => {
                self.probe_token()?;
                fetch::download_authorized(
                    origin,
                    &url,
                    self.authorization.as_deref(),
                    out,
                    &self.limits,
                    progress,
                )
            }
            other => other,
        }
    }

    /// Get a token from the challenge on the repository's tags list.
    fn probe_token(&mut self) -> Result<(), KernelError> {
        let url = format!("{}/tags/list", self.base);
        let response = self.call(&url, &[])?;
        if response.status().as_u16() == 401 {
            self.authenticate(&challenge(&response))?;
        }
        Ok(())
    }
}

/// `realm="https://ghcr.io/token",service="ghcr.io"` → pairs.
fn parse_challenge(params: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = params.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.split_once('"') {
                Some((v, next)) => (v.to_owned(), next),
                None => (quoted.to_owned(), ""),
            },
            None => match after.split_once(',') {
                Some((v, next)) => (v.trim().to_owned(), next),
                None => (after.trim().to_owned(), ""),
            },
        };
        out.push((key, value));
        rest = next.trim_start_matches(',').trim();
    }
    out
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The `WWW-Authenticate` challenge of a 401, empty when there is none.
fn challenge<B>(response: &ureq::http::Response<B>) -> String {
    response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_split() {
        let r = Reference::parse("ghcr.io/cilium/ci-kernels:6.1").unwrap();
        assert_eq!(
            (
                r.registry.as_str(),
                r.repository.as_str(),
                r.tag.as_deref(),
                r.digest.clone()
            ),
            ("ghcr.io", "cilium/ci-kernels", Some("6.1"), None)
        );
        assert_eq!(r.base_url(), "https://ghcr.io/v2/cilium/ci-kernels");
        let d = "a".repeat(64);
        let r = Reference::parse(&format!("127.0.0.1:5000/k@sha256:{d}")).unwrap();
        assert_eq!(r.base_url(), "http://127.0.0.1:5000/v2/k");
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.tag, None);
        let r = Reference::parse("localhost:5000/a/b:1.0").unwrap();
        assert_eq!(r.base_url(), "http://localhost:5000/v2/a/b");
        let r = Reference::parse("busybox:1").unwrap();
        assert_eq!(
            r.base_url(),
            "https://registry-1.docker.io/v2/library/busybox"
        );
        for bad in [
            "ghcr.io/x",
            "ghcr.io/X:1",
            "ghcr.io/x:1@sha256:12",
            "ghcr.io/x@md5:1",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_linux_amd64_is_taken_from_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(dir.path().to_owned());
        let opts = Options::default();
        let image = Image {
            cache: &cache,
            opts: &opts,
            origin: "oci:x/y:1",
            reference: Reference::parse("x.io/y:1").unwrap(),
            want: Want::Kernel(None),
            client: None,
        };
        let index: Manifest = serde_json::from_str(&format!(
            r#"{{"manifests":[{{"digest":"sha256:{a}","platform":{{"os":"linux","architecture":"arm64"}}}},{{"digest":"sha256:{b}","platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
            a = "a".repeat(64),
            b = "b".repeat(64)
        ))
        .unwrap();
        let entries = index.manifests.unwrap();
        assert_eq!(image.select_platform(&entries).unwrap(), "b".repeat(64));
        let msg = image
            .select_platform(&entries[..1])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("no linux/amd64") && msg.contains("linux/arm64"),
            "{msg}"
        );
        // An arm64 kernel takes the arm64 variant.
        let opts = Options {
            arch: crate::arch::Arch::Arm64,
            ..Options::default()
        };
        let image = Image {
            opts: &opts,
            ..image
        };
        assert_eq!(image.select_platform(&entries).unwrap(), "a".repeat(64));
    }

    #[test]
    fn challenges_are_parsed() {
        let p = parse_challenge(
            r#"realm="https://ghcr.io/token",service="ghcr.io",scope="repository:cilium/ci-kernels:pull""#,
        );
        assert_eq!(p[0], ("realm".into(), "https://ghcr.io/token".into()));
        assert_eq!(p[1], ("service".into(), "ghcr.io".into()));
        assert_eq!(p[2].1, "repository:cilium/ci-kernels:pull");
        assert_eq!(
            percent_encode("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
    }
}
