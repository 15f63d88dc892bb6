//! The deb822 control format (`Field: value`, continuation lines, blank lines
//! between paragraphs) that dpkg's status file and DEP-5 copyright files use.

use std::collections::BTreeMap;

/// One paragraph, field names lowercased. Continuation lines are joined with
/// newlines; a lone `.` stands for an empty line, as in Debian descriptions.
pub type Paragraph = BTreeMap<String, String>;

pub fn parse(text: &str) -> Vec<Paragraph> {
    let mut paragraphs = Vec::new();
    let mut current = Paragraph::new();
    let mut last_field: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
            last_field = None;
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(field) = &last_field
                && let Some(value) = current.get_mut(field)
            {
                let continuation = line.trim();
                value.push('\n');
                if continuation != "." {
                    value.push_str(continuation);
                }
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            current.insert(name.clone(), value.trim().to_string());
            last_field = Some(name);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    paragraphs
}

/// The first line of a field, the part tools read (`License: GPL-2+`).
pub fn first_line<'a>(paragraph: &'a Paragraph, field: &str) -> Option<&'a str> {
    paragraph
        .get(field)
        .and_then(|value| value.lines().next())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_and_continuations() {
        let text = "Package: a\nDescription: short\n long\n .\n more\n\n\nPackage: b\nstatus: x\n";
        let paragraphs = parse(text);
        assert_eq!(paragraphs.len(), 2);
        assert_eq!(paragraphs[0]["description"], "short\nlong\n\nmore");
        assert_eq!(first_line(&paragraphs[0], "description"), Some("short"));
        assert_eq!(paragraphs[1]["status"], "x");
    }
}
