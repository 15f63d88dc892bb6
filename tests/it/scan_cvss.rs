//! CVSS v4.0 scores against an independent implementation: Red Hat's `cvss`
//! library for Python (installed by `scripts/install-test-tools.sh`). The
//! library draws the vectors from its own table of metrics with a fixed
//! seed (base vectors; vectors carrying threat, environmental and
//! supplemental metrics, some in shuffled order; malformed ones) and scores
//! them; hoist must give every score, and refuse every vector it refuses.

use crate::common::assert_agrees;
use hoist::scan::severity::cvss4_score;
use std::collections::BTreeSet;
use std::process::Command;

/// Prints `VECTOR\tSCORE`, or `VECTOR\tinvalid` when the library refuses it.
const REFERENCE: &str = r#"
import random
from cvss import CVSS4
from cvss.constants4 import METRICS_MANDATORY, METRICS_VALUE_NAMES
from cvss.exceptions import CVSS4Error

rng = random.Random(0x4040)
base = [(name, list(METRICS_VALUE_NAMES[name])) for name in METRICS_MANDATORY]
optional = [(name, list(values)) for name, values in METRICS_VALUE_NAMES.items()
            if name not in METRICS_MANDATORY]

def draw(metrics):
    return [f"{name}:{rng.choice(values)}" for name, values in metrics]

vectors = [draw(base) for _ in range(1200)]
for _ in range(800):
    metrics = draw(base) + [field for field in draw(optional) if rng.randrange(3) == 0]
    if rng.randrange(4) == 0:
        rng.shuffle(metrics)
    vectors.append(metrics)
for index in range(60):
    metrics = draw(base)
    if index % 5 == 0:
        metrics.pop(rng.randrange(len(metrics)))
    elif index % 5 == 1:
        metrics.append(rng.choice(metrics))
    else:
        metrics.append(["SA:S", "XY:Z", "E:Q"][index % 5 - 2])
    vectors.append(metrics)
for metrics in vectors:
    vector = "CVSS:4.0/" + "/".join(metrics)
    try:
        print(f"{vector}\t{CVSS4(vector).base_score}")
    except CVSS4Error:
        print(f"{vector}\tinvalid")
"#;

#[test]
fn cvss4_scores_as_red_hat_cvss() {
    let output = Command::new("python3")
        .arg("-c")
        .arg(REFERENCE)
        .output()
        .unwrap_or_else(|error| panic!("python3: {error}; run scripts/install-test-tools.sh"));
    assert!(
        output.status.success(),
        "the reference failed (is `cvss` installed? run scripts/install-test-tools.sh): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let answers: Vec<(&str, &str)> = text
        .lines()
        .map(|line| line.split_once('\t').expect("VECTOR\\tSCORE"))
        .collect();
    assert_eq!(answers.len(), 2060, "one answer per vector");
    let ours = |vector: &str| match cvss4_score(vector) {
        Some(score) => format!("{score:.1}"),
        None => "invalid".to_string(),
    };
    let disagreements: Vec<String> = answers
        .iter()
        .filter(|(vector, answer)| ours(vector) != *answer)
        .map(|(vector, answer)| format!("{vector}: reference {answer}, hoist {}", ours(vector)))
        .collect();
    assert_agrees(&disagreements);
    // The batch must exercise the scale and the refusals, not a corner.
    let scores: BTreeSet<&str> = answers.iter().map(|(_, answer)| *answer).collect();
    assert!(scores.len() > 70, "only {} distinct answers", scores.len());
    let refused = answers
        .iter()
        .filter(|(_, answer)| *answer == "invalid")
        .count();
    assert_eq!(refused, 60);
}
