//! Plugin version strings: the protocol's syntax and their semantic ordering.
//!
//! A version matches `^[0-9]+\.[0-9]+\.[0-9][a-z0-9]*$` and is at most 128 characters. Versions
//! sort by major, minor and patch as numbers (so `1.10.0` is newer than `1.9.0`); a suffix after
//! the patch number (`1.0.0rc1`) is a pre-release and sorts before the bare version.

use std::cmp::Ordering;

/// The longest version string the protocol allows.
pub const MAX_VERSION_LEN: usize = 128;

/// Why a version string is not a valid plugin version.
pub fn check_version(version: &str) -> Result<(), String> {
    if version.len() > MAX_VERSION_LEN {
        return Err(format!(
            "version is {} characters long, at most {MAX_VERSION_LEN} are allowed",
            version.len()
        ));
    }
    if parse(version).is_none() {
        return Err(format!(
            "version \"{version}\" must look like 1.0.0 (major.minor.patch[suffix])"
        ));
    }
    Ok(())
}

/// Whether `version` is a valid plugin version.
pub fn is_valid_version(version: &str) -> bool {
    check_version(version).is_ok()
}

struct Parsed<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    suffix: &'a str,
}

fn parse(version: &str) -> Option<Parsed<'_>> {
    let mut parts = version.splitn(3, '.');
    let major = parts.next()?;
    let minor = parts.next()?;
    let rest = parts.next()?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(major) || !all_digits(minor) {
        return None;
    }
    let first = rest.bytes().next()?;
    if !first.is_ascii_digit()
        || !rest
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    {
        return None;
    }
    let patch_end = rest
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    Some(Parsed {
        major,
        minor,
        patch: &rest[..patch_end],
        suffix: &rest[patch_end..],
    })
}

fn cmp_numeric(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Compares pre-release suffixes piece by piece: letters as text, digits as numbers, so that
/// `rc2` < `rc10` and `a1` < `b1`.
fn cmp_suffix(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        let digits_a = a.starts_with(|c: char| c.is_ascii_digit());
        let digits_b = b.starts_with(|c: char| c.is_ascii_digit());
        let piece = |s: &str, digits: bool| {
            s.find(|c: char| c.is_ascii_digit() != digits)
                .unwrap_or(s.len())
        };
        let (end_a, end_b) = (piece(a, digits_a), piece(b, digits_b));
        let order = match (digits_a, digits_b) {
            (true, true) => cmp_numeric(&a[..end_a], &b[..end_b]),
            (false, false) => a[..end_a].cmp(&b[..end_b]),
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
        };
        if order != Ordering::Equal {
            return order;
        }
        a = &a[end_a..];
        b = &b[end_b..];
    }
}

/// Compares two version strings semantically; invalid strings sort before valid ones, by text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => cmp_numeric(x.major, y.major)
            .then_with(|| cmp_numeric(x.minor, y.minor))
            .then_with(|| cmp_numeric(x.patch, y.patch))
            .then_with(|| match (x.suffix.is_empty(), y.suffix.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => cmp_suffix(x.suffix, y.suffix),
            }),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_version_syntax_is_enforced() {
        for ok in [
            "1.0.0", "0.0.1", "10.20.30", "1.0.0rc1", "1.2.3a", "1.0.0b2x",
        ] {
            assert!(is_valid_version(ok), "{ok} should be valid");
        }
        for bad in [
            "",
            "1",
            "1.0",
            "1.0.",
            "v1.0.0",
            "1.0.a",
            "1.0.0-rc1",
            "1.0.0RC",
            "1..0",
            "1.0.0.0",
        ] {
            assert!(!is_valid_version(bad), "{bad} should be invalid");
        }
        assert!(check_version(&format!("1.0.0{}", "a".repeat(130))).is_err());
    }

    #[test]
    fn versions_sort_by_number_not_by_text() {
        let mut versions = vec![
            "1.9.0",
            "1.10.0",
            "1.0.0rc1",
            "1.0.0",
            "2.0.0",
            "1.0.10",
            "1.0.0rc10",
            "1.0.0rc2",
        ];
        versions.sort_by(|a, b| compare_versions(b, a));
        assert_eq!(
            versions,
            vec![
                "2.0.0",
                "1.10.0",
                "1.9.0",
                "1.0.10",
                "1.0.0",
                "1.0.0rc10",
                "1.0.0rc2",
                "1.0.0rc1"
            ]
        );
        assert_eq!(compare_versions("01.0.0", "1.0.0"), Ordering::Equal);
    }
}
