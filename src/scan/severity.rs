//! Severity: a CVSS score computed from the vector an advisory carries
//! (CVSS v3.0 and v3.1 by the specification's formulas, CVSS v4.0 in
//! `cvss4`), else the rating an ecosystem gives (GitHub's `MODERATE`,
//! Debian's urgency, Ubuntu's priority), else `unknown`.

use serde::Serialize;

mod cvss4;

pub use cvss4::cvss4_score;

/// Ordered so that a threshold is a comparison: `unknown` below `low`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// `low`, `medium`, `high`, `critical` (any case), `moderate` for medium.
    pub fn parse(text: &str) -> Option<Severity> {
        Some(match text.to_ascii_lowercase().as_str() {
            "unknown" => Severity::Unknown,
            "low" => Severity::Low,
            "medium" | "moderate" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }

    /// The qualitative rating of a CVSS score, the same scale for v3.x and
    /// v4.0 (a score of 0.0, "none", as low).
    pub fn from_score(score: f64) -> Severity {
        match score {
            score if score >= 9.0 => Severity::Critical,
            score if score >= 7.0 => Severity::High,
            score if score >= 4.0 => Severity::Medium,
            _ => Severity::Low,
        }
    }

    /// An ecosystem's own word: GitHub's and OSV's `severity`, Debian's
    /// `urgency` (`unimportant`, `low`, `medium`, `high`), Ubuntu's
    /// `priority` (`negligible` to `critical`); "not yet assigned" is none.
    pub fn from_rating(text: &str) -> Option<Severity> {
        let word = text.trim().trim_end_matches('*').to_ascii_lowercase();
        match word.as_str() {
            "negligible" | "unimportant" => Some(Severity::Low),
            _ => Severity::parse(&word).filter(|severity| *severity != Severity::Unknown),
        }
    }
}

/// A CVSS v3.x base score from its vector (`CVSS:3.1/AV:N/AC:L/...`), or
/// `None` when the vector is not v3 or lacks a base metric.
pub fn cvss3_base_score(vector: &str) -> Option<f64> {
    let mut parts = vector.split('/');
    if !matches!(parts.next()?, "CVSS:3.0" | "CVSS:3.1") {
        return None;
    }
    let metrics: Vec<(&str, &str)> = parts.filter_map(|part| part.split_once(':')).collect();
    let metric = |name: &str| {
        metrics
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| *value)
    };
    let changed = match metric("S")? {
        "U" => false,
        "C" => true,
        _ => return None,
    };
    let attack_vector = match metric("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let complexity = match metric("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let privileges = match (metric("PR")?, changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let interaction = match metric("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let impact_of = |name: &str| match metric(name) {
        Some("H") => Some(0.56),
        Some("L") => Some(0.22),
        Some("N") => Some(0.0),
        _ => None,
    };
    let (confidentiality, integrity, availability) =
        (impact_of("C")?, impact_of("I")?, impact_of("A")?);
    let base = 1.0 - (1.0 - confidentiality) * (1.0 - integrity) * (1.0 - availability);
    let impact = if changed {
        7.52 * (base - 0.029) - 3.25 * f64::powi(base - 0.02, 15)
    } else {
        6.42 * base
    };
    if impact <= 0.0 {
        return Some(0.0);
    }
    let exploitability = 8.22 * attack_vector * complexity * privileges * interaction;
    let total = if changed {
        1.08 * (impact + exploitability)
    } else {
        impact + exploitability
    };
    Some(round_up(total.min(10.0)))
}

/// CVSS v3.1's `Roundup`: the smallest one-decimal number not below the
/// input, computed in integers so floating-point noise does not round up.
fn round_up(value: f64) -> f64 {
    let scaled = (value * 100_000.0).round() as i64;
    if scaled % 10_000 == 0 {
        scaled as f64 / 100_000.0
    } else {
        ((scaled / 10_000) + 1) as f64 / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores from the NVD and FIRST's calculator for these vectors.
    #[test]
    fn cvss3_scores() {
        for (vector, score) in [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
            ("CVSS:3.1/AV:L/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 6.2),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
            ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
            ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        ] {
            assert_eq!(cvss3_base_score(vector), Some(score), "{vector}");
        }
        assert_eq!(
            cvss3_base_score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"),
            None
        );
        assert_eq!(cvss3_base_score("CVSS:3.1/AV:N/AC:L"), None);
    }

    #[test]
    fn ratings() {
        assert_eq!(Severity::from_rating("MODERATE"), Some(Severity::Medium));
        assert_eq!(Severity::from_rating("unimportant"), Some(Severity::Low));
        assert_eq!(Severity::from_rating("not yet assigned"), None);
        assert!(Severity::Unknown < Severity::Low && Severity::High < Severity::Critical);
    }
}
