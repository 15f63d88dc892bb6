//! CVSS v4.0 scores from a vector, by the algorithm of FIRST's
//! specification (section 8): the vector falls in a macrovector (its
//! equivalence classes EQ1 to EQ6), whose highest-severity vectors have a
//! published score; the vector's score is that score lowered by its mean
//! proportional distance, class by class, towards the next lower
//! macrovector, rounded to one decimal.
//!
//! It sits under `severity`, which rates a record by the score. A base
//! vector gives the CVSS-B score; threat (`E`) and environmental metrics in
//! the vector are honoured as the specification has it (CVSS-BT, -BE,
//! -BTE), and supplemental metrics are read but change nothing.

use std::sync::OnceLock;

/// Every metric a v4.0 vector may carry and the values each takes: the
/// eleven base metrics (all required), then threat, environmental and
/// supplemental ones (optional, `X` for not defined).
const METRICS: [(&str, &[&str]); 32] = [
    ("AV", &["N", "A", "L", "P"]),
    ("AC", &["L", "H"]),
    ("AT", &["N", "P"]),
    ("PR", &["N", "L", "H"]),
    ("UI", &["N", "P", "A"]),
    ("VC", &["H", "L", "N"]),
    ("VI", &["H", "L", "N"]),
    ("VA", &["H", "L", "N"]),
    ("SC", &["H", "L", "N"]),
    ("SI", &["H", "L", "N"]),
    ("SA", &["H", "L", "N"]),
    ("E", &["X", "A", "P", "U"]),
    ("CR", &["X", "H", "M", "L"]),
    ("IR", &["X", "H", "M", "L"]),
    ("AR", &["X", "H", "M", "L"]),
    ("MAV", &["X", "N", "A", "L", "P"]),
    ("MAC", &["X", "L", "H"]),
    ("MAT", &["X", "N", "P"]),
    ("MPR", &["X", "N", "L", "H"]),
    ("MUI", &["X", "N", "P", "A"]),
    ("MVC", &["X", "H", "L", "N"]),
    ("MVI", &["X", "H", "L", "N"]),
    ("MVA", &["X", "H", "L", "N"]),
    ("MSC", &["X", "H", "L", "N"]),
    ("MSI", &["X", "S", "H", "L", "N"]),
    ("MSA", &["X", "S", "H", "L", "N"]),
    ("S", &["X", "N", "P"]),
    ("AU", &["X", "N", "Y"]),
    ("R", &["X", "A", "U", "I"]),
    ("V", &["X", "D", "C"]),
    ("RE", &["X", "L", "M", "H"]),
    ("U", &["X", "Clear", "Green", "Amber", "Red"]),
];

const BASE_METRICS: usize = 11;

/// Where the modified environmental metrics start in `METRICS`: `MAV`
/// overrides `AV`, and so on in base order.
const FIRST_MODIFIED: usize = 15;

/// The metrics scoring reads, in the order a composed maximal vector lists
/// them (EQ1: AV PR UI, EQ2: AC AT, EQ3 with EQ6: VC VI VA CR IR AR, EQ4:
/// SC SI SA). Each string gives a metric's values from the most severe on:
/// a value's position is its severity level in tenths, as the
/// specification's severity distances count them (SC takes no `S`, so its
/// `H` is one step down, as published).
const LEVELS: [&str; 14] = [
    "NALP", "NLH", "NPA", "LH", "NP", "HLN", "HLN", "HLN", "HML", "HML", "HML", "SHLN", "SHLN",
    "SHLN",
];

// Positions in `LEVELS`.
const ATTACK_VECTOR: usize = 0;
const PRIVILEGES_REQUIRED: usize = 1;
const USER_INTERACTION: usize = 2;
const ATTACK_COMPLEXITY: usize = 3;
const ATTACK_REQUIREMENTS: usize = 4;
/// Vulnerable system confidentiality, integrity, availability; their
/// requirements (CR, IR, AR) come three places later.
const VULNERABLE: usize = 5;
const REQUIREMENTS: usize = 8;
/// Subsequent system confidentiality, integrity, availability.
const SUBSEQUENT: usize = 11;

/// FIRST's highest-severity vectors of each class, in `LEVELS` order.
const EQ1_MAXIMA: [&[&str]; 3] = [&["NNN"], &["ANN", "NLN", "NNP"], &["PNN", "ALP"]];
const EQ2_MAXIMA: [&[&str]; 2] = [&["LN"], &["HN", "LP"]];
/// By EQ3, then EQ6 (EQ3 2 with EQ6 0 cannot occur).
const EQ3_EQ6_MAXIMA: [[&[&str]; 2]; 3] = [
    [&["HHHHHH"], &["HHLMMH", "HHHMMM"]],
    [
        &["LHHHHH", "HLHHHH"],
        &["LHLHMH", "LHHHMM", "HLHMHM", "HLLMHH", "LLHHHM"],
    ],
    [&[], &["LLLHHH"]],
];
const EQ4_MAXIMA: [&str; 3] = ["HSS", "HHH", "LLL"];

/// The depth of each class (FIRST's maximal severity distances, plus one),
/// by the class's value.
const EQ1_DEPTH: [u32; 3] = [1, 4, 5];
const EQ2_DEPTH: [u32; 2] = [1, 2];
const EQ3_EQ6_DEPTH: [[u32; 2]; 3] = [[7, 6], [8, 8], [10, 10]];
const EQ4_DEPTH: [u32; 3] = [6, 5, 4];

/// The reference calculator adds this before rounding half up, so that
/// floating-point noise (8.6 - 7.15 = 1.4499999999999993) rounds as the
/// exact value does.
const ROUNDING_ALLOWANCE: f64 = 1e-6;

/// The CVSS v4.0 score of a vector (`CVSS:4.0/AV:N/AC:L/...`), or `None`
/// when it is not a v4.0 vector, lacks a base metric, names a metric
/// twice, or carries an unknown metric or value.
pub fn cvss4_score(vector: &str) -> Option<f64> {
    let values = parse(vector)?;
    Some(score(&effective(&values)))
}

/// The value of each metric of `METRICS`, by position; metrics may come in
/// any order, as the reference calculator and Red Hat's `cvss` accept them.
fn parse(vector: &str) -> Option<[Option<&str>; METRICS.len()]> {
    let mut values = [None; METRICS.len()];
    for part in vector.strip_prefix("CVSS:4.0/")?.split('/') {
        let (name, value) = part.split_once(':')?;
        let position = METRICS.iter().position(|(known, _)| *known == name)?;
        if values[position].is_some() || !METRICS[position].1.contains(&value) {
            return None;
        }
        values[position] = Some(value);
    }
    values[..BASE_METRICS]
        .iter()
        .all(Option::is_some)
        .then_some(values)
}

/// The values scoring reads: each base metric as its modified metric sets
/// it, and exploit maturity and the security requirements at their worst
/// (`A`, `H`) when not defined, as the specification says.
struct Effective {
    /// By `LEVELS` order.
    levels: [usize; 14],
    exploit_maturity: u8,
}

fn effective(values: &[Option<&str>; METRICS.len()]) -> Effective {
    let first_byte = |position: usize, default: &str| {
        let value = values[position].filter(|value| *value != "X");
        value.unwrap_or(default).as_bytes()[0]
    };
    let base = |position: usize| {
        let modified = values[FIRST_MODIFIED + position].filter(|value| *value != "X");
        modified.or(values[position]).unwrap_or("N").as_bytes()[0]
    };
    // Positions in METRICS of the metrics LEVELS lists.
    let letters = [
        base(0),
        base(3),
        base(4),
        base(1),
        base(2),
        base(5),
        base(6),
        base(7),
        first_byte(12, "H"),
        first_byte(13, "H"),
        first_byte(14, "H"),
        base(8),
        base(9),
        base(10),
    ];
    let mut levels = [0; 14];
    for (index, letter) in letters.into_iter().enumerate() {
        levels[index] = level(index, letter);
    }
    Effective {
        levels,
        exploit_maturity: first_byte(11, "A"),
    }
}

/// A value's severity level, its position in `LEVELS` (parsing let only
/// listed values through, so the fallback is never taken).
fn level(index: usize, letter: u8) -> usize {
    LEVELS[index]
        .bytes()
        .position(|known| known == letter)
        .unwrap_or(0)
}

/// Whether the metric at `LEVELS` position `index` has the value `letter`.
fn has(metrics: &Effective, index: usize, letter: u8) -> bool {
    LEVELS[index].as_bytes().get(metrics.levels[index]) == Some(&letter)
}

/// The macrovector: the class of each of EQ1 to EQ6.
fn macrovector(metrics: &Effective) -> [usize; 6] {
    let is = |index, letter| has(metrics, index, letter);
    let network =
        [ATTACK_VECTOR, PRIVILEGES_REQUIRED, USER_INTERACTION].map(|index| is(index, b'N'));
    let eq1 = if network.iter().all(|none| *none) {
        0
    } else if network.iter().any(|none| *none) && !is(ATTACK_VECTOR, b'P') {
        1
    } else {
        2
    };
    let eq2 = usize::from(!(is(ATTACK_COMPLEXITY, b'L') && is(ATTACK_REQUIREMENTS, b'N')));
    let vulnerable_high = [0, 1, 2].map(|offset| is(VULNERABLE + offset, b'H'));
    let eq3 = if vulnerable_high[0] && vulnerable_high[1] {
        0
    } else if vulnerable_high.iter().any(|high| *high) {
        1
    } else {
        2
    };
    let subsequent = |letter| (0..3).any(|offset| is(SUBSEQUENT + offset, letter));
    let eq4 = if subsequent(b'S') {
        0
    } else if subsequent(b'H') {
        1
    } else {
        2
    };
    let eq5 = match metrics.exploit_maturity {
        b'P' => 1,
        b'U' => 2,
        _ => 0,
    };
    let required_and_high =
        (0..3).any(|offset| is(REQUIREMENTS + offset, b'H') && vulnerable_high[offset]);
    let eq6 = usize::from(!required_and_high);
    [eq1, eq2, eq3, eq4, eq5, eq6]
}

/// How many classes each of EQ1 to EQ6 has.
const CLASSES: [usize; 6] = [3, 2, 3, 3, 3, 2];

/// Where a macrovector sits in `table()`: its classes read as mixed-radix
/// digits, `None` past the lowest class of any EQ.
fn table_index(classes: [usize; 6]) -> Option<usize> {
    classes
        .iter()
        .zip(CLASSES)
        .try_fold(0, |index, (class, count)| {
            (*class < count).then_some(index * count + class)
        })
}

/// The published score of a macrovector, `None` past the lowest ones.
fn macrovector_score(classes: [usize; 6]) -> Option<f64> {
    table()[table_index(classes)?]
}

/// `cvss4-macrovectors.txt` by `table_index`: 270 of the 324 places hold a
/// score (EQ3 2 with EQ6 0 cannot occur).
fn table() -> &'static [Option<f64>; 324] {
    static TABLE: OnceLock<[Option<f64>; 324]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = [None; 324];
        let text = include_str!("cvss4-macrovectors.txt");
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let Some((digits, score)) = line.split_once(' ') else {
                continue;
            };
            let classes: Vec<usize> = digits
                .bytes()
                .map(|digit| usize::from(digit.wrapping_sub(b'0')))
                .collect();
            let index = <[usize; 6]>::try_from(classes).ok().and_then(table_index);
            if let (Some(index), Ok(score)) = (index, score.parse()) {
                table[index] = Some(score);
            }
        }
        table
    })
}

/// The highest-severity vectors of the macrovector, composed from each
/// class's, in the order the reference calculator tries them.
fn composed_maxima(classes: [usize; 6]) -> Vec<[u8; 14]> {
    let mut composed = Vec::new();
    for eq1 in EQ1_MAXIMA[classes[0]] {
        for eq2 in EQ2_MAXIMA[classes[1]] {
            for eq3_eq6 in EQ3_EQ6_MAXIMA[classes[2]][classes[5]] {
                let eq4 = EQ4_MAXIMA[classes[3]];
                let mut vector = [0; 14];
                for (slot, letter) in vector
                    .iter_mut()
                    .zip([*eq1, *eq2, *eq3_eq6, eq4].concat().bytes())
                {
                    *slot = letter;
                }
                composed.push(vector);
            }
        }
    }
    composed
}

/// Each metric's severity distance from the first composed maximal vector
/// the vector does not exceed anywhere (else from the last, as the
/// reference calculator leaves it).
fn distances(metrics: &Effective, classes: [usize; 6]) -> [i64; 14] {
    let mut distances = [0; 14];
    for maximum in composed_maxima(classes) {
        for (index, distance) in distances.iter_mut().enumerate() {
            *distance = metrics.levels[index] as i64 - level(index, maximum[index]) as i64;
        }
        if distances.iter().all(|distance| *distance >= 0) {
            break;
        }
    }
    distances
}

/// The next lower macrovector of EQ3 and EQ6 together: they move as one,
/// and from 00 either way (the higher-scored of 01 and 10).
fn lower_eq3_eq6(classes: [usize; 6]) -> Option<f64> {
    let with = |eq3: usize, eq6: usize| {
        let mut lower = classes;
        (lower[2], lower[5]) = (eq3, eq6);
        macrovector_score(lower)
    };
    match (classes[2], classes[5]) {
        (0, 0) => match (with(0, 1), with(1, 0)) {
            (Some(left), Some(right)) => Some(left.max(right)),
            (left, right) => left.or(right),
        },
        (eq3, 1) => with(eq3 + 1, 1),
        (eq3, _) => with(eq3, 1),
    }
}

fn score(metrics: &Effective) -> f64 {
    // No impact on either system: nothing to score.
    let impacts = (VULNERABLE..VULNERABLE + 3).chain(SUBSEQUENT..SUBSEQUENT + 3);
    if impacts.into_iter().all(|index| has(metrics, index, b'N')) {
        return 0.0;
    }
    let classes = macrovector(metrics);
    let Some(value) = macrovector_score(classes) else {
        return 0.0;
    };
    let lower = |eq: usize| {
        let mut lower = classes;
        lower[eq] += 1;
        macrovector_score(lower)
    };
    let distances = distances(metrics, classes);
    let sum = |range: std::ops::Range<usize>| distances[range].iter().sum::<i64>();
    // (next lower score, distance, depth) of EQ1, EQ2, EQ3+EQ6, EQ4, EQ5;
    // EQ5's distance is always 0, but a lower EQ5 still counts in the mean.
    let steps = [
        (lower(0), sum(0..3), EQ1_DEPTH[classes[0]]),
        (lower(1), sum(3..5), EQ2_DEPTH[classes[1]]),
        (
            lower_eq3_eq6(classes),
            sum(5..11),
            EQ3_EQ6_DEPTH[classes[2]][classes[5]],
        ),
        (lower(3), sum(11..14), EQ4_DEPTH[classes[3]]),
        (lower(4), 0, 1),
    ];
    let (total, count) =
        steps.iter().fold(
            (0.0, 0),
            |(total, count), (lower, distance, depth)| match lower {
                Some(lower) => (
                    total + (value - lower) * (*distance as f64 / f64::from(*depth)),
                    count + 1,
                ),
                None => (total, count),
            },
        );
    let mean = if count == 0 {
        0.0
    } else {
        total / f64::from(count)
    };
    let score = (value - mean).clamp(0.0, 10.0);
    ((score + ROUNDING_ALLOWANCE) * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors and scores of FIRST's calculator, as Red Hat's `cvss`
    /// library keeps them in its test vectors (base, threat, environmental).
    #[test]
    fn scores_of_the_reference_calculator() {
        for (vector, expected) in [
            (
                "AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                9.3,
            ),
            (
                "AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N",
                8.7,
            ),
            (
                "AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:L/SI:L/SA:L",
                6.9,
            ),
            (
                "AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:H/VA:L/SC:N/SI:H/SA:L",
                9.2,
            ),
            (
                "AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:H/SI:N/SA:L",
                7.8,
            ),
            (
                "AV:N/AC:L/AT:N/PR:N/UI:P/VC:L/VI:N/VA:N/SC:L/SI:N/SA:L",
                5.3,
            ),
            (
                "AV:N/AC:L/AT:N/PR:L/UI:A/VC:H/VI:H/VA:H/SC:H/SI:N/SA:H",
                9.3,
            ),
            (
                "AV:N/AC:L/AT:N/PR:H/UI:P/VC:L/VI:L/VA:N/SC:L/SI:N/SA:N",
                4.8,
            ),
            (
                "AV:N/AC:L/AT:P/PR:N/UI:A/VC:N/VI:N/VA:N/SC:L/SI:N/SA:N",
                2.1,
            ),
            (
                "AV:N/AC:L/AT:P/PR:H/UI:A/VC:N/VI:L/VA:L/SC:L/SI:N/SA:N",
                1.8,
            ),
            (
                "AV:N/AC:H/AT:N/PR:H/UI:A/VC:N/VI:N/VA:N/SC:N/SI:H/SA:N",
                4.0,
            ),
            (
                "AV:N/AC:H/AT:P/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:L/SA:N",
                9.5,
            ),
            (
                "AV:P/AC:H/AT:P/PR:H/UI:A/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:A",
                7.3,
            ),
            (
                "AV:P/AC:H/AT:P/PR:H/UI:A/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:P",
                5.9,
            ),
            (
                "AV:P/AC:H/AT:P/PR:H/UI:A/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:U",
                4.1,
            ),
            (
                "AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N/AR:L",
                7.9,
            ),
            (
                "AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N/MSI:H",
                7.7,
            ),
            (
                "AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N/E:U",
                0.0,
            ),
            (
                "AV:A/AC:H/AT:P/PR:L/UI:P/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N",
                0.0,
            ),
        ] {
            let vector = format!("CVSS:4.0/{vector}");
            assert_eq!(cvss4_score(&vector), Some(expected), "{vector}");
        }
    }

    #[test]
    fn the_table_holds_every_macrovector() {
        let scores: Vec<f64> = table().iter().flatten().copied().collect();
        assert_eq!(scores.len(), 270);
        assert_eq!(macrovector_score([0, 0, 0, 0, 0, 0]), Some(10.0));
        assert_eq!(macrovector_score([2, 1, 2, 2, 2, 1]), Some(0.1));
        assert_eq!(macrovector_score([0, 0, 2, 0, 0, 0]), None);
        assert_eq!(macrovector_score([3, 0, 0, 0, 0, 0]), None);
    }

    #[test]
    fn metrics_in_any_order_score_alike() {
        let ordered = "CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N";
        let shuffled = "CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/SC:N/VI:H/SI:N/VA:H/SA:N";
        assert_eq!(cvss4_score(ordered), Some(8.5));
        assert_eq!(cvss4_score(shuffled), cvss4_score(ordered));
        let supplemental = format!("{ordered}/S:P/AU:Y/R:U/V:C/RE:H/U:Amber");
        assert_eq!(cvss4_score(&supplemental), cvss4_score(ordered));
        let undefined = format!("{ordered}/E:X/CR:X/MAV:X/MSI:X");
        assert_eq!(cvss4_score(&undefined), cvss4_score(ordered));
    }

    #[test]
    fn malformed_vectors_have_no_score() {
        let base = "AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N";
        for vector in [
            format!("CVSS:3.1/{base}"),
            format!("CVSS:4.0/{base}/"),
            format!("CVSS:4.0/{base}/SA:H"),
            format!("CVSS:4.0/{base}/XX:H"),
            format!("CVSS:4.0/{base}/E:Q"),
            format!("CVSS:4.0/{base}/MSC:S"),
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N".to_string(),
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:S/SA:N".to_string(),
            base.to_string(),
        ] {
            assert_eq!(cvss4_score(&vector), None, "{vector}");
        }
    }
}
