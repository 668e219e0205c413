//! `kernels sweep`: every point release of one kernel series that Debian
//! or Ubuntu archives (their `Packages` indices) or RPM repositories (their
//! `repodata/repomd.xml` and the primary metadata it names) offer, as
//! matrix entries pinned by the sha256 the index gives each package.
//!
//! Debian and Ubuntu: a point release is a package
//! `linux-image-<SERIES>.<rest>-<FLAVOUR>` (Debian 7.x: `linux-binary-…`)
//! whose `<rest>` is version words only (`0-47`, `43+deb12`, `0-101`): so
//! `amd64` does not take `…-cloud-amd64`, and `-dbg`, `-unsigned` packages
//! never match. `modules: linux-modules` pairs each with the
//! `linux-modules-<ABI>` package of its version (Debian 7.x, Ubuntu).
//!
//! RPM (RHEL family, Amazon Linux, SUSE, Oracle UEK): the flavour is the
//! package name (`kernel-core`, `kernel`, `kernel-uek-core`,
//! `kernel-default`), the series its version's start (`5.14`), and each
//! release may take its modules from the package of the same version
//! named by `modules` (`kernel-modules-core`).
//!
//! OCI (`oci:REPOSITORY`): the repository's tags that are point releases
//! of the series (`6.1.120`), each pinned by the digest it points at.
//!
//! Newest first by version, compared as dpkg compares them (rpm's order
//! agrees on every kernel version scheme here).

use std::cmp::Ordering;
use std::io::Read;

use super::compress::{decompressor, Compression};
use super::error::KernelError;
use super::fetch::{self, Limits};
use super::sniff;

/// One package of an index that is a point release of the series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub package: String,
    pub version: String,
    /// Its package's file: relative to the sweep's archive
    /// (`pool/main/l/…`), a whole URL when under another one, or
    /// `oci:REFERENCE` for an image's tag.
    pub filename: String,
    pub sha256: String,
    /// Its modules' package (`SweepSpec::modules`): file name and sha256.
    pub modules: Option<(String, String)>,
}

/// A matrix's `sweep:`: a series and flavour, the indices to read them from
/// and the archive root their packages are under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepSpec {
    pub series: String,
    pub flavour: String,
    pub indices: Vec<String>,
    pub archive: String,
    pub last: Option<usize>,
    /// The package of each release's modules, of the same version
    /// (`kernel-modules-core`; `linux-modules`, completed with the ABI).
    pub modules: Option<String>,
}

impl SweepSpec {
    /// Stable text for the lock file: an edited sweep is swept again.
    pub fn describe(&self) -> String {
        let last = self.last.map(|n| format!(" last {n}")).unwrap_or_default();
        let indices: Vec<String> = self.indices.iter().map(|i| fetch::redact_url(i)).collect();
        format!(
            "sweep:{} {}{last} from {} under {}",
            self.series,
            self.flavour,
            indices.join(" "),
            fetch::redact_url(&self.archive)
        )
    }

    /// Its point releases as the indices offer them now, newest first.
    pub fn offers(&self, limits: &Limits) -> Result<Vec<Offer>, KernelError> {
        let mut offers = Vec::new();
        for index in &self.indices {
            if let Some(repository) = index.strip_prefix("oci:") {
                offers.extend(self.oci_offers(repository, limits)?);
                continue;
            }
            if self.flavour.is_empty() {
                return Err(index_error(
                    index,
                    "a package index needs the flavour (the package names' end, or the RPM \
                     package's name)"
                        .to_owned(),
                ));
            }
            match rpm_root(index, limits)? {
                Some(root) => {
                    let repomd = read_index(&format!("{root}repodata/repomd.xml"), limits)?;
                    let primary = primary_href(&repomd).map_err(|why| index_error(index, why))?;
                    let url = format!("{root}{primary}");
                    let text = read_index(&url, limits)?;
                    let found = rpm_offers(&text, self).map_err(|why| index_error(&url, why))?;
                    offers.extend(found.into_iter().map(|o| self.under(&root, o)));
                }
                None => {
                    let text = read_index(index, limits)?;
                    let found = self.deb_offers(&text).into_iter();
                    // A Filename is under its own index's archive (the
                    // security suite's is another one); an index on disk
                    // says nothing of it.
                    match archive_of(index).map(|r| format!("{r}/")) {
                        Some(root) => offers.extend(found.map(|o| self.under(&root, o))),
                        None => offers.extend(found),
                    }
                }
            }
        }
        Ok(newest_first(offers, self.last))
    }

    /// The point releases in a `Packages` index, each with its modules'
    /// package when the sweep names one (`linux-modules`: the package of
    /// the same ABI and version, `linux-modules-7.2.13+deb14-cloud-amd64`
    /// beside `linux-binary-7.2.13+deb14-cloud-amd64`).
    fn deb_offers(&self, text: &str) -> Vec<Offer> {
        let all: Vec<Offer> = stanzas(text).collect();
        let modules_of = |o: &Offer| -> Option<Option<(String, String)>> {
            let Some(prefix) = &self.modules else {
                return Some(None);
            };
            let abi = KERNEL_PREFIXES
                .iter()
                .find_map(|p| o.package.strip_prefix(p))?;
            let name = format!("{prefix}-{abi}");
            let m = all
                .iter()
                .find(|m| m.package == name && m.version == o.version)?;
            Some(Some((m.filename.clone(), m.sha256.clone())))
        };
        all.iter()
            .filter(|o| is_point_release(&o.package, &self.series, &self.flavour))
            .filter_map(|o| {
                Some(Offer {
                    modules: modules_of(o)?,
                    ..o.clone()
                })
            })
            .collect()
    }

    /// The tags of an OCI repository that are point releases of the series
    /// (`6.1.120` of `6.1`, not `6.1` itself nor `6.10.1`), each with the
    /// digest it points at now: the `last` newest only are asked for.
    fn oci_offers(&self, repository: &str, limits: &Limits) -> Result<Vec<Offer>, KernelError> {
        let origin = format!("oci:{repository}");
        let tags = super::oci::tags(&origin, repository, limits)?;
        let prefix = format!("{}.", self.series);
        let releases = tags.into_iter().filter(|t| {
            t.strip_prefix(&prefix)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        });
        let offers: Vec<Offer> = releases
            .map(|tag| Offer {
                package: repository.to_owned(),
                version: tag,
                filename: String::new(),
                sha256: String::new(),
                modules: None,
            })
            .collect();
        newest_first(offers, self.last)
            .into_iter()
            .map(|o| {
                let reference = format!("{repository}:{}", o.version);
                let sha256 = super::oci::remote_digest(&origin, &reference, limits)?;
                Ok(Offer {
                    filename: format!("oci:{reference}"),
                    sha256,
                    ..o
                })
            })
            .collect()
    }

    /// The URL of a package's file, relative to the archive (or a whole
    /// URL, for a repository outside it).
    pub fn url_of(&self, file: &str) -> String {
        if file.contains("://") || file.starts_with("oci:") {
            return file.to_owned();
        }
        format!("{}/{}", self.archive.trim_end_matches('/'), file)
    }

    /// `offer` of the repository or archive at `root`, its package's and
    /// modules' files as [`SweepSpec::relative`] gives them.
    fn under(&self, root: &str, offer: Offer) -> Offer {
        Offer {
            filename: self.relative(root, offer.filename),
            modules: offer
                .modules
                .map(|(file, sha256)| (self.relative(root, file), sha256)),
            ..offer
        }
    }

    /// `file` of the repository or archive at `root`, relative to the
    /// archive when it is under it, else as a whole URL (a mirror list's
    /// repository, a security suite's archive), else as it is (on disk).
    fn relative(&self, root: &str, file: String) -> String {
        let archive = self.archive.trim_end_matches('/');
        let under = root
            .strip_prefix(archive)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'));
        match under {
            Some(rest) => format!("{}{file}", rest.trim_start_matches('/')),
            None if root.contains("://") => format!("{root}{file}"),
            None => file,
        }
    }
}

/// Sorted newest first, each kernel once (a package of one ABI in two
/// suites, or rebuilt, is its newest version), the `last` newest only when
/// given.
fn newest_first(mut offers: Vec<Offer>, last: Option<usize>) -> Vec<Offer> {
    offers.sort_by(|a, b| {
        compare_versions(&b.version, &a.version).then_with(|| a.package.cmp(&b.package))
    });
    let mut ids = std::collections::HashSet::new();
    offers.retain(|o| ids.insert(o.kernel_id()));
    offers.truncate(last.unwrap_or(usize::MAX));
    offers
}

/// Every stanza of a `Packages` index with the four fields an offer needs.
fn stanzas(text: &str) -> impl Iterator<Item = Offer> + '_ {
    text.split("\n\n").filter_map(|stanza| {
        let field = |name: &str| {
            stanza.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key == name).then(|| value.trim().to_owned())
            })
        };
        Some(Offer {
            package: field("Package")?,
            version: field("Version")?,
            filename: field("Filename")?,
            sha256: field("SHA256")?,
            modules: None,
        })
    })
}

/// How Debian and Ubuntu name a kernel's package: `linux-image-*`, and
/// from Debian 7.x on `linux-binary-*` (its modules in `linux-modules-*`).
const KERNEL_PREFIXES: [&str; 2] = ["linux-image-", "linux-binary-"];

fn is_point_release(package: &str, series: &str, flavour: &str) -> bool {
    let Some(rest) = KERNEL_PREFIXES
        .iter()
        .find_map(|p| package.strip_prefix(p))
        .and_then(|p| p.strip_prefix(series))
        .and_then(|p| p.strip_prefix('.'))
        .and_then(|p| p.strip_suffix(flavour))
        .and_then(|p| p.strip_suffix('-'))
    else {
        return false;
    };
    !rest.is_empty()
        && rest
            .split('-')
            .all(|word| word.starts_with(|c: char| c.is_ascii_digit()))
}

/// dpkg's order of versions (`[epoch:]upstream[-revision]`, deb-version(7)):
/// epochs as numbers, then upstream and revision alternately compared as
/// non-digit runs (letters before non-letters, `~` before everything, even
/// the end) and digit runs as numbers.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (ea, a) = split_epoch(a);
    let (eb, b) = split_epoch(b);
    let (ua, ra) = a.rsplit_once('-').unwrap_or((a, ""));
    let (ub, rb) = b.rsplit_once('-').unwrap_or((b, ""));
    ea.cmp(&eb)
        .then_with(|| compare_part(ua, ub))
        .then_with(|| compare_part(ra, rb))
}

fn split_epoch(v: &str) -> (u64, &str) {
    match v.split_once(':') {
        Some((epoch, rest)) => (epoch.parse().unwrap_or(0), rest),
        None => (0, v),
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        let (na, ra) = a.split_at(a.iter().position(u8::is_ascii_digit).unwrap_or(a.len()));
        let (nb, rb) = b.split_at(b.iter().position(u8::is_ascii_digit).unwrap_or(b.len()));
        let order = compare_letters(na, nb);
        if order != Ordering::Equal {
            return order;
        }
        let (da, ra) = ra.split_at(
            ra.iter()
                .position(|c| !c.is_ascii_digit())
                .unwrap_or(ra.len()),
        );
        let (db, rb) = rb.split_at(
            rb.iter()
                .position(|c| !c.is_ascii_digit())
                .unwrap_or(rb.len()),
        );
        let order = compare_digits(da, db);
        if order != Ordering::Equal {
            return order;
        }
        (a, b) = (ra, rb);
    }
    Ordering::Equal
}

/// A non-digit run, character by character in dpkg's weights.
fn compare_letters(a: &[u8], b: &[u8]) -> Ordering {
    fn weight(c: Option<&u8>) -> i32 {
        match c {
            None => 0,
            Some(b'~') => -1,
            Some(c) if c.is_ascii_alphabetic() => i32::from(*c),
            Some(c) => i32::from(*c) + 256,
        }
    }
    (0..a.len().max(b.len()))
        .map(|i| weight(a.get(i)).cmp(&weight(b.get(i))))
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

/// A digit run as a number, however long.
fn compare_digits(a: &[u8], b: &[u8]) -> Ordering {
    let trim = |d: &[u8]| -> Vec<u8> { d.iter().copied().skip_while(|c| *c == b'0').collect() };
    let (a, b) = (trim(a), trim(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
}

/// A matrix of the offers, each a `url:` source under the sweep's archive
/// pinned by its sha256 (and its modules' package, when it has one).
pub fn matrix_yaml(name: &str, spec: &SweepSpec, offers: &[Offer]) -> String {
    let mut out = format!("name: {name}\nkernels:\n");
    for o in offers {
        if let Some(reference) = o.filename.strip_prefix("oci:") {
            out += &format!(
                "  - id: {}\n    source:\n      oci: {reference}@sha256:{}\n",
                o.kernel_id(),
                o.sha256
            );
            continue;
        }
        out += &format!(
            "  - id: {}\n    # {} {}\n    source:\n      url: {}\n      sha256: {}\n",
            o.kernel_id(),
            o.package,
            o.version,
            spec.url_of(&o.filename),
            o.sha256
        );
        if let Some((file, sha256)) = &o.modules {
            out += &format!(
                "    modules:\n      url: {}\n      sha256: {sha256}\n",
                spec.url_of(file)
            );
        }
    }
    out
}

impl Offer {
    /// The matrix id of its kernel, in the characters an id may have: a
    /// Debian package's name without `linux-image-`/`linux-binary-` (its
    /// ABI and flavour), an RPM's version, an image's tag.
    pub fn kernel_id(&self) -> String {
        match KERNEL_PREFIXES
            .iter()
            .find_map(|p| self.package.strip_prefix(p))
        {
            Some(abi) => kernel_id(abi),
            None => kernel_id(&self.version.replace(':', "_")),
        }
    }
}

fn kernel_id(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .take(64)
        .collect()
}

/// The text of the `Packages` index at `location`: a file, or an http(s)
/// or file:// URL; plain, gzip or xz, told by its first bytes.
pub fn read_index(location: &str, limits: &Limits) -> Result<String, KernelError> {
    let read_err = |err| KernelError::IndexRead {
        index: fetch::redact_url(location),
        err,
    };
    let file = if location.contains("://") {
        let mut temp = tempfile::NamedTempFile::new().map_err(read_err)?;
        let origin = format!("index {}", fetch::redact_url(location));
        fetch::download(&origin, location, &mut temp, limits, None)?;
        temp.reopen().map_err(read_err)?
    } else {
        std::fs::File::open(location).map_err(read_err)?
    };
    let mut reader = std::io::BufReader::new(file);
    let head = sniff::read_head(&mut reader).map_err(read_err)?;
    let compression = Compression::sniff(&head);
    let whole = std::io::Cursor::new(head).chain(reader);
    let mut text = String::new();
    decompressor(compression, whole)
        .and_then(|mut r| r.read_to_string(&mut text))
        .map_err(read_err)?;
    Ok(text)
}

/// The root (ending in `/`) of the RPM repository an index names: its
/// `repodata/repomd.xml`, or a `mirror.list` (Amazon Linux) whose first
/// line is the repository; `None` for a Debian `Packages` index.
fn rpm_root(index: &str, limits: &Limits) -> Result<Option<String>, KernelError> {
    if let Some(root) = index.strip_suffix("repodata/repomd.xml") {
        return Ok(Some(root.to_owned()));
    }
    if !index.ends_with("/mirror.list") {
        return Ok(None);
    }
    let list = read_index(index, limits)?;
    let first = list.lines().map(str::trim).find(|l| !l.is_empty());
    let root = first.ok_or_else(|| index_error(index, "the mirror list is empty".to_owned()))?;
    Ok(Some(format!("{}/", root.trim_end_matches('/'))))
}

fn index_error(index: &str, why: String) -> KernelError {
    KernelError::IndexRead {
        index: fetch::redact_url(index),
        err: std::io::Error::other(why),
    }
}

/// Where `repomd.xml` says the primary metadata is (relative to the
/// repository's root).
fn primary_href(repomd: &str) -> Result<String, String> {
    let doc = roxmltree::Document::parse(repomd).map_err(|e| e.to_string())?;
    doc.descendants()
        .filter(|n| n.has_tag_name("data") && n.attribute("type") == Some("primary"))
        .find_map(|n| n.children().find(|c| c.has_tag_name("location")))
        .and_then(|l| l.attribute("href"))
        .map(str::to_owned)
        .ok_or_else(|| "it names no primary metadata (data type=\"primary\")".to_owned())
}

/// One `<package>` of primary metadata.
struct Rpm<'a> {
    name: &'a str,
    arch: &'a str,
    /// `epoch:ver-rel`, the epoch left out when 0.
    evr: String,
    ver: &'a str,
    href: &'a str,
    sha256: Option<&'a str>,
}

/// The point releases of `spec` in primary metadata (file names relative
/// to the repository's root).
fn rpm_offers(primary: &str, spec: &SweepSpec) -> Result<Vec<Offer>, String> {
    let doc = roxmltree::Document::parse_with_options(
        primary,
        roxmltree::ParsingOptions {
            allow_dtd: false,
            nodes_limit: u32::MAX,
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let rpms: Vec<Rpm> = doc
        .descendants()
        .filter(|n| n.has_tag_name("package") && n.attribute("type") == Some("rpm"))
        .filter_map(|p| {
            let child = |tag: &str| p.children().find(|c| c.has_tag_name(tag));
            let text = |tag: &str| child(tag).and_then(|c| c.text());
            let version = child("version")?;
            let (epoch, ver, rel) = (
                version.attribute("epoch").unwrap_or("0"),
                version.attribute("ver")?,
                version.attribute("rel")?,
            );
            let checksum = child("checksum").filter(|c| c.attribute("type") == Some("sha256"));
            Some(Rpm {
                name: text("name")?,
                arch: text("arch")?,
                evr: match epoch {
                    "0" => format!("{ver}-{rel}"),
                    e => format!("{e}:{ver}-{rel}"),
                },
                ver,
                href: child("location")?.attribute("href")?,
                sha256: checksum.and_then(|c| c.text()),
            })
        })
        .collect();
    let in_series =
        |r: &Rpm| r.ver == spec.series || r.ver.starts_with(&format!("{}.", spec.series));
    Ok(rpms
        .iter()
        .filter(|r| r.name == spec.flavour && !["src", "nosrc"].contains(&r.arch) && in_series(r))
        .filter_map(|r| {
            let modules = match &spec.modules {
                None => None,
                Some(name) => {
                    let m = rpms
                        .iter()
                        .find(|m| m.name == name && m.evr == r.evr && m.arch == r.arch)?;
                    Some((m.href.to_owned(), m.sha256?.to_owned()))
                }
            };
            Some(Offer {
                package: r.name.to_owned(),
                version: r.evr.clone(),
                filename: r.href.to_owned(),
                sha256: r.sha256?.to_owned(),
                modules,
            })
        })
        .collect())
}

/// The archive a sweep of `indices` takes its packages' paths under when
/// none is given: none needed for image tags alone (`Some("")`), else the
/// first index URL's root; `None` when no index gives one.
pub fn default_archive(indices: &[String]) -> Option<String> {
    if indices.iter().all(|i| i.starts_with("oci:")) {
        return Some(String::new());
    }
    indices
        .iter()
        .find_map(|i| archive_of(i))
        .map(str::to_owned)
}

/// The archive's root of an index URL (`…/debian/dists/bookworm/main/…`
/// → `…/debian`; an RPM repository's `…/repodata/repomd.xml` → the
/// repository, a `…/mirror.list` → its directory); `None` for any other.
pub fn archive_of(index_url: &str) -> Option<&str> {
    let rpm = index_url
        .strip_suffix("/repodata/repomd.xml")
        .or_else(|| index_url.strip_suffix("/mirror.list"));
    if let Some(root) = rpm {
        return index_url.contains("://").then_some(root);
    }
    index_url.find("/dists/").map(|at| &index_url[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sweep");

    /// A sweep of the recorded indices `names` (`bookworm`:
    /// tests/fixtures/sweep/bookworm-Packages).
    fn debian(names: &[&str], series: &str, flavour: &str, last: Option<usize>) -> Vec<Offer> {
        let spec = SweepSpec {
            series: series.into(),
            flavour: flavour.into(),
            indices: names
                .iter()
                .map(|n| format!("{FIXTURES}/{n}-Packages"))
                .collect(),
            archive: "https://archive.example/debian".into(),
            last,
            modules: None,
        };
        spec.offers(&Limits::default()).unwrap()
    }

    #[test]
    fn versions_order_as_dpkg_orders_them() {
        let ascending = [
            "6.1.0~rc1-1",
            "6.1.0-1",
            "6.1.0-1+b1",
            "6.1.0-2",
            "6.1.9-1",
            "6.1.10-1",
            "6.1.170-3",
            "6.1.170-3+deb12u1",
            "6.12.43-1~bpo12+1",
            "6.12.43-1",
            "1:5.0-1",
        ];
        for pair in ascending.windows(2) {
            assert_eq!(
                compare_versions(pair[0], pair[1]),
                Ordering::Less,
                "{pair:?}"
            );
            assert_eq!(
                compare_versions(pair[1], pair[0]),
                Ordering::Greater,
                "{pair:?}"
            );
        }
        assert_eq!(compare_versions("6.1.0-01", "6.1.0-1"), Ordering::Equal);
    }

    #[test]
    fn the_debian_6_1_cloud_abis_of_main_and_security_newest_first() {
        let offers = debian(
            &["bookworm", "bookworm-security"],
            "6.1",
            "cloud-amd64",
            None,
        );
        let got: Vec<(&str, &str)> = offers
            .iter()
            .map(|o| (o.package.as_str(), o.version.as_str()))
            .collect();
        assert!(got.len() >= 3, "{got:?}");
        assert!(
            got.iter()
                .all(|(p, _)| p.starts_with("linux-image-6.1.0-") && p.ends_with("-cloud-amd64")),
            "{got:?}"
        );
        for pair in offers.windows(2) {
            assert_ne!(
                compare_versions(&pair[0].version, &pair[1].version),
                Ordering::Less
            );
        }
        // bookworm's own 6.1.0-47 is older than every security update.
        assert_eq!(got.last().unwrap().0, "linux-image-6.1.0-47-cloud-amd64");
        assert!(offers
            .iter()
            .all(|o| o.sha256.len() == 64 && o.filename.starts_with("pool/")));
        let last_two = debian(
            &["bookworm", "bookworm-security"],
            "6.1",
            "cloud-amd64",
            Some(2),
        );
        assert_eq!(last_two, offers[..2]);
    }

    #[test]
    fn a_package_in_two_suites_is_one_kernel_its_newest_version() {
        let dir = tempfile::tempdir().unwrap();
        let stanza = |version: &str, sha: char| {
            format!(
                "Package: linux-image-6.1.0-47-cloud-amd64\nVersion: {version}\n\
                 Filename: pool/x_{version}.deb\nSHA256: {}\n",
                sha.to_string().repeat(64)
            )
        };
        let index = dir.path().join("Packages");
        let text = [stanza("6.1.170-3", 'a'), stanza("6.1.170-3+b1", 'b')].join("\n");
        std::fs::write(&index, text).unwrap();
        let spec = SweepSpec {
            series: "6.1".into(),
            flavour: "cloud-amd64".into(),
            indices: vec![index.display().to_string()],
            archive: "https://archive.example/debian".into(),
            last: None,
            modules: None,
        };
        let offers = spec.offers(&Limits::default()).unwrap();
        assert_eq!(offers.len(), 1, "{offers:?}");
        assert_eq!(offers[0].version, "6.1.170-3+b1");
    }

    #[test]
    fn a_flavour_takes_only_its_own_packages() {
        let plain = debian(&["bookworm", "bookworm-security"], "6.1", "amd64", None);
        assert!(!plain.is_empty());
        for o in &plain {
            let rest = o.package.trim_start_matches("linux-image-6.1.0-");
            assert!(
                rest.split('-').count() == 2,
                "{} is another flavour",
                o.package
            );
        }
        assert!(debian(&["bookworm"], "6.12", "cloud-amd64", None).is_empty());
        assert!(is_point_release(
            "linux-image-6.12.43+deb12-cloud-amd64",
            "6.12",
            "cloud-amd64"
        ));
        assert!(is_point_release(
            "linux-image-5.15.0-101-generic",
            "5.15",
            "generic"
        ));
        assert!(!is_point_release(
            "linux-image-6.1.0-47-cloud-amd64-dbg",
            "6.1",
            "cloud-amd64"
        ));
        assert!(!is_point_release(
            "linux-image-6.10.1-1-cloud-amd64",
            "6.1",
            "cloud-amd64"
        ));
    }

    fn rpm_spec(repo: &str, series: &str, flavour: &str, modules: Option<&str>) -> SweepSpec {
        let fixtures = format!("{FIXTURES}/rpm");
        SweepSpec {
            series: series.into(),
            flavour: flavour.into(),
            indices: vec![format!("{fixtures}/{repo}/repodata/repomd.xml")],
            archive: format!("https://mirror.invalid/{repo}"),
            last: None,
            modules: modules.map(str::to_owned),
        }
    }

    fn versions(spec: &SweepSpec) -> Vec<(String, String, bool)> {
        spec.offers(&Limits::default())
            .unwrap()
            .into_iter()
            .map(|o| (o.kernel_id(), o.filename, o.modules.is_some()))
            .collect()
    }

    #[test]
    fn rpm_repositories_of_each_vendor_give_their_kernels_newest_first() {
        let el9 = rpm_spec("el9", "5.14", "kernel-core", Some("kernel-modules-core"));
        let got = versions(&el9);
        let ids: Vec<&str> = got.iter().map(|(id, ..)| id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "5.14.0-503.11.1.el9_5",
                "5.14.0-427.13.1.el9_4",
                "5.14.0-70.13.1.el9_0"
            ]
        );
        assert!(got
            .iter()
            .all(|(_, file, modules)| file.starts_with("Packages/kernel-core-") && *modules));
        let offer = &el9.offers(&Limits::default()).unwrap()[0];
        let (file, _) = offer.modules.as_ref().unwrap();
        assert_eq!(
            el9.url_of(file),
            "https://mirror.invalid/el9/Packages/kernel-modules-core-5.14.0-503.11.1.el9_5.x86_64.rpm"
        );
        // Amazon Linux: `kernel` of 6.1 only, not kernel6.12 nor 6.12.
        let al = versions(&rpm_spec("al2023", "6.1", "kernel", None));
        let ids: Vec<&str> = al.iter().map(|(id, ..)| id.as_str()).collect();
        assert_eq!(
            ids,
            ["6.1.119-129.201.amzn2023", "6.1.115-126.197.amzn2023"]
        );
        let uek = versions(&rpm_spec(
            "uek7",
            "5.15",
            "kernel-uek-core",
            Some("kernel-uek-modules"),
        ));
        assert_eq!(uek.len(), 2);
        assert!(uek[0].0.starts_with("5.15.0-300.") && uek[0].2, "{uek:?}");
        // SUSE: 23.25.1 is after 23.7.3; the nosrc package is no kernel.
        let leap = versions(&rpm_spec("leap156", "6.4", "kernel-default", None));
        let ids: Vec<&str> = leap.iter().map(|(id, ..)| id.as_str()).collect();
        assert_eq!(ids, ["6.4.0-150600.23.25.1", "6.4.0-150600.23.7.3"]);
        // A modules package the repository lacks leaves the release out.
        assert!(versions(&rpm_spec("al2023", "6.1", "kernel", Some("kernel-modules"))).is_empty());
    }

    #[test]
    fn a_package_is_under_its_own_index_archive() {
        let spec = SweepSpec {
            series: "6.1".into(),
            flavour: "cloud-amd64".into(),
            indices: vec![],
            archive: "https://m.invalid/debian".into(),
            last: None,
            modules: None,
        };
        let file = || "pool/main/l/x.deb".to_owned();
        assert_eq!(
            spec.relative("https://m.invalid/debian/", file()),
            "pool/main/l/x.deb"
        );
        assert_eq!(
            spec.url_of(&spec.relative("https://m.invalid/debian-security/", file())),
            "https://m.invalid/debian-security/pool/main/l/x.deb"
        );
        assert_eq!(spec.relative("/srv/repo/", file()), "pool/main/l/x.deb");
    }

    #[test]
    fn the_matrix_pins_each_package_by_its_index_digest() {
        let offers = debian(&["bookworm"], "6.1", "cloud-amd64", Some(1));
        let spec = SweepSpec {
            series: "6.1".into(),
            flavour: "cloud-amd64".into(),
            indices: vec![],
            archive: "https://archive.example/debian/".into(),
            last: None,
            modules: None,
        };
        let yaml = matrix_yaml("sweep", &spec, &offers);
        let o = &offers[0];
        assert!(
            yaml.contains(&format!(
                "url: https://archive.example/debian/{}\n      sha256: {}\n",
                o.filename, o.sha256
            )),
            "{yaml}"
        );
        assert!(yaml.contains("  - id: 6.1.0-"), "{yaml}");
        let offer = |package: &str| Offer {
            package: package.into(),
            version: "1".into(),
            filename: String::new(),
            sha256: String::new(),
            modules: None,
        };
        assert_eq!(
            offer("linux-image-6.12.43+deb12-cloud-amd64").kernel_id(),
            "6.12.43_deb12-cloud-amd64"
        );
        assert_eq!(
            offer("linux-binary-7.2.13+deb14-cloud-amd64").kernel_id(),
            "7.2.13_deb14-cloud-amd64"
        );
        assert_eq!(
            archive_of(
                "https://archive.example/debian/dists/bookworm/main/binary-amd64/Packages.xz"
            ),
            Some("https://archive.example/debian")
        );
    }
}
