//! Child runbooks travel with their parent.
//!
//! A step `runbook: data-tier.yaml` runs another runbook as a block of the
//! parent's run. A run is journaled with its runbook's text so that it
//! resumes exactly as it started, whatever happened to the files since; so
//! the texts of the children are appended to the parent's, as comment
//! lines after it, and that one text is what is loaded, journaled and
//! hashed. The parent's lines keep their numbers; each child's text is
//! read back from its section, line for line.
//!
//! ```text
//! <the parent's text>
//! # ---- lifeboat: child runbook `data-tier.yaml` ----
//! #| name: data tier
//! #| ...
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use crate::yaml::{self, Value};

/// The line that opens a child's section, up to its reference.
const MARK: &str = "# ---- lifeboat: child runbook `";
/// The end of that line.
const MARK_END: &str = "` ----";
/// The start of each line of a child's text.
const LINE: &str = "#|";

/// `text` with the texts of its children, each under its reference, in
/// the order given.
pub fn bundle(text: &str, children: &[(String, String)]) -> String {
    let mut out = String::with_capacity(
        text.len()
            + children
                .iter()
                .map(|(r, t)| r.len() + t.len() * 2)
                .sum::<usize>(),
    );
    out.push_str(text);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for (reference, child) in children {
        out.push_str(MARK);
        out.push_str(reference);
        out.push_str(MARK_END);
        out.push('\n');
        for line in child.lines() {
            out.push_str(LINE);
            if !line.is_empty() {
                out.push(' ');
                out.push_str(line);
            }
            out.push('\n');
        }
    }
    out
}

/// The parent's own text, and the texts of the children carried with it,
/// by reference.
pub fn unbundle(text: &str) -> (&str, BTreeMap<String, String>) {
    let Some(start) = section_start(text) else {
        return (text, BTreeMap::new());
    };
    let mut children = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text[start..].lines() {
        if let Some(reference) = line
            .strip_prefix(MARK)
            .and_then(|rest| rest.strip_suffix(MARK_END))
        {
            if let Some((r, t)) = current.take() {
                children.insert(r, t);
            }
            current = Some((reference.to_string(), String::new()));
        } else if let Some(rest) = line.strip_prefix(LINE)
            && let Some((_, child)) = current.as_mut()
        {
            child.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            child.push('\n');
        }
    }
    if let Some((r, t)) = current {
        children.insert(r, t);
    }
    (&text[..start], children)
}

/// Where the first child's section starts, if the text carries any.
fn section_start(text: &str) -> Option<usize> {
    if text.starts_with(MARK) {
        return Some(0);
    }
    text.find(&format!("\n{MARK}")).map(|at| at + 1)
}

/// The child runbooks `text` names, as `(step id, reference)` in file
/// order: each step's `runbook` when it is written literally. Anything
/// else (a text that does not parse, a reference built from a parameter)
/// is left for `load` to report.
pub fn references(text: &str) -> Vec<(String, String)> {
    let Ok(root) = yaml::parse(text) else {
        return Vec::new();
    };
    let Some(Value::Seq(steps)) = root.get("steps").map(|s| &s.value) else {
        return Vec::new();
    };
    steps
        .iter()
        .filter_map(|step| {
            let reference = step.get("runbook")?.as_str()?;
            if reference.contains("${") || !is_reference(reference) {
                return None;
            }
            let id = step.get("id").and_then(|id| id.as_str()).unwrap_or("");
            Some((id.to_string(), reference.to_string()))
        })
        .collect()
}

/// Whether `reference` can name a child: a path, on one line, without
/// the backquote that ends a section's opening line.
pub fn is_reference(reference: &str) -> bool {
    !reference.trim().is_empty() && !reference.contains(['\n', '\r', '`'])
}

/// Where a child named `reference` by the runbook at `parent` is: beside
/// the parent unless the reference is absolute.
pub fn resolve(parent: &Path, reference: &str) -> std::path::PathBuf {
    let reference = Path::new(reference);
    if reference.is_absolute() {
        return reference.to_path_buf();
    }
    parent
        .parent()
        .map_or_else(|| reference.to_path_buf(), |dir| dir.join(reference))
}

/// The text of the runbook at `path`, with its children's texts read
/// beside it and carried in it. A text that already carries its children
/// (one taken from a run's journal) is used as it is. A child that cannot
/// be read is an error that names it and the step that runs it.
pub fn read(path: &Path) -> std::io::Result<String> {
    let text = crate::input::read_text(path)?;
    if section_start(&text).is_some() {
        return Ok(text);
    }
    let mut children: Vec<(String, String)> = Vec::new();
    for (step, reference) in references(&text) {
        if children.iter().any(|(r, _)| *r == reference) {
            continue;
        }
        let child_path = resolve(path, &reference);
        let child = crate::input::read_text(&child_path).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "step `{step}` runs the child runbook {}, which cannot be read: {e}",
                    child_path.display()
                ),
            )
        })?;
        children.push((reference, child));
    }
    Ok(bundle(&text, &children))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_gives_back_the_parent_and_each_child_line_for_line() {
        let parent = "name: p\nsteps:\n  - id: data\n    runbook: data.yaml\n";
        let child = "name: data\n\nsteps:\n  - id: promote   # the replica\n    action: wait\n";
        let other = "name: other\nsteps: []";
        let text = bundle(
            parent,
            &[
                ("data.yaml".into(), child.into()),
                ("sub/other.yaml".into(), other.into()),
            ],
        );
        let (own, children) = unbundle(&text);
        assert_eq!(own, parent);
        assert_eq!(children["data.yaml"], child);
        assert_eq!(children["sub/other.yaml"], format!("{other}\n"));
        // The whole still parses as the parent: the children are comments.
        let root = yaml::parse(&text).unwrap();
        assert_eq!(root.get("name").unwrap().as_str(), Some("p"));
        // A parent without a final newline gets one before the sections.
        let text = bundle("name: p", &[("c".into(), "x: 1\n".into())]);
        let (own, children) = unbundle(&text);
        assert_eq!((own, children["c"].as_str()), ("name: p\n", "x: 1\n"));
    }

    #[test]
    fn a_text_without_children_is_its_own_parent() {
        let (own, children) = unbundle("name: p\n# a comment\n");
        assert_eq!(own, "name: p\n# a comment\n");
        assert!(children.is_empty());
    }

    #[test]
    fn references_are_the_literal_runbook_of_each_step() {
        let text = "steps:\n  - id: a\n    runbook: a.yaml\n  - id: b\n    action: wait\n  - id: c\n    runbook: ${which}\n  - id: d\n    runbook: '`x'\n";
        assert_eq!(
            references(text),
            vec![("a".to_string(), "a.yaml".to_string())]
        );
        assert!(references(": not yaml [").is_empty());
    }

    #[test]
    fn read_carries_the_children_beside_the_parent_and_names_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().join("parent.yaml");
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("lib/data.yaml"), "name: data\n").unwrap();
        std::fs::write(
            &parent,
            "name: p\nsteps:\n  - id: one\n    runbook: lib/data.yaml\n  - id: two\n    runbook: lib/data.yaml\n",
        )
        .unwrap();
        let text = read(&parent).unwrap();
        let (_, children) = unbundle(&text);
        assert_eq!(children.len(), 1);
        assert_eq!(children["lib/data.yaml"], "name: data\n");
        // Read again from the journaled text: it is taken as it is.
        let journaled = dir.path().join("journaled.yaml");
        std::fs::write(&journaled, &text).unwrap();
        std::fs::remove_file(dir.path().join("lib/data.yaml")).unwrap();
        assert_eq!(read(&journaled).unwrap(), text);
        let e = read(&parent).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("step `one` runs the child runbook "),
            "{e}"
        );
        assert!(e.to_string().contains("lib/data.yaml"), "{e}");
    }
}
