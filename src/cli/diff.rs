//! `hoist diff A B`: opens both locations, lets `diff` compare them, and
//! renders the report as lines or JSON. Exits as `diff` does: 0 identical,
//! 1 different, 2 trouble.

use super::RegistryArguments;
use super::report::{Mode, Reporter};
use anyhow::Context;
use hoist::build::transport::Transports;
use hoist::diff::{Cause, Change, Codec, DiffOptions, DiffReport, Difference, Place, Side, diff};
use hoist::oci::{Location, Platform};
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, clap::Args)]
pub struct DiffArguments {
    /// The left image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE, docker://REF.
    left: String,
    /// The right image, in the same syntax.
    right: String,
    /// Compare only this platform's image of each side.
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    /// Print the report as one JSON object on stdout.
    #[arg(long, conflicts_with = "quiet")]
    json: bool,
    /// Print nothing; the exit status says whether the images differ.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryArguments,
}

/// Runs the comparison and returns the exit status: 0 identical, 1 different, 2 trouble.
pub fn run(arguments: DiffArguments) -> i32 {
    let reporter = Reporter::new(Mode::from_flags(arguments.json, arguments.quiet));
    match compare(&arguments) {
        Ok(report) => {
            match serde_json::to_value(&report) {
                Ok(value) => reporter.json(value),
                Err(error) => {
                    super::print_error(&anyhow::Error::new(error).context("encoding the report"));
                    return 2;
                }
            }
            for line in render(&report, &arguments.left, &arguments.right) {
                reporter.line(&line);
            }
            if report.is_identical() { 0 } else { 1 }
        }
        Err(error) => {
            super::print_error(&error);
            2
        }
    }
}

fn compare(arguments: &DiffArguments) -> anyhow::Result<DiffReport> {
    let parse = |text: &str| -> anyhow::Result<Location> {
        text.parse().with_context(|| format!("location {text}"))
    };
    let (left, right) = (parse(&arguments.left)?, parse(&arguments.right)?);
    let platform = arguments
        .platform
        .as_deref()
        .map(|text| {
            text.parse::<Platform>()
                .with_context(|| format!("--platform {text}"))
        })
        .transpose()?;
    let own = super::own_registries([], [&left, &right]);
    let jobs = super::jobs(None)?;
    let transports = Transports::new(arguments.registry.client_options_for(jobs, &own)?);
    let left_manifest = transports.source(&left)?.resolve()?;
    let right_manifest = transports.source(&right)?.resolve()?;
    diff(&left_manifest, &right_manifest, &DiffOptions { platform })
        .with_context(|| format!("comparing {left} with {right}"))
}

/// At least this many entries of one layer with the same change and cause
/// are shown as one line (the JSON lists every one).
const GROUP_FROM: usize = 4;
/// Paths named on a grouped line before the rest are counted.
const PATHS_SHOWN: usize = 3;

/// The report as lines: the two sides by name and digest, one line per
/// difference (entries of a layer with the same change as one, where the
/// first is), the likely causes with how many differences each explains,
/// then a count.
pub(crate) fn render(report: &DiffReport, left_name: &str, right_name: &str) -> Vec<String> {
    let mut lines = vec![
        format!("--- {left_name} {}", report.left),
        format!("+++ {right_name} {}", report.right),
    ];
    let differences = &report.differences;
    let groups = entry_groups(differences);
    for (index, difference) in differences.iter().enumerate() {
        match group_key(difference).and_then(|key| groups.get(&key)) {
            Some(members) if members.len() >= GROUP_FROM => {
                if members[0] == index {
                    let run: Vec<&Difference> =
                        members.iter().map(|&member| &differences[member]).collect();
                    lines.push(render_group(&run));
                }
            }
            _ => lines.push(render_difference(difference)),
        }
    }
    let mut causes: Vec<(String, usize)> = Vec::new();
    for cause in differences
        .iter()
        .filter_map(|difference| difference.cause.as_ref())
    {
        let text = cause_text(cause);
        match causes.iter_mut().find(|(known, _)| *known == text) {
            Some((_, count)) => *count += 1,
            None => causes.push((text, 1)),
        }
    }
    if !causes.is_empty() {
        lines.push("likely causes:".to_string());
        lines.extend(
            causes
                .into_iter()
                .map(|(text, count)| format!("  {text} ({})", plural(count, "difference"))),
        );
    }
    lines.push(match differences.len() {
        0 => "identical".to_string(),
        count => plural(count, "difference"),
    });
    lines
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// What entries of one group share: platform, layer, change and cause.
fn group_key(difference: &Difference) -> Option<String> {
    let Place::Entry { layer, .. } = &difference.place else {
        return None;
    };
    serde_json::to_string(&(
        &difference.platform,
        layer,
        &difference.change,
        &difference.cause,
    ))
    .ok()
}

/// The positions of the entry differences of each group, in order.
fn entry_groups(differences: &[Difference]) -> HashMap<String, Vec<usize>> {
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, difference) in differences.iter().enumerate() {
        if let Some(key) = group_key(difference) {
            groups.entry(key).or_default().push(index);
        }
    }
    groups
}

fn render_group(run: &[&Difference]) -> String {
    let paths: Vec<&str> = run
        .iter()
        .filter_map(|difference| match &difference.place {
            Place::Entry { path, .. } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    let layer = match &run[0].place {
        Place::Entry { layer, .. } | Place::Layer { layer } => *layer,
        _ => 0,
    };
    let shown = paths[..PATHS_SHOWN.min(paths.len())].join(", ");
    let mut line = format!(
        "{}layer {layer}, {} entries ({shown}, ...): {}",
        run[0]
            .platform
            .as_ref()
            .map(|platform| format!("{platform} "))
            .unwrap_or_default(),
        paths.len(),
        change_text(&run[0].change)
    );
    if let Some(cause) = &run[0].cause {
        line.push_str(&format!(" (likely cause: {})", cause_text(cause)));
    }
    line
}

fn render_difference(difference: &Difference) -> String {
    let place = match &difference.place {
        Place::Index => "index".to_string(),
        Place::Manifest => "manifest".to_string(),
        Place::Config => "config".to_string(),
        Place::Layer { layer } => format!("layer {layer}"),
        Place::Entry { layer, path } => format!("layer {layer} {path}"),
    };
    let mut line = match &difference.platform {
        Some(platform) => format!("{platform} {place}: {}", change_text(&difference.change)),
        None => format!("{place}: {}", change_text(&difference.change)),
    };
    if let Some(cause) = &difference.cause {
        line.push_str(&format!(" (likely cause: {})", cause_text(cause)));
    }
    line
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Left => "left",
        Side::Right => "right",
    }
}

fn value_text(value: &Option<Value>) -> String {
    match value {
        None => "(none)".to_string(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

fn codec_text(codec: &Codec) -> String {
    match codec.level {
        Some(level) => format!("{} level {level} ({})", codec.format, codec.header),
        None => format!("{} ({})", codec.format, codec.header),
    }
}

fn change_text(change: &Change) -> String {
    match change {
        Change::OnlyIn { side, item } => format!("{item} only in {}", side_name(*side)),
        Change::Field { field, left, right } => {
            format!("{field}: {} vs {}", value_text(left), value_text(right))
        }
        Change::Compression { left, right } => format!(
            "same content, different compression: {} vs {}",
            codec_text(left),
            codec_text(right)
        ),
        Change::Order {
            position,
            left,
            right,
        } => format!("entry order: at position {position} the left has {left}, the right {right}"),
    }
}

fn cause_text(cause: &Cause) -> String {
    match cause {
        Cause::Epoch { left, right } => format!("different SOURCE_DATE_EPOCH: {left} vs {right}"),
        Cause::NewerThanEpoch { side, epoch } => format!(
            "the file was newer than the epoch {epoch} on the {} side, so clamped to it, and older on the other: its time changed between the builds",
            side_name(*side)
        ),
        Cause::Umask { bits } => format!(
            "modes differ by {bits:04o}, a umask pattern: the files were made under another umask (and kept with permissions = \"preserve\")"
        ),
        Cause::BuildingUser { side, id } => format!(
            "owner {id} on the {} side where the other has root: the building user's files, kept by owner = \"preserve\" or an explicit owner, where the default makes them 0:0",
            side_name(*side)
        ),
        Cause::EntryOrder => {
            "the same entries in another order: written by a tool that does not sort them by path"
                .to_string()
        }
        Cause::BaseMoved { name, left, right } => match name {
            Some(name) => format!("the base image moved: {name} was {left}, now {right}"),
            None => format!("the base image changed: {left} vs {right}"),
        },
        Cause::Compressor => {
            "another compressor, compression level or compressor version over the same tar"
                .to_string()
        }
        Cause::BuilderVersions { left, right } => format!(
            "built by hoist {left} and {right}, whose compressor or format version differ"
        ),
        Cause::AttestedImageDiffers => {
            "it is about the platform's image, which differs, and names its digest".to_string()
        }
        Cause::TarEncoding => {
            "the same entries and contents encoded as another tar: another tar writer or format version"
                .to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mtime(path: &str, cause: Option<Cause>) -> Difference {
        Difference {
            platform: Some("linux/amd64".to_string()),
            place: Place::Entry {
                layer: 1,
                path: path.to_string(),
            },
            change: Change::Field {
                field: "mtime".to_string(),
                left: Some(json!(1)),
                right: Some(json!(2)),
            },
            cause,
        }
    }

    #[test]
    fn entries_with_the_same_change_are_one_line_and_causes_are_counted() {
        let epoch = Some(Cause::Epoch { left: 1, right: 2 });
        let mut differences: Vec<Difference> = ["a", "b", "c", "d"]
            .iter()
            .map(|path| mtime(path, epoch.clone()))
            .collect();
        differences.insert(2, mtime("odd", None));
        let report = DiffReport {
            left: "sha256:l".to_string(),
            right: "sha256:r".to_string(),
            differences,
        };
        assert_eq!(
            render(&report, "oci:a", "oci:b"),
            [
                "--- oci:a sha256:l",
                "+++ oci:b sha256:r",
                "linux/amd64 layer 1, 4 entries (a, b, c, ...): mtime: 1 vs 2 (likely cause: different SOURCE_DATE_EPOCH: 1 vs 2)",
                "linux/amd64 layer 1 odd: mtime: 1 vs 2",
                "likely causes:",
                "  different SOURCE_DATE_EPOCH: 1 vs 2 (4 differences)",
                "5 differences",
            ]
        );
    }
}
