//! Located problems in input files, printed as `file:line:col: level: message`.

use std::fmt;

use serde::Serialize;

use crate::yaml::Loc;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file is refused.
    Error,
    /// Worth knowing; the file is accepted.
    Warning,
}

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Diagnostic {
    /// The file, as the user named it.
    pub file: String,
    /// Where in it.
    #[serde(flatten)]
    pub loc: Loc,
    /// Error or warning.
    pub severity: Severity,
    /// The step it concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.loc.is_known() {
            write!(
                f,
                "{}:{}:{}: {level}: ",
                self.file, self.loc.line, self.loc.col
            )?;
        } else {
            write!(f, "{}: {level}: ", self.file)?;
        }
        if let Some(step) = &self.step {
            write!(f, "step `{step}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// An error and its causes, each as it says itself, `: `-separated, a
/// cause whose words the one before already holds left out: what an
/// operator reads, without a debug dump of the same chain (most messages
/// name their cause).
pub fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// A growing list of problems for one file.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    file: String,
    items: Vec<Diagnostic>,
    // The same problem reached by two paths is reported once.
    seen: std::collections::HashSet<Diagnostic>,
}

impl Diagnostics {
    /// An empty list for `file`.
    pub fn new(file: impl Into<String>) -> Self {
        Diagnostics {
            file: file.into(),
            items: Vec::new(),
            seen: std::collections::HashSet::new(),
        }
    }

    /// Add an error.
    pub fn error(&mut self, loc: Loc, step: Option<&str>, message: impl Into<String>) {
        self.push(Severity::Error, loc, step, message.into());
    }

    /// Add a warning.
    pub fn warning(&mut self, loc: Loc, step: Option<&str>, message: impl Into<String>) {
        self.push(Severity::Warning, loc, step, message.into());
    }

    fn push(&mut self, severity: Severity, loc: Loc, step: Option<&str>, message: String) {
        let item = Diagnostic {
            file: self.file.clone(),
            loc,
            severity,
            step: step.map(str::to_string),
            message,
        };
        if self.seen.insert(item.clone()) {
            self.items.push(item);
        }
    }

    /// Add problems found in another file (a child runbook's), kept as
    /// they are.
    pub fn absorb(&mut self, items: Vec<Diagnostic>) {
        for item in items {
            if self.seen.insert(item.clone()) {
                self.items.push(item);
            }
        }
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// The problems, sorted by location: this file's, then each other
    /// file's.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        let own = std::mem::take(&mut self.file);
        self.items.sort_by(|a, b| {
            (a.file != own, &a.file, a.loc, a.severity).cmp(&(
                b.file != own,
                &b.file,
                b.loc,
                b.severity,
            ))
        });

        self.items
    }
}
