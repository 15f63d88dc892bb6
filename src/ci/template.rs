//! Tag templates: literal text with `{placeholder}`s. Parsed once, so an
//! unknown placeholder is reported on every build, not only on the build
//! (a release, a pull request) that would have expanded it.

use super::CiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholder {
    Branch,
    Sha,
    ShortSha,
    Version,
    Major,
    Minor,
    Patch,
    Date,
    Pr,
    RunNumber,
}

impl Placeholder {
    const ALL: [(&'static str, Placeholder); 10] = [
        ("branch", Placeholder::Branch),
        ("sha", Placeholder::Sha),
        ("short_sha", Placeholder::ShortSha),
        ("version", Placeholder::Version),
        ("major", Placeholder::Major),
        ("minor", Placeholder::Minor),
        ("patch", Placeholder::Patch),
        ("date", Placeholder::Date),
        ("pr", Placeholder::Pr),
        ("run_number", Placeholder::RunNumber),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, placeholder)| *placeholder == self)
            .map_or("?", |(name, _)| name)
    }

    fn allowed() -> String {
        Self::ALL
            .iter()
            .map(|(name, _)| format!("{{{name}}}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Placeholder(Placeholder),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

impl Template {
    pub fn parse(template: &str) -> Result<Template, CiError> {
        let mut segments = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                segments.push(Segment::Literal(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| CiError::UnclosedPlaceholder {
                    template: template.to_string(),
                })?;
            let name = &after[..close];
            let placeholder = Placeholder::ALL
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, placeholder)| *placeholder)
                .ok_or_else(|| CiError::UnknownPlaceholder {
                    template: template.to_string(),
                    placeholder: name.to_string(),
                    allowed: Placeholder::allowed(),
                })?;
            segments.push(Segment::Placeholder(placeholder));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Literal(rest.to_string()));
        }
        Ok(Template { segments })
    }

    /// The placeholders the template uses, in order.
    pub fn placeholders(&self) -> Vec<Placeholder> {
        self.segments
            .iter()
            .filter_map(|segment| match segment {
                Segment::Placeholder(placeholder) => Some(*placeholder),
                Segment::Literal(_) => None,
            })
            .collect()
    }

    /// Expands the template, or names the first placeholder without a value.
    pub fn expand(
        &self,
        value: &dyn Fn(Placeholder) -> Option<String>,
    ) -> Result<String, Placeholder> {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Placeholder(placeholder) => {
                    out.push_str(&value(*placeholder).ok_or(*placeholder)?)
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_known_placeholders() {
        let template = Template::parse("stable-{short_sha}-{run_number}").unwrap();
        let expanded = template.expand(&|placeholder| match placeholder {
            Placeholder::ShortSha => Some("3f2a9c1".to_string()),
            Placeholder::RunNumber => Some("12".to_string()),
            _ => None,
        });
        assert_eq!(expanded.unwrap(), "stable-3f2a9c1-12");
        assert_eq!(
            Template::parse("pr-{pr}").unwrap().expand(&|_| None),
            Err(Placeholder::Pr)
        );
    }

    #[test]
    fn rejects_unknown_and_unclosed_placeholders() {
        let error = Template::parse("x-{commit}").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("{commit}"), "{message}");
        assert!(message.contains("{short_sha}"), "{message}");
        assert!(matches!(
            Template::parse("x-{sha").unwrap_err(),
            CiError::UnclosedPlaceholder { .. }
        ));
    }
}
