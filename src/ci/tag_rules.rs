//! The `[image.tags]` table as the spec writes it: which tags to derive, and
//! on which events each rule applies ([`EventFilter`]). Parsed here, applied
//! by [`super::tags::compute_tags`].

use super::events::{EventFilter, TagEvent};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// Which tags to derive from the revision. Keys left out keep their default,
/// so `[image.tags]` with only `date = "%Y%m%d"` adds a date tag to the
/// default set; switch one off with `sha = false`, or limit it to some
/// events with a list (`sha = ["branch", "tag"]`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct TagStrategy {
    /// `sha-<first sha-length hex digits>`; by default on every event.
    pub sha: EventFilter,
    pub sha_length: usize,
    /// The branch name, sanitized (`feature/x` gives `feature-x`); by
    /// default on `branch` events (pushes to a branch).
    pub branch: EventFilter,
    /// `pr-<number>`; by default on `pr` events.
    pub pr: EventFilter,
    /// Templates over `{version}`, `{major}`, `{minor}`, `{patch}`, applied
    /// when a version tag is built. A pre-release gives only its full version.
    /// An empty list switches version tags off.
    pub semver: Vec<String>,
    /// A strftime format applied to the time the run started, on every event
    /// or on those it names.
    pub date: Option<DateRule>,
    /// The time zone of date tags and `{date}`: `UTC` (the default), an
    /// offset like `+09:00`, or `-05:00`.
    pub date_timezone: Option<String>,
    pub latest: LatestPolicy,
    /// Templates over every placeholder: {branch} {sha} {short_sha} {version}
    /// {major} {minor} {patch} {date} {pr} {run_number}, each on every event
    /// or on those it names. `{date}` uses the `date` format, or `%Y%m%d`.
    pub raw: Vec<RawRule>,
}

impl Default for TagStrategy {
    fn default() -> Self {
        TagStrategy {
            sha: EventFilter::Default,
            sha_length: 7,
            branch: EventFilter::Default,
            pr: EventFilter::Default,
            semver: vec![
                "{major}.{minor}.{patch}".to_string(),
                "{major}.{minor}".to_string(),
                "{major}".to_string(),
            ],
            date: None,
            date_timezone: None,
            latest: LatestPolicy::Release,
            raw: Vec::new(),
        }
    }
}

/// `date = "%Y%m%d"` or `date = { format = "%Y%m%d", on = ["schedule"] }`;
/// `except` leaves out runs of those events (`except = ["default-branch"]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateRule {
    pub format: String,
    pub on: EventFilter,
    pub except: Vec<TagEvent>,
}

/// `"sha-{sha}"` or `{ value = "pr-{pr}-image", on = ["pr"] }`; `except`
/// leaves out runs of those events (`{branch}-{short_sha}` on branches but
/// the default one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRule {
    pub value: String,
    pub on: EventFilter,
    pub except: Vec<TagEvent>,
}

/// When to add `latest`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LatestPolicy {
    /// On builds of a version that is not a pre-release.
    #[default]
    Release,
    /// On pushes to the default branch.
    DefaultBranch,
    /// On any of these events (`["release", "default-branch"]`).
    On(Vec<TagEvent>),
    /// Never (`latest = false`).
    Never,
}

impl LatestPolicy {
    /// The events `latest` is added on.
    pub fn events(&self) -> Vec<TagEvent> {
        match self {
            LatestPolicy::Release => vec![TagEvent::Release],
            LatestPolicy::DefaultBranch => vec![TagEvent::DefaultBranch],
            LatestPolicy::On(events) => events.clone(),
            LatestPolicy::Never => Vec::new(),
        }
    }
}

impl<'de> Deserialize<'de> for LatestPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LatestVisitor;
        impl<'de> Visitor<'de> for LatestVisitor {
            type Value = LatestPolicy;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str(r#""release", "default-branch", false or a list of events"#)
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<LatestPolicy, E> {
                if value {
                    Err(E::custom(
                        r#"latest = true is ambiguous: write "release" or "default-branch""#,
                    ))
                } else {
                    Ok(LatestPolicy::Never)
                }
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<LatestPolicy, E> {
                match value {
                    "release" => Ok(LatestPolicy::Release),
                    "default-branch" => Ok(LatestPolicy::DefaultBranch),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, sequence: A) -> Result<LatestPolicy, A::Error> {
                Vec::<TagEvent>::deserialize(de::value::SeqAccessDeserializer::new(sequence))
                    .map(LatestPolicy::On)
            }
        }
        deserializer.deserialize_any(LatestVisitor)
    }
}

/// The table form of a rule with a value: `{ <key> = "...", on = [...] }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DateTable {
    format: String,
    #[serde(default)]
    on: EventFilter,
    #[serde(default)]
    except: Vec<TagEvent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    value: String,
    #[serde(default)]
    on: EventFilter,
    #[serde(default)]
    except: Vec<TagEvent>,
}

/// Deserializes a string or a table, the way both rule kinds are written.
/// Written out rather than `#[serde(untagged)]`, which would replace the
/// table's own errors with "data did not match any variant".
struct StringOrTable<T, Table> {
    expecting: &'static str,
    from_string: fn(String) -> T,
    table: PhantomData<Table>,
}

impl<'de, T, Table: Deserialize<'de> + Into<T>> Visitor<'de> for StringOrTable<T, Table> {
    type Value = T;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(self.expecting)
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
        Ok((self.from_string)(value.to_string()))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        Table::deserialize(de::value::MapAccessDeserializer::new(map)).map(Into::into)
    }
}

impl From<DateTable> for DateRule {
    fn from(table: DateTable) -> DateRule {
        DateRule {
            format: table.format,
            on: table.on,
            except: table.except,
        }
    }
}

impl From<RawTable> for RawRule {
    fn from(table: RawTable) -> RawRule {
        RawRule {
            value: table.value,
            on: table.on,
            except: table.except,
        }
    }
}

impl<'de> Deserialize<'de> for DateRule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StringOrTable::<DateRule, DateTable> {
            expecting: "a strftime format or { format, on }",
            from_string: |format| DateRule {
                format,
                on: EventFilter::Default,
                except: Vec::new(),
            },
            table: PhantomData,
        })
    }
}

impl<'de> Deserialize<'de> for RawRule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StringOrTable::<RawRule, RawTable> {
            expecting: "a tag template or { value, on }",
            from_string: |value| RawRule {
                value,
                on: EventFilter::Default,
                except: Vec::new(),
            },
            table: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Section {
        tags: TagStrategy,
    }

    fn parse(text: &str) -> Result<TagStrategy, toml::de::Error> {
        toml::from_str::<Section>(text).map(|section| section.tags)
    }

    #[test]
    fn rules_take_events() {
        let strategy = parse(
            r#"
            [tags]
            sha = ["branch"]
            pr = false
            latest = ["release", "default-branch"]
            date = { format = "%Y%m%d", on = ["schedule"] }
            raw = ["sha-{sha}", { value = "pr-{pr}-image", on = ["pr"] }]
            "#,
        )
        .unwrap();
        assert_eq!(strategy.sha, EventFilter::Only(vec![TagEvent::Branch]));
        assert_eq!(strategy.pr, EventFilter::Never);
        assert_eq!(strategy.branch, EventFilter::Default);
        assert_eq!(
            strategy.latest,
            LatestPolicy::On(vec![TagEvent::Release, TagEvent::DefaultBranch])
        );
        assert_eq!(
            strategy.date,
            Some(DateRule {
                format: "%Y%m%d".to_string(),
                on: EventFilter::Only(vec![TagEvent::Schedule]),
                except: Vec::new(),
            })
        );
        assert_eq!(strategy.raw[0].on, EventFilter::Default);
        assert_eq!(strategy.raw[1].value, "pr-{pr}-image");
        assert_eq!(strategy.raw[1].on, EventFilter::Only(vec![TagEvent::Pr]));
    }

    #[test]
    fn bad_rules_name_what_is_wrong() {
        let unknown_event = parse("[tags]\nsha = [\"push\"]\n").unwrap_err().to_string();
        assert!(unknown_event.contains("push"), "{unknown_event}");
        assert!(unknown_event.contains("default-branch"), "{unknown_event}");
        let unknown_key = parse("[tags]\nraw = [{ value = \"x\", when = [\"pr\"] }]\n")
            .unwrap_err()
            .to_string();
        assert!(unknown_key.contains("when"), "{unknown_key}");
        assert!(unknown_key.contains("line 2"), "{unknown_key}");
    }
}
