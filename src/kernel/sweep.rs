//! `kernels sweep`: every point release of one kernel series that Debian
//! or Ubuntu archives offer, read from their `Packages` indices, as matrix
//! entries pinned by the sha256 the index gives each package.
//!
//! A point release is a package `linux-image-<SERIES>.<rest>-<FLAVOUR>`
//! whose `<rest>` is version words only (`0-47`, `43+deb12`, `0-101`): so
//! `amd64` does not take `…-cloud-amd64`, and `-dbg`, `-unsigned` packages
//! never match. Newest first by `Version`, compared as dpkg compares them.

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
    /// Relative to the archive's root (`pool/main/l/…`).
    pub filename: String,
    pub sha256: String,
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
        let texts = self
            .indices
            .iter()
            .map(|i| read_index(i, limits))
            .collect::<Result<Vec<String>, _>>()?;
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(sweep(&texts, &self.series, &self.flavour, self.last))
    }

    /// The URL of an offer's package.
    pub fn url_of(&self, offer: &Offer) -> String {
        format!("{}/{}", self.archive.trim_end_matches('/'), offer.filename)
    }
}

/// The point releases of `series` (`6.1`) in `flavour` (`cloud-amd64`) in
/// the `Packages` indices, newest first, each once, the `last` newest only
/// when given.
pub fn sweep(indices: &[&str], series: &str, flavour: &str, last: Option<usize>) -> Vec<Offer> {
    let mut offers: Vec<Offer> = indices
        .iter()
        .flat_map(|text| stanzas(text))
        .filter(|o| is_point_release(&o.package, series, flavour))
        .collect();
    offers.sort_by(|a, b| {
        compare_versions(&b.version, &a.version).then_with(|| a.package.cmp(&b.package))
    });
    offers.dedup_by(|a, b| a.package == b.package && a.version == b.version);
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
        })
    })
}

fn is_point_release(package: &str, series: &str, flavour: &str) -> bool {
    let Some(rest) = package
        .strip_prefix("linux-image-")
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

/// A matrix of the offers, each a `url:` source under `archive` (the
/// archive's root URL) pinned by its sha256.
pub fn matrix_yaml(name: &str, archive: &str, offers: &[Offer]) -> String {
    let mut out = format!("name: {name}\nkernels:\n");
    for o in offers {
        out += &format!(
            "  - id: {}\n    # {} {}\n    source:\n      url: {}/{}\n      sha256: {}\n",
            kernel_id(&o.package),
            o.package,
            o.version,
            archive.trim_end_matches('/'),
            o.filename,
            o.sha256
        );
    }
    out
}

impl Offer {
    /// The matrix id of its kernel: the package's name without
    /// `linux-image-`, in the characters an id may have.
    pub fn kernel_id(&self) -> String {
        kernel_id(&self.package)
    }
}

fn kernel_id(package: &str) -> String {
    package
        .trim_start_matches("linux-image-")
        .chars()
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

/// The archive's root of an index URL (`…/debian/dists/bookworm/main/…`
/// → `…/debian`); `None` for a URL without `/dists/`.
pub fn archive_of(index_url: &str) -> Option<&str> {
    index_url.find("/dists/").map(|at| &index_url[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOKWORM: &str = include_str!("../../tests/fixtures/sweep/bookworm-Packages");
    const SECURITY: &str = include_str!("../../tests/fixtures/sweep/bookworm-security-Packages");

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
        let offers = sweep(&[BOOKWORM, SECURITY], "6.1", "cloud-amd64", None);
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
        let last_two = sweep(&[BOOKWORM, SECURITY], "6.1", "cloud-amd64", Some(2));
        assert_eq!(last_two, offers[..2]);
    }

    #[test]
    fn a_flavour_takes_only_its_own_packages() {
        let plain = sweep(&[BOOKWORM, SECURITY], "6.1", "amd64", None);
        assert!(!plain.is_empty());
        for o in &plain {
            let rest = o.package.trim_start_matches("linux-image-6.1.0-");
            assert!(
                rest.split('-').count() == 2,
                "{} is another flavour",
                o.package
            );
        }
        assert!(sweep(&[BOOKWORM], "6.12", "cloud-amd64", None).is_empty());
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

    #[test]
    fn the_matrix_pins_each_package_by_its_index_digest() {
        let offers = sweep(&[BOOKWORM], "6.1", "cloud-amd64", Some(1));
        let yaml = matrix_yaml("sweep", "https://archive.example/debian/", &offers);
        let o = &offers[0];
        assert!(
            yaml.contains(&format!(
                "url: https://archive.example/debian/{}\n      sha256: {}\n",
                o.filename, o.sha256
            )),
            "{yaml}"
        );
        assert!(yaml.contains("  - id: 6.1.0-"), "{yaml}");
        assert_eq!(
            kernel_id("linux-image-6.12.43+deb12-cloud-amd64"),
            "6.12.43_deb12-cloud-amd64"
        );
        assert_eq!(
            archive_of(
                "https://archive.example/debian/dists/bookworm/main/binary-amd64/Packages.xz"
            ),
            Some("https://archive.example/debian")
        );
    }
}
